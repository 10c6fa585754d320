"""`cancelMission` over real HTTP: a running mission stops as a whole, a queued one leaves nothing queued,
a finished one is returned as it is, an unknown id is MissionNotFound."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from config.settings import Settings
from mission.events import PubSubHub
from mission.service import MissionService
from tests import agents
from tests.conftest import BAD_MISSION_IDS, RunningApi, StartWorker, nothing_stored, run_to_end
from tests.gql import FULL_CANCEL, data, deployed, get_mission

pytestmark = pytest.mark.timeout(60)


async def test_cancel_a_running_mission_stops_the_whole_graph(
    http: httpx.AsyncClient, api: RunningApi, start_worker: StartWorker, service: MissionService
) -> None:
    mid = (await deployed(http, api, "hang"))["id"]
    await start_worker()
    await asyncio.wait_for(agents.started(f"{mid}:hanger").wait(), 15)
    running = await get_mission(http, api, mid)
    assert running is not None and running["status"] == "RUNNING"
    assert {j["role"]: j["status"] for j in running["jobs"]} == {"hanger": "RUNNING", "after": "WAITING"}

    result = (await data(http, api.url, FULL_CANCEL, id=mid))["cancelMission"]
    assert result["__typename"] == "MissionCancelled"
    m = result["mission"]
    assert m["id"] == mid and m["status"] == "CANCELLED"
    assert m["finishedAt"] is not None and m["failureReason"]
    assert {j["role"]: j["status"] for j in m["jobs"]} == {"hanger": "CANCELLED", "after": "CANCELLED"}
    assert [n["status"] for n in m["graph"]["nodes"]] == ["CANCELLED", "CANCELLED"]
    # The agent really is stopped, and the stored state says the same as the mutation.
    await asyncio.wait_for(agents.cancelled(f"{mid}:hanger").wait(), 10)
    stored = await get_mission(http, api, mid)
    assert stored is not None and stored["status"] == "CANCELLED"
    assert {j["status"] for j in stored["jobs"]} == {"CANCELLED"}

    again = (await data(http, api.url, FULL_CANCEL, id=mid))["cancelMission"]
    assert again["__typename"] == "MissionCancelled"
    assert again["mission"]["status"] == "CANCELLED" and again["mission"]["finishedAt"] == m["finishedAt"]
    events = await service.store.events(mid)
    assert [e.type for e in events].count("mission.cancelled") == 1


async def test_cancel_a_queued_mission_leaves_nothing_queued(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings
) -> None:
    mid = (await deployed(http, api, "two_stage"))["id"]
    assert await service.redis.zcard(settings.queue) > 0
    result = (await data(http, api.url, FULL_CANCEL, id=mid))["cancelMission"]
    assert result["__typename"] == "MissionCancelled" and result["mission"]["status"] == "CANCELLED"
    assert {j["status"] for j in result["mission"]["jobs"]} == {"CANCELLED"}
    assert await service.redis.zcard(settings.queue) == 0  # roots and the deadline job withdrawn


async def test_cancel_a_finished_mission_returns_it_as_it_is(
    http: httpx.AsyncClient, api: RunningApi, start_worker: StartWorker, service: MissionService, hub: PubSubHub
) -> None:
    mid = (await deployed(http, api, "two_stage"))["id"]
    await start_worker()
    await run_to_end(service, hub, mid)
    before = await get_mission(http, api, mid)
    result = (await data(http, api.url, FULL_CANCEL, id=mid))["cancelMission"]
    assert result["__typename"] == "MissionCancelled"
    assert result["mission"] == before
    assert result["mission"]["status"] == "SUCCEEDED"


async def test_cancel_unknown_mission(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, subtests: pytest.Subtests
) -> None:
    for mission_id in BAD_MISSION_IDS:
        with subtests.test(mission_id=mission_id[:40]):
            result = (await data(http, api.url, FULL_CANCEL, id=mission_id))["cancelMission"]
            assert result["__typename"] == "MissionNotFound"
            assert result["message"].startswith("no mission with id")
            assert mission_id[:50] in result["missionId"] and len(result["missionId"]) <= 200
            assert len(result["message"]) < 300  # a 100 KB id is not echoed back whole
            await nothing_stored(service)
