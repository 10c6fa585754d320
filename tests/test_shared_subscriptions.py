"""Shared subscriptions (server/multiplex.py): identical subscriptions of one visibility run once and
send the same text to every socket; different tenants or roles never share; late members of a
mission's event stream get it from the start; the execution stops when its last member leaves."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from config.settings import ApiKeyGrant, Settings
from mission.events import PubSubHub
from mission.service import MissionService
from server.multiplex import MAX_PENDING, Multiplexer, SharedResult, _End, _Member
from tests.conftest import RunningApi, StartWorker, eventually, serve_api
from tests.gql import DEPLOY, LEGACY_WS, TRANSPORT_WS, WsClient

pytestmark = pytest.mark.timeout(60)

EVENTS = "subscription($id: ID!) { missionEvents(missionId: $id) { seq missionId type status } }"
UPDATES = "subscription { missionUpdates { id status } }"
TENANT_A, TENANT_B = "tenant-a", "tenant-b"
VIEWER_A, VIEWER_B, OPERATOR_A = "shr-viewer-a-key", "shr-viewer-b-key", "shr-operator-a-key"
KEYS = {
    VIEWER_A: ApiKeyGrant(tenant=TENANT_A, role="viewer"),
    VIEWER_B: ApiKeyGrant(tenant=TENANT_B, role="viewer"),
    OPERATOR_A: ApiKeyGrant(tenant=TENANT_A, role="operator"),
}


def resources(api: RunningApi) -> tuple[Multiplexer, PubSubHub]:
    found = api.server.lifespan.state["resources"]  # type: ignore[attr-defined]
    assert found.multiplexer is not None
    return found.multiplexer, found.hub


async def raw_frames(ws: WsClient, until_type: str = "complete", timeout: float = 10) -> list[str]:
    """Every text frame up to and including the first of ``until_type``, as sent."""
    frames: list[str] = []
    while True:
        raw = await asyncio.wait_for(ws.ws.recv(), timeout)
        assert isinstance(raw, str)
        if json.loads(raw)["type"] == "ka":
            continue
        frames.append(raw)
        if json.loads(raw)["type"] == until_type:
            return frames


async def events_of(ws: WsClient, op: str) -> list[dict[str, Any]]:
    found = []
    async for payload in ws.results(op):
        assert "errors" not in payload, payload
        found.append(payload["data"]["missionEvents"])
    return found


async def test_identical_subscriptions_share_one_execution_and_get_the_same_text(
    api: RunningApi, service: MissionService
) -> None:
    mux, hub = resources(api)
    record, _ = await service.deploy("hang")  # no worker: it waits until cancelled
    stored = await service.store.events(record.id)
    sockets = [await WsClient.connect(api.ws_url, TRANSPORT_WS if i % 2 else LEGACY_WS) for i in range(6)]
    try:
        for ws in sockets:
            assert await ws.subscribe(EVENTS, id=record.id) == "1"
        replays = [await read_replay(ws, len(stored)) for ws in sockets]
        assert mux.executions == 1  # both protocols, one execution
        await eventually(lambda: hub.subscriber_count == 6)  # each member counts as a subscriber
        await service.cancel_mission(record.id)
        frames = [replay + await raw_frames(ws) for ws, replay in zip(sockets, replays, strict=True)]
    finally:
        for ws in sockets:
            await ws.close()
    transport = {tuple(f) for f, ws in zip(frames, sockets, strict=True) if ws.protocol == TRANSPORT_WS}
    legacy = {tuple(f) for f, ws in zip(frames, sockets, strict=True) if ws.protocol == LEGACY_WS}
    assert len(transport) == 1 and len(legacy) == 1  # byte for byte the same on every socket of a protocol
    [sent], [sent_legacy] = transport, legacy
    messages = [json.loads(f) for f in sent]
    assert [m["type"] for m in messages] == ["next"] * (len(messages) - 1) + ["complete"]
    seqs = [m["payload"]["data"]["missionEvents"]["seq"] for m in messages[:-1]]
    assert seqs == [e.seq for e in await service.store.events(record.id)]
    assert messages[-2]["payload"]["data"]["missionEvents"]["type"] == "mission.cancelled"
    # the legacy envelope differs only in its type: the payload is the same text
    assert [m.replace('"type":"data"', '"type":"next"') for m in sent_legacy[:-1]] == list(sent[:-1])
    await eventually(lambda: mux.executions == 0 and hub.channel_count == 0)


async def read_replay(ws: WsClient, count: int) -> list[str]:
    return [f for _ in range(count) for f in [await next_frame(ws)]]


async def next_frame(ws: WsClient) -> str:
    while True:
        raw = await asyncio.wait_for(ws.ws.recv(), 10)
        assert isinstance(raw, str)
        if json.loads(raw)["type"] != "ka":
            return raw


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_two_tenants_on_the_same_document_never_share_a_result(
    settings: Settings, service: MissionService, protocol: str
) -> None:
    keyed = settings.model_copy(update={"api_keys": KEYS})
    mine, _ = await service.deploy("hang", tenant=TENANT_A)
    async with serve_api(keyed) as api:
        mux, _ = resources(api)
        # tenant B subscribes first: were tenant A to join B's execution, it would get B's refusal
        b = await WsClient.connect(api.ws_url, protocol, payload={"Authorization": f"Bearer {VIEWER_B}"})
        a = await WsClient.connect(api.ws_url, protocol, payload={"Authorization": f"Bearer {VIEWER_A}"})
        operator = await WsClient.connect(api.ws_url, protocol, payload={"Authorization": f"Bearer {OPERATOR_A}"})
        try:
            b_events = [p async for p in b.results(await b.subscribe(EVENTS, id=mine.id), timeout=10)]
            assert b_events == [{"data": None, "errors": [{"message": f"no mission with id {mine.id!r}"}]}]
            b_updates = await b.subscribe(UPDATES)
            a_events = await a.subscribe(EVENTS, id=mine.id)
            a_updates = await a.subscribe(UPDATES)
            o_updates = await operator.subscribe(UPDATES)
            first = [e async for e in take(a.results(a_events), 1)]
            assert first[0]["data"]["missionEvents"]["type"] == "mission.deployed"
            # updates: A (viewer), A (operator) and B run apart: three executions, plus A's events
            await eventually(lambda: mux.executions == 4)
            theirs, _ = await service.deploy("hang", tenant=TENANT_B)
            ours, _ = await service.deploy("hang", tenant=TENANT_A)
            assert [u["id"] async for u in updates(b, b_updates, 1)] == [theirs.id]
            assert [u["id"] async for u in updates(a, a_updates, 1)] == [ours.id]
            assert [u["id"] async for u in updates(operator, o_updates, 1)] == [ours.id]
        finally:
            for ws in (a, b, operator):
                await ws.close()


async def take(results: Any, count: int) -> Any:
    n = 0
    async for item in results:
        yield item
        n += 1
        if n == count:
            return


async def updates(ws: WsClient, op: str, count: int) -> Any:
    async for payload in take(ws.results(op, timeout=10), count):
        assert "errors" not in payload, payload
        yield payload["data"]["missionUpdates"]


async def test_a_late_member_gets_the_mission_from_its_first_event(
    api: RunningApi, service: MissionService, start_worker: StartWorker
) -> None:
    mux, _ = resources(api)
    await start_worker()
    record, _ = await service.deploy("slow_chain", {"inputs": {"seconds": 0.3}})
    early = await WsClient.connect(api.ws_url)
    late = await WsClient.connect(api.ws_url, LEGACY_WS)
    try:
        early_op = await early.subscribe(EVENTS, id=record.id)
        seen: list[dict[str, Any]] = []
        async for payload in early.results(early_op):
            seen.append(payload["data"]["missionEvents"])
            if seen[-1]["type"] == "job.progress":  # live events are flowing
                break
        late_events = await events_of(late, await late.subscribe(EVENTS, id=record.id))
        early_events = seen + await events_of(early, early_op)
    finally:
        await early.close()
        await late.close()
    log = [e.seq for e in await service.store.events(record.id)]
    assert [e["seq"] for e in late_events] == [e["seq"] for e in early_events] == log
    assert late_events == early_events
    assert late_events[-1]["type"] == "mission.succeeded"
    await eventually(lambda: mux.executions == 0)


async def test_a_member_leaving_ends_nothing_but_the_last_one_stops_the_execution(
    api: RunningApi, service: MissionService
) -> None:
    mux, hub = resources(api)
    record, _ = await service.deploy("hang")
    stored = len(await service.store.events(record.id))
    one, two = await WsClient.connect(api.ws_url), await WsClient.connect(api.ws_url, LEGACY_WS)
    try:
        op_one, op_two = await one.subscribe(EVENTS, id=record.id), await two.subscribe(EVENTS, id=record.id)
        await read_replay(one, stored)
        await read_replay(two, stored)
        await one.stop(op_one)
        await eventually(lambda: hub.subscriber_count == 1)
        assert mux.executions == 1
        await service.cancel_mission(record.id)
        assert [e["type"] for e in await events_of(two, op_two)][-1] == "mission.cancelled"
        second, _ = await service.deploy("hang")
        op_three = await two.subscribe(EVENTS, id=second.id)
        await read_replay(two, stored)
        await eventually(lambda: mux.executions == 1 and hub.channel_count == 1)
        await two.stop(op_three)  # its last member leaves: the execution stops, the channel is let go
        await eventually(lambda: mux.executions == 0 and hub.channel_count == 0 and hub.subscriber_count == 0)
    finally:
        await one.close()
        await two.close()


async def test_operations_that_are_not_subscriptions_are_never_shared(api: RunningApi) -> None:
    ws = await WsClient.connect(api.ws_url)
    try:
        ops = [await ws.subscribe(DEPLOY, t="hang") for _ in range(2)]
        results = await ws.results_of(ops)  # the two run at once: their messages may interleave
        ids = set()
        for op in ops:
            [payload] = results[op]
            ids.add(payload["data"]["deployMission"]["mission"]["id"])
    finally:
        await ws.close()
    assert len(ids) == 2  # two mutations, two missions


def test_a_member_that_falls_too_far_behind_is_ended_with_an_error() -> None:
    member = _Member()
    result = SharedResult(data={"n": 1}, errors=None)
    for _ in range(MAX_PENDING + 1):
        member.put(result)
    items = [member.queue.get_nowait() for _ in range(member.queue.qsize())]
    assert len(items) == 2 and isinstance(items[1], _End)
    assert "fell 10000 results behind" in str(items[0].errors)  # type: ignore[union-attr]


def test_a_shared_result_is_serialised_once_and_framed_per_operation() -> None:
    result = SharedResult(data={"missionEvents": {"seq": 1}}, errors=None)
    assert json.loads(result.frame('a"b', "next")) == {
        "id": 'a"b',
        "type": "next",
        "payload": {"data": {"missionEvents": {"seq": 1}}},
    }
    assert result.payload is result.payload  # computed once
