"""Answers to mission(id) kept until the mission changes (server/read_cache.py): never older than
the event a client has seen, the same bytes as an uncached answer, kept apart per tenant and role,
and dropped when the outputs expire."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from config.settings import ApiKeyGrant, Settings
from mission.llm import Price
from mission.service import MissionService
from mission.store import Reservation, Started
from server.read_cache import ReadCache
from tests.conftest import RunningApi, StartWorker, serve_api
from tests.gql import WsClient

pytestmark = pytest.mark.timeout(60)

READ = "query($id: ID!) { mission(id: $id) { id eventCount status jobs { role status progress attempts } } }"
FULL = "query($id: ID!) { mission(id: $id) { id status budget { spent } jobs { id status output } } }"
EVENTS = "subscription($id: ID!) { missionEvents(missionId: $id) { seq type } }"


def cache_of(api: RunningApi) -> ReadCache:
    app = api.server.config.app
    for route in app.routes:
        reads = getattr(getattr(route, "endpoint", None), "reads", None) or getattr(
            getattr(route, "app", None), "reads", None
        )
        if reads is not None:
            assert isinstance(reads, ReadCache)
            return reads
    raise AssertionError("no read cache")


async def post(
    http: httpx.AsyncClient, api: RunningApi, query: str, key: str | None = None, **variables: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = await http.post(api.url, json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    return response


async def test_a_read_is_never_older_than_the_event_seen_before_it(
    api: RunningApi, service: MissionService, start_worker: StartWorker, http: httpx.AsyncClient
) -> None:
    cache = cache_of(api)
    await start_worker()
    record, _ = await service.deploy("slow_chain", {"inputs": {"seconds": 0.2}})
    ws = await WsClient.connect(api.ws_url)
    seen = 0
    try:
        async for payload in ws.results(await ws.subscribe(EVENTS, id=record.id)):
            event = payload["data"]["missionEvents"]
            seen += 1
            for _ in range(3):  # the first may execute; the others are answered from the cache
                mission = (await post(http, api, READ, id=record.id)).json()["data"]["mission"]
                assert mission["eventCount"] >= event["seq"], (mission, event)
                if event["type"] == "mission.succeeded":
                    assert mission["status"] == "SUCCEEDED"
    finally:
        await ws.close()
    assert seen > 5
    assert cache.hits >= seen  # reads between two events were answered from the cache
    assert cache.misses >= 1


async def test_a_kept_answer_is_the_answer_byte_for_byte(
    settings: Settings, service: MissionService, http: httpx.AsyncClient
) -> None:
    record, _ = await service.deploy("hang")  # no worker: it does not change while we read
    for accept in ("application/json", "application/graphql-response+json"):
        answers: dict[int, list[httpx.Response]] = {}
        for entries in (0, 1024):
            async with serve_api(settings.model_copy(update={"read_cache_entries": entries})) as api:
                answers[entries] = [
                    await http.post(
                        api.url, json={"query": FULL, "variables": {"id": record.id}}, headers={"Accept": accept}
                    )
                    for _ in range(3)
                ]
                if entries:
                    assert cache_of(api).hits == 2
        [uncached] = {(r.status_code, r.headers["content-type"], r.content) for r in answers[0]}
        assert {(r.status_code, r.headers["content-type"], r.content) for r in answers[1024]} == {uncached}
        assert uncached[1].startswith(accept)


async def test_tenants_and_roles_never_get_each_others_kept_answers(
    settings: Settings, service: MissionService, http: httpx.AsyncClient
) -> None:
    keys = {
        "rc-viewer-a": ApiKeyGrant(tenant="tenant-a", role="viewer"),
        "rc-viewer-b": ApiKeyGrant(tenant="tenant-b", role="viewer"),
        "rc-admin": ApiKeyGrant(tenant="hq", role="admin"),
    }
    record, _ = await service.deploy("hang", tenant="tenant-a")
    async with serve_api(settings.model_copy(update={"api_keys": keys})) as api:
        cache = cache_of(api)
        for _ in range(2):
            mine = (await post(http, api, READ, "rc-viewer-a", id=record.id)).json()["data"]["mission"]
            assert mine["id"] == record.id
            assert (await post(http, api, READ, "rc-viewer-b", id=record.id)).json() == {"data": {"mission": None}}
            admin = (await post(http, api, READ, "rc-admin", id=record.id)).json()["data"]["mission"]
            assert admin == mine
        assert cache.hits >= 3  # the second round was answered from the cache, each caller its own


async def test_a_mission_whose_outputs_expired_is_read_again(
    api: RunningApi, service: MissionService, start_worker: StartWorker, http: httpx.AsyncClient
) -> None:
    from tests.conftest import run_to_end

    await start_worker()
    record, _ = await service.deploy("two_stage")
    hub = api.server.lifespan.state["resources"].hub  # type: ignore[attr-defined]
    await run_to_end(service, hub, record.id)
    first = (await post(http, api, FULL, id=record.id)).json()["data"]["mission"]
    assert first["status"] == "SUCCEEDED"
    assert any(job["output"] is not None for job in first["jobs"])
    assert (await post(http, api, FULL, id=record.id)).json()["data"]["mission"] == first  # kept
    await service.redis.delete(service.keys.outputs(record.id))  # what their retention does
    after = (await post(http, api, FULL, id=record.id)).json()["data"]["mission"]
    assert [job["output"] for job in after["jobs"]] == [None] * len(after["jobs"])


async def test_a_model_calls_reservation_shows_though_it_appends_no_event(
    api: RunningApi, service: MissionService, http: httpx.AsyncClient
) -> None:
    """A reservation raises `spent` before its call settles with an event: a kept answer must not
    hide it."""
    record, _ = await service.deploy("llm_calls", {"budget": "10"})
    assert isinstance(await service.store.start_job(record.id, "caller", 1, 60_000, "test"), Started)
    before = [(await post(http, api, FULL, id=record.id)).json()["data"]["mission"] for _ in range(2)]
    assert before[0] == before[1] and before[0]["budget"]["spent"] == "0.00"  # the second was kept
    price = Price.of(Decimal("10000"), Decimal("10000"))  # a cent a token
    worst = Reservation(123, 10, 10, 1, price.input_units, price.output_units, "m")
    seq_before = await service.store.version(record.id)
    result, cents, _ = await service.store.llm_reserve(record.id, "caller", 1, 1, worst)
    assert (result, cents) == ("ok", 123)
    seq_after = await service.store.version(record.id)
    assert seq_before is not None and seq_after is not None and seq_after[0] == seq_before[0]  # no event
    after = (await post(http, api, FULL, id=record.id)).json()["data"]["mission"]
    assert after["budget"]["spent"] == "1.23"
