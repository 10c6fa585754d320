"""Websockets, both protocols: protocol abuse is answered with an error or a protocol close (never a dropped
connection), huge frames are refused, and the subscriptions per connection are capped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from config.settings import Settings
from mission.events import PubSubHub
from mission.service import MissionService
from tests.conftest import eventually, serve_api
from tests.gql import DEPLOY, EVENTS, LEAKS, LEGACY_WS, MAX_REQUEST_BYTES, TRANSPORT_WS, WsClient, deploy_result
from tests.processes import Server

pytestmark = pytest.mark.timeout(60)


NO_MISSION = 'subscription { missionEvents(missionId: "no-such-mission") { seq } }'

UPDATES = "subscription { missionUpdates { id status } }"

MAX_SUBSCRIPTIONS = 20  # Settings.max_subscriptions_per_connection (default)

ALLOWED_CLOSE_CODES = {1000, 1002, 1003, 1007, 1008, 1009, 4400, 4401, 4403, 4406, 4408, 4409, 4429}


@dataclass
class WsOutcome:
    messages: list[dict[str, Any]]
    close_code: int | None  # None while open; 1006 for a connection dropped without a close frame
    close_reason: str = ""


@contextlib.contextmanager
def ws_open(server: Server, protocol: str, init: bool = True) -> Iterator[ClientConnection]:
    with connect(server.ws_url, subprotocols=[protocol], max_size=None, open_timeout=10) as ws:  # type: ignore[list-item]
        if init:
            ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            ack = json.loads(ws.recv(timeout=10))
            assert ack["type"] == "connection_ack", ack
        yield ws


def ws_drain(
    ws: ClientConnection, quiet: float = 0.5, until: Callable[[list[dict[str, Any]]], bool] | None = None
) -> WsOutcome:
    """Messages until the server closes, ``until`` holds, or it stays quiet for ``quiet`` seconds."""
    messages: list[dict[str, Any]] = []
    while until is None or not until(messages):
        try:
            raw = ws.recv(timeout=quiet)
        except TimeoutError:
            break
        except ConnectionClosed as closed:
            frame = closed.rcvd
            return WsOutcome(messages, frame.code if frame else 1006, frame.reason if frame else "")
        message = json.loads(raw)
        if message.get("type") != "ka":
            messages.append(message)
    return WsOutcome(messages, None)


def ws_still_works(ws: ClientConnection, protocol: str) -> None:
    """The connection still serves a subscription: an unknown mission's events end with its error."""
    op_id = uuid.uuid4().hex
    kind = "subscribe" if protocol == TRANSPORT_WS else "start"
    ws.send(json.dumps({"id": op_id, "type": kind, "payload": {"query": NO_MISSION}}))
    outcome = ws_drain(ws, quiet=5, until=lambda ms: any(m.get("id") == op_id and m["type"] == "complete" for m in ms))
    mine = [m for m in outcome.messages if m.get("id") == op_id]
    assert mine and "no mission with id" in json.dumps(mine[0]["payload"]), outcome
    assert mine[-1]["type"] == "complete", outcome


def sub(protocol: str) -> str:
    return "subscribe" if protocol == TRANSPORT_WS else "start"


def frame(**fields: Any) -> str:
    return json.dumps(fields)


def _ws_cases() -> list[Any]:
    cases = []
    for p in (TRANSPORT_WS, LEGACY_WS):
        s = sub(p)
        ok = {"query": NO_MISSION}
        cases += [
            pytest.param(p, ["{not json"], id=f"{p}-invalid-json"),
            pytest.param(p, [b"\x00\x01\xff"], id=f"{p}-binary-frame"),
            pytest.param(p, [frame(type="bogus", id="1")], id=f"{p}-unknown-type"),
            pytest.param(p, [frame(type=5)], id=f"{p}-type-not-a-string"),
            pytest.param(p, [frame(type="connection_init")], id=f"{p}-init-twice"),
            pytest.param(p, [frame(type=s, id="1", payload=ok)] * 2, id=f"{p}-duplicate-id"),
            pytest.param(
                p, [frame(type="complete" if p == TRANSPORT_WS else "stop", id="nope")], id=f"{p}-stop-unknown"
            ),
            pytest.param(p, [frame(type=s, id="1", payload={"query": "subscription { nope }"})], id=f"{p}-invalid-doc"),
            pytest.param(p, [frame(type=s, id="1", payload={**ok, "variables": [1]})], id=f"{p}-variables-a-list"),
            pytest.param(p, [frame(type=s, id="1" * 10_000, payload=ok)], id=f"{p}-10kb-id"),
            pytest.param(p, ["[1, 2]"], id=f"{p}-array-frame"),
            pytest.param(p, ['"hello"'], id=f"{p}-string-frame"),
            pytest.param(
                p,
                [frame(type=s, id="1", payload="x")],
                id=f"{p}-payload-not-object",
            ),
            pytest.param(p, [frame(type=s, id={"a": 1}, payload=ok)], id=f"{p}-id-not-string"),
            pytest.param(
                p,
                [
                    f'{{"type": "{s}", "id": "1", "payload": {{"query": "{{ __typename }}", "variables": '
                    f'{{"x": {"[" * 5000}{"]" * 5000}}}}}}}'
                ],
                id=f"{p}-deeply-nested-frame",
            ),
        ]
        if p == TRANSPORT_WS:
            cases += [
                pytest.param(p, [frame(id="1")], id=f"{p}-no-type"),
                pytest.param(p, [frame(type=s, id="1")], id=f"{p}-no-payload"),
                pytest.param(p, [frame(type=s, payload=ok)], id=f"{p}-no-id"),
            ]
        else:
            cases += [
                pytest.param(p, [frame(id="1")], id=f"{p}-no-type"),
                pytest.param(p, [frame(type=s, id="1")], id=f"{p}-no-payload"),
                pytest.param(p, [frame(type=s, payload=ok)], id=f"{p}-no-id"),
            ]
    return cases


@pytest.mark.parametrize(("protocol", "frames"), _ws_cases())
def test_websocket_protocol_abuse(server: Server, protocol: str, frames: list[str | bytes]) -> None:
    """The server answers a bad frame with an error or a protocol close, never by dropping the connection;
    if it keeps the connection open, the connection still works."""
    with ws_open(server, protocol) as ws:
        for f in frames:
            ws.send(f)
        outcome = ws_drain(ws)
        for message in outcome.messages:
            for leak in LEAKS:
                assert leak not in json.dumps(message), message
            assert "Unexpected error" not in json.dumps(message), message
        if outcome.close_code is None:
            ws_still_works(ws, protocol)
        else:
            assert outcome.close_code in ALLOWED_CLOSE_CODES, outcome


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
def test_websocket_subscribe_before_init_is_refused(server: Server, protocol: str) -> None:
    with ws_open(server, protocol, init=False) as ws:
        ws.send(frame(type=sub(protocol), id="1", payload={"query": UPDATES}))
        outcome = ws_drain(ws, quiet=5)
    assert outcome.close_code == 4401 and not outcome.messages, outcome


def test_websocket_unknown_subprotocol_is_refused(server: Server) -> None:
    for protocols in (["bogus"], None):
        with (
            pytest.raises(ConnectionClosed) as refused,
            connect(server.ws_url, subprotocols=protocols, open_timeout=10) as ws,  # type: ignore[arg-type]
        ):
            ws.recv(timeout=5)
        assert refused.value.rcvd is not None and refused.value.rcvd.code == 4406


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
def test_websocket_huge_payloads(server: Server, protocol: str) -> None:
    # Over the frame limit (uvicorn's ws_max_size = max_request_bytes): closed with 1009, nothing parsed
    # (a frame far over it may be cut off while the client is still sending it).
    for size in (MAX_REQUEST_BYTES + 1024, 4 * 1024 * 1024):
        with ws_open(server, protocol) as ws:
            payload = {"query": UPDATES, "variables": {"pad": "x" * size}}
            try:
                ws.send(frame(type=sub(protocol), id="1", payload=payload))
                close_code = ws_drain(ws, quiet=5).close_code
            except (websockets.exceptions.ConnectionClosed, OSError) as exc:
                close_code = getattr(getattr(exc, "rcvd", None), "code", 1009)
        assert close_code == 1009, close_code
    # Just under it: a subscription like any other (unused variables are ignored); the connection lives on.
    with ws_open(server, protocol) as ws:
        payload = {"query": UPDATES, "variables": {"pad": "x" * (MAX_REQUEST_BYTES - 4096)}}
        ws.send(frame(type=sub(protocol), id="1", payload=payload))
        assert ws_drain(ws).close_code is None
        ws_still_works(ws, protocol)


UNPARSABLE = {
    "syntax-error": "subscription { missionUpdates { id }",
    "over-the-token-limit": "subscription { missionUpdates { " + "id " * 20_000 + "} }",
    "nested-too-deeply": "subscription { missionUpdates { " + "a { " * 1000 + "} " * 1000 + "} }",
    "nul-byte": "subscription { missionUpdates { id } }\u0000",
}


@pytest.mark.parametrize("query", list(UNPARSABLE.values()), ids=list(UNPARSABLE))
@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
def test_websocket_unparsable_documents_get_an_error(server: Server, protocol: str, query: str) -> None:
    """An `error` message naming the syntax error (or, graphql-transport-ws, a 4400 close saying it)."""
    with ws_open(server, protocol) as ws:
        ws.send(frame(type=sub(protocol), id="bad", payload={"query": query}))
        outcome = ws_drain(ws, quiet=1.5, until=lambda ms: any(m.get("id") == "bad" for m in ms))
        if outcome.close_code is not None:
            assert protocol == TRANSPORT_WS and outcome.close_code == 4400, outcome
            assert "Syntax Error" in outcome.close_reason, outcome
            return
        replies = [m for m in outcome.messages if m.get("id") == "bad"]
        assert replies and replies[0]["type"] == "error", outcome
        assert "Syntax Error" in json.dumps(replies[0]["payload"]), replies
        ws_still_works(ws, protocol)


@pytest.mark.parametrize("query", ["{ templates { id } }", 'mutation { cancelMission(id: "x") { __typename } }'])
def test_legacy_ws_refuses_queries_and_mutations_clearly(server: Server, query: str) -> None:
    """graphql-ws runs subscriptions only: a refusal the client can read (it was a masked 'Unexpected error')."""
    with ws_open(server, LEGACY_WS) as ws:
        ws.send(frame(type="start", id="1", payload={"query": query}))
        outcome = ws_drain(ws, quiet=5, until=lambda ms: any(m.get("id") == "1" for m in ms))
    reply = next(m for m in outcome.messages if m.get("id") == "1")
    assert "Unexpected error" not in json.dumps(reply), reply
    assert "not allowed" in json.dumps(reply), reply


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
def test_websocket_1000_subscribes_on_one_connection(server: Server, protocol: str) -> None:
    with ws_open(server, protocol) as ws:
        for i in range(1000):
            ws.send(frame(type=sub(protocol), id=str(i), payload={"query": UPDATES}))
        refused = 1000 - MAX_SUBSCRIPTIONS
        outcome = ws_drain(ws, quiet=10, until=lambda ms: len(ms) >= refused)
        assert outcome.close_code is None, outcome
        assert len(outcome.messages) == refused, outcome.messages[:5]
        assert {m["type"] for m in outcome.messages} == {"error"}
        assert all("Subscription limit reached" in json.dumps(m["payload"]) for m in outcome.messages)
        assert {int(m["id"]) for m in outcome.messages} == set(range(MAX_SUBSCRIPTIONS, 1000))
        # Stopping one frees a slot, once it is live (a stop in the instant Redis confirms the subscription is
        # lost, see test_a_subscription_cancelled_as_redis_confirms_it_still_ends): a deploy's update shows it is.
        assert deploy_result(server.post(DEPLOY, t="two_stage"))["__typename"] == "MissionDeployed"
        data = "next" if protocol == TRANSPORT_WS else "data"
        live = ws_drain(ws, quiet=10, until=lambda ms: any(m.get("id") == "0" and m["type"] == data for m in ms))
        assert any(m.get("id") == "0" and m["type"] == data for m in live.messages), live
        ws.send(frame(type="complete" if protocol == TRANSPORT_WS else "stop", id="0"))
        ws_still_works(ws, protocol)


async def read_until(ws: WsClient, done: Any, timeout: float = 10) -> list[dict[str, Any]]:
    """Messages (keep-alives skipped) until ``done(messages)`` holds."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not done(seen):
            seen.append(await ws.receive_type())
    return seen


def events_of(messages: list[dict[str, Any]], op: str) -> list[dict[str, Any]]:
    return [m["payload"]["data"]["missionEvents"] for m in messages if m["id"] == op and m["type"] in ("next", "data")]


def completed(messages: list[dict[str, Any]]) -> set[str]:
    return {m["id"] for m in messages if m["type"] == "complete"}


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_subscriptions_per_connection_are_capped(
    settings: Settings, service: MissionService, protocol: str
) -> None:
    record, _ = await service.deploy("hang")  # no worker: it stays queued and its streams stay open
    stored = len(await service.store.events(record.id))
    async with serve_api(settings.model_copy(update={"max_subscriptions_per_connection": 2})) as api:
        hub = api.server.lifespan.state["resources"].hub  # type: ignore[attr-defined]
        ws = await WsClient.connect(api.ws_url, protocol)
        try:
            first = await ws.subscribe(EVENTS, id=record.id)
            second = await ws.subscribe(EVENTS, id=record.id)
            # Both replay the stored events: both are running.
            seen = await read_until(ws, lambda m: len(events_of(m, first)) == len(events_of(m, second)) == stored)
            await eventually(lambda: hub.subscriber_count == 2)

            third = await ws.subscribe(EVENTS, id=record.id)
            [refusal] = await read_until(ws, lambda m: len(m) == 1)
            if protocol == TRANSPORT_WS:  # an error for that operation; the socket stays open
                assert refusal == {"id": third, "type": "error", "payload": [{"message": "Subscription limit reached"}]}
            else:
                assert refusal == {"id": third, "type": "error", "payload": {"message": "Subscription limit reached"}}
            assert hub.subscriber_count == 2

            # The earlier subscriptions keep working: they see the cancel, then complete.
            await service.cancel_mission(record.id)
            seen += await read_until(ws, lambda m: completed(m) == {first, second})
            log = await service.store.events(record.id)
            for op in (first, second):
                assert [e["seq"] for e in events_of(seen, op)] == [e.seq for e in log]
                assert events_of(seen, op)[-1]["type"] == "mission.cancelled"
            assert third not in {m["id"] for m in seen}

            # Their slots are free again.
            await eventually(lambda: hub.subscriber_count == 0)
            fourth = await ws.subscribe(EVENTS, id=record.id)
            fifth = await ws.subscribe(EVENTS, id=record.id)
            seen = await read_until(ws, lambda m: completed(m) == {fourth, fifth})
            assert not [m for m in seen if m["type"] == "error"]
            assert len(events_of(seen, fourth)) == len(events_of(seen, fifth)) == len(log)
        finally:
            await ws.close()


async def test_a_subscription_cancelled_as_redis_confirms_it_still_ends(service: MissionService) -> None:
    hub = PubSubHub(service.redis)  # not started: the test plays Redis's SUBSCRIBE confirmation itself
    channel = "fuzz:confirm-race"

    async def listen() -> None:
        async with hub.subscribe(channel) as sub:
            await sub.get()

    task = asyncio.create_task(listen())
    await eventually(lambda: hub.channel_count == 1)  # the listener waits for the confirmation
    hub._dispatch({"type": "subscribe", "channel": channel, "data": 1})  # Redis confirms...
    await asyncio.sleep(0)
    task.cancel()  # ...and the client stops the subscription in the same instant
    done, _ = await asyncio.wait({task}, timeout=2)
    if not done:  # let the leaked listener go, for the test's own sake
        hub._dispatch({"type": "message", "channel": channel, "data": "bye"})
        await asyncio.wait({task}, timeout=2)
    assert done, "the cancelled subscription is still running"
    assert hub.subscriber_count == 0
