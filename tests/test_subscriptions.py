"""Subscriptions over real websockets, both protocols: replay, live, completion, clean-up."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from config.settings import Settings
from mission.service import MissionService
from tests.conftest import RunningApi, StartWorker, eventually, serve_api
from tests.gql import DEPLOY, LEGACY_WS, TRANSPORT_WS, WsClient, data

pytestmark = pytest.mark.timeout(60)


EVENTS = """
subscription($id: ID!, $after: Int) {
  missionEvents(missionId: $id, afterSeq: $after) { seq missionId type status jobId at message data }
}"""

UPDATES = "subscription { missionUpdates { id status jobs { role status } } }"


async def deploy(api: RunningApi, template: str, config: dict[str, Any] | None = None) -> str:
    async with httpx.AsyncClient() as client:
        result = await data(client, api.url, DEPLOY, t=template, config=config)
    assert result["deployMission"]["__typename"] == "MissionDeployed", result
    mission_id: str = result["deployMission"]["mission"]["id"]
    return mission_id


async def events_of(ws: WsClient, op_id: str) -> list[dict[str, Any]]:
    events = []
    async for payload in ws.results(op_id):
        assert "errors" not in payload, payload
        events.append(payload["data"]["missionEvents"])
    return events


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_events_stream_from_deploy_to_the_end_in_order(
    api: RunningApi, start_worker: StartWorker, protocol: str
) -> None:
    mission_id = await deploy(api, "slow_chain", {"inputs": {"seconds": 0.3}})
    await start_worker()
    ws = await WsClient.connect(api.ws_url, protocol)
    try:
        events = await events_of(ws, await ws.subscribe(EVENTS, id=mission_id))
    finally:
        await ws.close()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "mission.deployed" and events[-1]["type"] == "mission.succeeded"
    assert {e["missionId"] for e in events} == {mission_id}
    assert any(e["type"] == "job.progress" and e["jobId"] == f"{mission_id}:middle" for e in events)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_replay_after_a_disconnect_loses_and_repeats_nothing(
    api: RunningApi, start_worker: StartWorker, service: MissionService, protocol: str
) -> None:
    await start_worker()
    mission_id = await deploy(api, "slow_chain", {"inputs": {"seconds": 1}})
    first = await WsClient.connect(api.ws_url, protocol)
    op = await first.subscribe(EVENTS, id=mission_id)
    seen: list[dict[str, Any]] = []
    async for payload in first.results(op):
        seen.append(payload["data"]["missionEvents"])
        if seen[-1]["type"] == "job.progress":  # mid-mission: the middle agent is running
            break
    await first.close()  # dropped without a goodbye

    second = await WsClient.connect(api.ws_url, protocol)
    try:
        rest = await events_of(second, await second.subscribe(EVENTS, id=mission_id, after=seen[-1]["seq"]))
    finally:
        await second.close()
    everything = seen + rest
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
    assert everything[-1]["type"] == "mission.succeeded"
    assert len(everything) == (await service.get_mission(mission_id)).seq  # type: ignore[union-attr]


async def test_a_finished_mission_replays_and_completes_at_once(api: RunningApi, start_worker: StartWorker) -> None:
    await start_worker()
    mission_id = await deploy(api, "two_stage")
    ws = await WsClient.connect(api.ws_url)
    try:
        full = await events_of(ws, await ws.subscribe(EVENTS, id=mission_id))
        tail = await events_of(ws, await ws.subscribe(EVENTS, id=mission_id, after=len(full) - 2))
        nothing = await events_of(ws, await ws.subscribe(EVENTS, id=mission_id, after=len(full)))
    finally:
        await ws.close()
    assert full[-1]["type"] == "mission.succeeded"
    assert tail == full[-2:]
    assert nothing == []


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_an_unknown_mission_is_a_clear_error_not_a_hang(api: RunningApi, protocol: str) -> None:
    ws = await WsClient.connect(api.ws_url, protocol)
    try:
        for bad in ("mssn_" + "0" * 32, "not-an-id", "x" * 10_000):
            results = [payload async for payload in ws.results(await ws.subscribe(EVENTS, id=bad), timeout=5)]
            assert len(results) == 1 and "errors" in results[0], results
            assert "no mission with id" in results[0]["errors"][0]["message"]
    finally:
        await ws.close()


async def test_mission_updates_sees_both_deploys(
    api: RunningApi, start_worker: StartWorker, service: MissionService
) -> None:
    ws = await WsClient.connect(api.ws_url)
    op = await ws.subscribe(UPDATES)
    try:
        await until_subscribed(service, service.keys.events_channel)
        first = await deploy(api, "two_stage")
        second = await deploy(api, "fanout")
        await start_worker()
        finished: set[str] = set()
        statuses: dict[str, list[str]] = {first: [], second: []}
        async for payload in ws.results(op):
            mission = payload["data"]["missionUpdates"]
            statuses[mission["id"]].append(mission["status"])
            if mission["status"] == "SUCCEEDED":
                finished.add(mission["id"])
            if finished == {first, second}:
                break
    finally:
        await ws.close()
    assert finished == {first, second}, statuses  # not merely the stream ending early


async def until_subscribed(service: MissionService, channel: str) -> None:
    """Wait (bounded) until the server holds a Redis subscription to ``channel``."""

    async def subscribed() -> bool:
        return bool(dict(await service.redis.pubsub_numsub(channel)).get(channel))

    await eventually(subscribed)


async def api_connections(service: MissionService) -> int:
    """Redis connections the API server holds (its clients are named ``mission-api``)."""
    return sum(1 for client in await service.redis.client_list() if client["name"] == "mission-api")


@pytest.mark.timeout(90)
async def test_many_subscribers_share_one_redis_connection_and_leave_nothing_behind(
    settings: Settings, service: MissionService, start_worker: StartWorker
) -> None:
    """Rounds of 63 subscriptions over both protocols, dropped without goodbye, through a pool of 4."""
    from tests import agents

    small_pool = settings.model_copy(update={"redis_max_connections": 4})
    async with serve_api(small_pool) as api:
        await start_worker()
        mission_id = await deploy(api, "hang")
        await asyncio.wait_for(agents.started(f"{mission_id}:hanger").wait(), 10)
        hub = api.server.lifespan.state["resources"].hub
        channel = service.keys.mission_channel(mission_id)
        baseline_tasks = len(asyncio.all_tasks())

        for _ in range(3):
            sockets: list[WsClient] = []
            for i in range(30):
                ws = await WsClient.connect(api.ws_url, TRANSPORT_WS if i % 2 else LEGACY_WS)
                await ws.subscribe(EVENTS, id=mission_id)
                await ws.subscribe(EVENTS, id=mission_id, after=1)
                if i % 10 == 0:
                    await ws.subscribe(UPDATES)
                sockets.append(ws)
            await eventually(lambda: hub.subscriber_count >= 63)  # every subscription registered with the hub
            numsub = dict(await service.redis.pubsub_numsub(channel, service.keys.events_channel))
            assert numsub == {channel: 1, service.keys.events_channel: 1}  # one pub/sub connection serves all
            assert await api_connections(service) <= 4  # the pool's bound, not one per subscriber
            for ws in sockets:
                ws.ws.transport.abort()  # the socket just dies: no complete, no close frame
            await eventually(lambda: not hub.subscriber_count and len(asyncio.all_tasks()) <= baseline_tasks)
            numsub = dict(await service.redis.pubsub_numsub(channel, service.keys.events_channel))
            assert numsub == {channel: 0, service.keys.events_channel: 0}
            assert hub.channel_count == 0
            assert await api_connections(service) <= 4


async def test_a_cursor_past_the_end_still_completes_when_the_mission_ends(
    api: RunningApi, service: MissionService, start_worker: StartWorker
) -> None:
    from tests import agents

    await start_worker()
    mission_id = await deploy(api, "hang")
    await asyncio.wait_for(agents.started(f"{mission_id}:hanger").wait(), 10)
    ws = await WsClient.connect(api.ws_url)
    try:
        op = await ws.subscribe(EVENTS, id=mission_id, after=1000)
        await until_subscribed(service, service.keys.mission_channel(mission_id))
        await service.cancel_mission(mission_id)
        assert await events_of(ws, op) == []  # nothing after seq 1000, but it completes
    finally:
        await ws.close()
