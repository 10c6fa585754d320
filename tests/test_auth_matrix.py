"""The auth matrix: every operation of the API contract × every kind of caller, over HTTP and both
websocket protocols, against a real server configured with API keys (and a real Redis).

Callers: no key, a wrong key, a viewer of tenant A, an operator of tenant B (another tenant), an
operator of tenant A, an admin. Another tenant's mission must answer exactly as a nonexistent one.
Tests marked xfail expose bugs or doubts (see their reasons)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import websockets

from config.settings import ApiKeyGrant, Settings
from mission.models import MissionStatus
from mission.service import MissionService
from tests.conftest import TEST_TEMPLATE_IDS, RunningApi, eventually, serve_api
from tests.gql import CANCEL, DEPLOY, LEGACY_WS, TRANSPORT_WS, WsClient

pytestmark = pytest.mark.timeout(30)

TENANT_A, TENANT_B, TENANT_HQ = "tenant-a", "tenant-b", "hq"

# Recognisable keys (a log or an error that carried one would be easy to spot).
VIEWER_A = "vwr-A-key-6f1d0c2e9b7a4e31"
OPERATOR_A = "opr-A-key-83c5a9d14f2b6e07"
OPERATOR_B = "opr-B-key-1b7e4d9a0c3f8e52"
ADMIN = "adm-HQ-key-5d2a8f6c1e9b3a70"
WRONG = "not-a-key-0000000000000000"

KEYS = {
    VIEWER_A: ApiKeyGrant(tenant=TENANT_A, role="viewer"),
    OPERATOR_A: ApiKeyGrant(tenant=TENANT_A, role="operator"),
    OPERATOR_B: ApiKeyGrant(tenant=TENANT_B, role="operator"),
    ADMIN: ApiKeyGrant(tenant=TENANT_HQ, role="admin"),
}

CALLERS = {"viewer_a": VIEWER_A, "operator_b": OPERATOR_B, "operator_a": OPERATOR_A, "admin": ADMIN}
# The tenants whose missions each caller sees.
SEES = {
    "viewer_a": {TENANT_A},
    "operator_b": {TENANT_B},
    "operator_a": {TENANT_A},
    "admin": {TENANT_A, TENANT_B, TENANT_HQ},
}
TENANT_OF_CALLER = {"viewer_a": TENANT_A, "operator_b": TENANT_B, "operator_a": TENANT_A, "admin": TENANT_HQ}
CAN_OPERATE = {"viewer_a": False, "operator_b": True, "operator_a": True, "admin": True}

FORBIDDEN = "forbidden: this API key may only read (deploy and cancel need an operator key)"
UNAUTHENTICATED = {
    "errors": [
        {
            "message": "missing or invalid API key: send Authorization: Bearer <key>",
            "extensions": {"code": "UNAUTHENTICATED"},
        }
    ]
}

TEMPLATES = "{ templates { id } }"
TEMPLATE = "query($id: ID!) { template(id: $id) { id name } }"
GRAPH = "query($t: ID!) { departmentGraph(templateId: $t) { stages edges { from to } } }"
MISSION = "query($id: ID!) { mission(id: $id) { id templateId status } }"
MISSIONS = """
query($status: MissionStatus, $t: ID) {
  missions(status: $status, templateId: $t, first: 100) { totalCount edges { node { id } } }
}"""
APPROVE = "mutation($id: ID!) { approveMission(id: $id) { __typename } }"
REJECT = 'mutation($id: ID!) { rejectMission(id: $id, reason: "no") { __typename } }'
EVENTS = "subscription($id: ID!) { missionEvents(missionId: $id) { seq missionId type } }"
UPDATES = "subscription { missionUpdates { id status } }"


def random_id() -> str:
    return "mssn_" + uuid.uuid4().hex


# Every operation, with variables that would make it succeed for a caller allowed to run it.
OPERATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "templates": (TEMPLATES, {}),
    "template": (TEMPLATE, {"id": "two_stage"}),
    "mission": (MISSION, {"id": random_id()}),
    "missions": (MISSIONS, {}),
    "departmentGraph": (GRAPH, {"t": "two_stage"}),
    "deployMission": (DEPLOY, {"t": "two_stage"}),
    "cancelMission": (CANCEL, {"id": random_id()}),
    "approveMission": (APPROVE, {"id": random_id()}),
    "rejectMission": (REJECT, {"id": random_id()}),
    "missionEvents": (EVENTS, {"id": random_id()}),
    "missionUpdates": (UPDATES, {}),
}


def keyed(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_keys": KEYS})


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[RunningApi]:
    """The real server, with the four keys above (no open mode)."""
    async with serve_api(keyed(settings)) as running:
        yield running


@dataclass
class World:
    """Missions of two tenants, none running (no worker): ``a1`` queued, ``a2`` cancelled (so its
    event stream is complete), ``b1`` queued, ``hq1`` the admin's own."""

    a1: str
    a2: str
    b1: str
    hq1: str

    def tenant(self, mission_id: str) -> str:
        return {self.a1: TENANT_A, self.a2: TENANT_A, self.b1: TENANT_B, self.hq1: TENANT_HQ}[mission_id]


@pytest.fixture
async def world(service: MissionService) -> World:
    a1, _ = await service.deploy("two_stage", tenant=TENANT_A)
    a2, _ = await service.deploy("two_stage", tenant=TENANT_A)
    await service.cancel_mission(a2.id)
    b1, _ = await service.deploy("hang", tenant=TENANT_B)
    hq1, _ = await service.deploy("flaky", tenant=TENANT_HQ)
    return World(a1=a1.id, a2=a2.id, b1=b1.id, hq1=hq1.id)


async def answer(
    http: httpx.AsyncClient, api: RunningApi, api_key: str, query: str, **variables: Any
) -> dict[str, Any]:
    """The whole body of an authenticated request (which must be a 200)."""
    response = await http.post(api.url, json={"query": query, "variables": variables}, headers=bearer(api_key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def data_of(
    http: httpx.AsyncClient, api: RunningApi, api_key: str, query: str, **variables: Any
) -> dict[str, Any]:
    body = await answer(http, api, api_key, query, **variables)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]
    return result


def swap(text: str, mission_id: str) -> str:
    """A message with its mission id replaced, to compare messages' shapes."""
    return text.replace(mission_id, "<ID>")


async def connect(api: RunningApi, protocol: str, key: str) -> WsClient:
    return await WsClient.connect(api.ws_url, protocol, payload={"Authorization": f"Bearer {key}"})


async def collect(ws: WsClient, op_id: str) -> list[dict[str, Any]]:
    return [payload async for payload in ws.results(op_id, timeout=10)]


async def refused(ws: WsClient) -> tuple[list[dict[str, Any]], int | None]:
    """Every message the server sends until it closes the socket, and the close code."""
    received = []
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            received.append(await ws.receive(timeout=10))
    return received, ws.ws.close_code


# --- no key, a wrong key: HTTP ---


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("headers", [{}, bearer(WRONG)], ids=["no_key", "wrong_key"])
async def test_http_without_a_valid_key_is_401(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, operation: str, headers: dict[str, str]
) -> None:
    query, variables = OPERATIONS[operation]
    response = await http.post(api.url, json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == UNAUTHENTICATED
    assert (await service.store.page("*")).total == 0  # nothing deployed, nothing cancelled
    assert await service.redis.keys(f"{service.keys.prefix}:rate:*") == []


NEAR_MISSES = [
    f"Bearer {VIEWER_A[:-1]}",  # one character short
    f"Bearer {VIEWER_A}x",  # one character long
    f"Bearer {VIEWER_A.upper()}",  # keys are case-sensitive
    f"Bearer {VIEWER_A} {VIEWER_A}",
    f"Basic {VIEWER_A}",  # another scheme
    f"Basic {base64.b64encode(f'{VIEWER_A}:'.encode()).decode()}",
    f"Token {VIEWER_A}",
    VIEWER_A,  # no scheme
    "Bearer",
    "",
]


async def test_http_malformed_or_near_miss_keys_are_401(http: httpx.AsyncClient, api: RunningApi) -> None:
    for authorization in NEAR_MISSES:
        response = await http.post(api.url, json={"query": TEMPLATES}, headers={"Authorization": authorization})
        assert response.status_code == 401, authorization
        assert response.json() == UNAUTHENTICATED
    for scheme in ("Bearer", "bearer", "BEARER"):  # the scheme is case-insensitive, the key is not
        response = await http.post(
            api.url, json={"query": TEMPLATES}, headers={"Authorization": f"{scheme} {VIEWER_A}"}
        )
        assert response.status_code == 200, scheme


async def test_http_get_queries_need_a_key_too(http: httpx.AsyncClient, api: RunningApi) -> None:
    params = {"query": TEMPLATES}
    for headers in ({}, bearer(WRONG), {"Accept": "text/html"}):  # a query in the URL is no page request
        response = await http.get(api.url, params=params, headers=headers)
        assert response.status_code == 401
        assert response.json() == UNAUTHENTICATED
    ok = await http.get(api.url, params=params, headers=bearer(VIEWER_A))
    assert ok.status_code == 200
    assert [t["id"] for t in ok.json()["data"]["templates"]] == TEST_TEMPLATE_IDS


async def test_the_graphiql_page_itself_needs_no_key(http: httpx.AsyncClient, api: RunningApi) -> None:
    page = await http.get(api.url, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()
    assert VIEWER_A not in page.text


# --- no key, a wrong key: websockets ---

BAD_INIT_PAYLOADS: dict[str, dict[str, Any] | None] = {
    "no_payload": None,  # connection_init without a payload at all
    "empty": {},
    "wrong_bearer": {"Authorization": f"Bearer {WRONG}"},
    "wrong_api_key": {"apiKey": WRONG},
    "near_miss": {"Authorization": f"Bearer {OPERATOR_A[:-1]}"},
    "no_scheme": {"Authorization": OPERATOR_A},
    "other_scheme": {"Authorization": f"Basic {OPERATOR_A}"},
    "not_a_string": {"Authorization": ["Bearer", OPERATOR_A], "apiKey": 12345},
    "key_in_another_field": {"token": OPERATOR_A, "key": OPERATOR_A},
}


@pytest.mark.parametrize("payload", list(BAD_INIT_PAYLOADS))
@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_websocket_without_a_valid_key_is_refused(api: RunningApi, protocol: str, payload: str) -> None:
    ws = await WsClient.connect(api.ws_url, protocol, init=False)
    init: dict[str, Any] = {"type": "connection_init"}
    if BAD_INIT_PAYLOADS[payload] is not None:
        init["payload"] = BAD_INIT_PAYLOADS[payload]
    await ws.send(init)
    # Whatever the client sends next must not run.
    await ws.subscribe(UPDATES)
    received, code = await refused(ws)
    if protocol == TRANSPORT_WS:
        assert received == []
        assert code == 4403
    else:
        assert received == [{"type": "connection_error", "payload": {"message": "missing or invalid API key"}}]
        assert code == 1011  # closed at once, as an error (what Strawberry does after connection_error)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
@pytest.mark.parametrize("caller", list(CALLERS))
async def test_websocket_with_a_valid_key_is_acknowledged(api: RunningApi, protocol: str, caller: str) -> None:
    key = CALLERS[caller]
    for payload in (
        {"Authorization": f"Bearer {key}"},
        {"authorization": f"bearer {key}"},
        {"AUTHORIZATION": f"Bearer {key}"},
        {"apiKey": key},
    ):
        ws = await WsClient.connect(api.ws_url, protocol, payload=payload)  # asserts the connection_ack
        try:
            nonexistent = random_id()
            results = await collect(ws, await ws.subscribe(EVENTS, id=nonexistent))
            assert results == [{"data": None, "errors": [{"message": f"no mission with id {nonexistent!r}"}]}]
        finally:
            await ws.close()


@pytest.mark.parametrize("operation", ["missionEvents", "missionUpdates", "templates", "deployMission"])
@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_websocket_that_skips_connection_init_gets_nothing(
    api: RunningApi, service: MissionService, protocol: str, operation: str
) -> None:
    ws = await WsClient.connect(api.ws_url, protocol, init=False)
    query, variables = OPERATIONS[operation]
    await ws.subscribe(query, **variables)
    received, code = await refused(ws)
    assert received == []
    assert code == 4401
    assert (await service.store.page("*")).total == 0


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_websocket_refused_then_subscribing_at_once_gets_nothing(
    api: RunningApi, service: MissionService, protocol: str
) -> None:
    """The refusal and a subscribe sent right behind it, in one burst: only the refusal comes back."""
    ws = await WsClient.connect(api.ws_url, protocol, init=False)
    await ws.send({"type": "connection_init", "payload": {"apiKey": WRONG}})
    for _ in range(3):
        await ws.subscribe(UPDATES)
        await ws.subscribe(DEPLOY, t="two_stage")
    received, _ = await refused(ws)
    assert all(message["type"] == "connection_error" for message in received)
    assert (await service.store.page("*")).total == 0


# --- read-only operations every key may run ---


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_templates_and_graphs_are_the_same_for_every_caller(
    http: httpx.AsyncClient, api: RunningApi, caller: str
) -> None:
    key = CALLERS[caller]
    listed = await data_of(http, api, key, TEMPLATES)
    assert [t["id"] for t in listed["templates"]] == TEST_TEMPLATE_IDS
    one = await data_of(http, api, key, TEMPLATE, id="two_stage")
    assert one == {"template": {"id": "two_stage", "name": "Two stage"}}
    assert await data_of(http, api, key, TEMPLATE, id="nope") == {"template": None}
    graph = await data_of(http, api, key, GRAPH, t="two_stage")
    assert graph == {"departmentGraph": {"stages": [["Up"], ["Down"]], "edges": [{"from": "Up", "to": "Down"}]}}
    assert await data_of(http, api, key, GRAPH, t="nope") == {"departmentGraph": None}


# --- mission, missions: tenancy ---


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_mission_is_visible_only_to_its_tenant_and_admins(
    http: httpx.AsyncClient, api: RunningApi, world: World, caller: str
) -> None:
    key = CALLERS[caller]
    nonexistent = random_id()
    unknown = await answer(http, api, key, MISSION, id=nonexistent)
    assert unknown == {"data": {"mission": None}}
    for mission_id in (world.a1, world.a2, world.b1, world.hq1):
        body = await answer(http, api, key, MISSION, id=mission_id)
        if world.tenant(mission_id) in SEES[caller]:
            assert body["data"]["mission"]["id"] == mission_id, body
        else:
            assert body == unknown  # exactly as a mission that does not exist


MISSIONS_FILTERS: list[dict[str, str]] = [
    {},
    {"status": "QUEUED"},
    {"status": "CANCELLED"},
    {"status": "SUCCEEDED"},
    {"t": "two_stage"},
    {"t": "hang"},
    {"status": "QUEUED", "t": "two_stage"},
    {"status": "QUEUED", "t": "hang"},
]


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_missions_lists_and_counts_only_the_callers_tenant(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, world: World, caller: str
) -> None:
    for filters in MISSIONS_FILTERS:
        expected = []
        for mission_id in (world.hq1, world.b1, world.a2, world.a1):  # newest first
            record = await service.store.read_one(mission_id)
            assert record is not None
            if world.tenant(mission_id) not in SEES[caller]:
                continue
            if "status" in filters and record.status.value != filters["status"]:
                continue
            if "t" in filters and record.template_id != filters["t"]:
                continue
            expected.append(mission_id)
        page = (await data_of(http, api, CALLERS[caller], MISSIONS, **filters))["missions"]
        assert [edge["node"]["id"] for edge in page["edges"]] == expected, filters
        assert page["totalCount"] == len(expected), filters


# --- deployMission ---


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_deploy_needs_an_operator_and_belongs_to_the_deploying_keys_tenant(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, caller: str
) -> None:
    key = CALLERS[caller]
    body = await answer(http, api, key, DEPLOY, t="two_stage")
    if not CAN_OPERATE[caller]:
        assert body == {
            "data": None,
            "errors": [{"message": FORBIDDEN, "locations": [{"line": 3, "column": 3}], "path": ["deployMission"]}],
        }
        assert (await service.store.page("*")).total == 0  # nothing stored
        assert await service.redis.keys(f"{service.keys.prefix}:rate:*") == []  # no rate-limit hit either
        return
    deployed = body["data"]["deployMission"]
    assert deployed["__typename"] == "MissionDeployed" and deployed["created"] is True
    mission_id = deployed["mission"]["id"]
    assert await service.store.tenant_of(mission_id) == TENANT_OF_CALLER[caller]
    # Who can see it now: its tenant's keys and admins, nobody else.
    for other, other_key in CALLERS.items():
        seen = await answer(http, api, other_key, MISSION, id=mission_id)
        if TENANT_OF_CALLER[caller] in SEES[other]:
            assert seen["data"]["mission"]["id"] == mission_id, (other, seen)
        else:
            assert seen == {"data": {"mission": None}}, other


async def test_idempotency_keys_are_per_tenant(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService
) -> None:
    """Another tenant reusing an idempotency key gets its own mission, never the first tenant's."""
    first = (await data_of(http, api, OPERATOR_A, DEPLOY, t="two_stage", key="shared-key"))["deployMission"]
    other = (await data_of(http, api, OPERATOR_B, DEPLOY, t="two_stage", key="shared-key"))["deployMission"]
    again = (await data_of(http, api, OPERATOR_A, DEPLOY, t="two_stage", key="shared-key"))["deployMission"]
    assert first["created"] is True and other["created"] is True and again["created"] is False
    assert other["mission"]["id"] != first["mission"]["id"]
    assert again["mission"]["id"] == first["mission"]["id"]
    assert await service.store.tenant_of(other["mission"]["id"]) == TENANT_B
    assert (await service.store.page("*")).total == 2


# --- cancelMission ---


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_cancel_needs_an_operator_of_the_missions_tenant(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, world: World, caller: str
) -> None:
    key = CALLERS[caller]
    body = await answer(http, api, key, CANCEL, id=world.a1)
    if not CAN_OPERATE[caller]:
        assert body == {
            "data": None,
            "errors": [{"message": FORBIDDEN, "locations": [{"line": 3, "column": 3}], "path": ["cancelMission"]}],
        }
        assert await service.store.status(world.a1) == MissionStatus.QUEUED
        return
    result = body["data"]["cancelMission"]
    if TENANT_A in SEES[caller]:
        assert result == {"__typename": "MissionCancelled", "mission": {"id": world.a1, "status": "CANCELLED"}}
        assert await service.store.status(world.a1) == MissionStatus.CANCELLED
        return
    # Another tenant: exactly what a random id gets, and the mission is untouched.
    nonexistent = random_id()
    unknown = (await data_of(http, api, key, CANCEL, id=nonexistent))["cancelMission"]
    assert result == {
        "__typename": "MissionNotFound",
        "message": f"no mission with id {world.a1!r}",
        "missionId": world.a1,
    }
    assert unknown["__typename"] == result["__typename"]
    assert swap(unknown["message"], nonexistent) == swap(result["message"], world.a1)
    assert unknown["missionId"] == nonexistent
    assert await service.store.status(world.a1) == MissionStatus.QUEUED
    events = await service.store.events(world.a1)
    assert [e.type for e in events if e.type.startswith("mission.")] == ["mission.deployed"]


@pytest.mark.parametrize("caller", ["operator_a", "operator_b", "admin"])
async def test_cancel_of_a_nonexistent_or_malformed_id_is_mission_not_found(
    http: httpx.AsyncClient, api: RunningApi, caller: str
) -> None:
    for mission_id in (random_id(), "nope", "mssn_" + "z" * 32):
        result = (await data_of(http, api, CALLERS[caller], CANCEL, id=mission_id))["cancelMission"]
        assert result == {
            "__typename": "MissionNotFound",
            "message": f"no mission with id {mission_id!r}",
            "missionId": mission_id,
        }


# --- missionEvents ---


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
@pytest.mark.parametrize("caller", list(CALLERS))
async def test_mission_events_only_for_the_missions_tenant(
    api: RunningApi, service: MissionService, world: World, protocol: str, caller: str
) -> None:
    ws = await connect(api, protocol, CALLERS[caller])
    try:
        nonexistent = random_id()
        unknown = await collect(ws, await ws.subscribe(EVENTS, id=nonexistent))
        assert unknown == [{"data": None, "errors": [{"message": f"no mission with id {nonexistent!r}"}]}]
        results = await collect(ws, await ws.subscribe(EVENTS, id=world.a2))  # cancelled: the stream ends
    finally:
        await ws.close()
    if TENANT_A in SEES[caller]:
        events = [payload["data"]["missionEvents"] for payload in results]
        stored = await service.store.events(world.a2)
        assert events == [{"seq": e.seq, "missionId": world.a2, "type": e.type} for e in stored]
        assert events[0]["type"] == "mission.deployed" and events[-1]["type"] == "mission.cancelled"
    else:
        assert results == [{"data": None, "errors": [{"message": f"no mission with id {world.a2!r}"}]}]
        assert swap(repr(results), world.a2) == swap(repr(unknown), nonexistent)


# --- missionUpdates ---


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
@pytest.mark.parametrize("caller", list(CALLERS))
async def test_mission_updates_never_carry_another_tenants_missions(
    api: RunningApi, service: MissionService, protocol: str, caller: str
) -> None:
    hub = api.server.lifespan.state["resources"].hub  # type: ignore[attr-defined]
    ws = await connect(api, protocol, CALLERS[caller])
    try:
        op = await ws.subscribe(UPDATES)
        await eventually(lambda: hub.subscriber_count == 1)

        async def subscribed() -> bool:
            channel = service.keys.events_channel
            return bool(dict(await service.redis.pubsub_numsub(channel)).get(channel))

        await eventually(subscribed)
        deployed: list[tuple[str, str]] = []
        for tenant in (TENANT_A, TENANT_B, TENANT_HQ, TENANT_A, TENANT_B, TENANT_HQ):
            record, _ = await service.deploy("two_stage", tenant=tenant)
            deployed.append((record.id, tenant))
        await service.cancel_mission(deployed[0][0])  # a change after the deploy, too
        # Every tenant's last change comes after an earlier one of every other tenant: reading until
        # the caller's own last update, anything leaked before it would have been received.
        expected = {mission_id for mission_id, tenant in deployed if tenant in SEES[caller]}
        seen: list[str] = []
        cancelled_seen = TENANT_A not in SEES[caller]
        async for payload in ws.results(op, timeout=10):
            assert "errors" not in payload, payload
            update = payload["data"]["missionUpdates"]
            seen.append(update["id"])
            if update["id"] == deployed[0][0] and update["status"] == "CANCELLED":
                cancelled_seen = True
            if set(seen) >= expected and cancelled_seen:
                break
    finally:
        await ws.close()
    assert set(seen) == expected
    await eventually(lambda: hub.subscriber_count == 0)


# --- queries and mutations over a websocket ---


@pytest.mark.parametrize("caller", list(CALLERS))
async def test_queries_and_mutations_over_graphql_transport_ws_follow_the_same_rules(
    api: RunningApi, service: MissionService, world: World, caller: str
) -> None:
    key = CALLERS[caller]
    ws = await connect(api, TRANSPORT_WS, key)
    try:
        for mission_id in (world.a1, world.b1):
            [result] = await collect(ws, await ws.subscribe(MISSION, id=mission_id))
            if world.tenant(mission_id) in SEES[caller]:
                template_id = "two_stage" if mission_id == world.a1 else "hang"
                assert result == {
                    "data": {"mission": {"id": mission_id, "templateId": template_id, "status": "QUEUED"}}
                }
            else:
                assert result == {"data": {"mission": None}}
        [listed] = await collect(ws, await ws.subscribe(MISSIONS))
        expected = [m for m in (world.hq1, world.b1, world.a2, world.a1) if world.tenant(m) in SEES[caller]]
        assert [e["node"]["id"] for e in listed["data"]["missions"]["edges"]] == expected
        assert listed["data"]["missions"]["totalCount"] == len(expected)

        [deploy] = await collect(ws, await ws.subscribe(DEPLOY, t="two_stage"))
        [cancel] = await collect(ws, await ws.subscribe(CANCEL, id=world.a1))
    finally:
        await ws.close()
    if not CAN_OPERATE[caller]:
        assert deploy["data"] is None and deploy["errors"][0]["message"] == FORBIDDEN
        assert cancel["data"] is None and cancel["errors"][0]["message"] == FORBIDDEN
        assert (await service.store.page("*")).total == 4
        assert await service.store.status(world.a1) == MissionStatus.QUEUED
        return
    mission_id = deploy["data"]["deployMission"]["mission"]["id"]
    assert await service.store.tenant_of(mission_id) == TENANT_OF_CALLER[caller]
    if TENANT_A in SEES[caller]:
        assert cancel["data"]["cancelMission"]["__typename"] == "MissionCancelled"
    else:
        assert cancel["data"]["cancelMission"]["__typename"] == "MissionNotFound"
        assert await service.store.status(world.a1) == MissionStatus.QUEUED


async def test_a_query_over_legacy_graphql_ws_is_refused_clearly(api: RunningApi, world: World) -> None:
    ws = await connect(api, LEGACY_WS, OPERATOR_A)
    try:
        op = await ws.subscribe(MISSION, id=world.a1)
        message = await ws.receive_type()
    finally:
        await ws.close()
    assert message["id"] == op
    if message["type"] == "error":  # refused: say why, as a client error
        assert "Unexpected error" not in message["payload"]["message"], message
        assert "errorId" not in message["payload"].get("extensions", {}), message
    else:  # or answered
        assert message["payload"]["data"]["mission"]["id"] == world.a1


# --- existence leaks through cursors ---


async def test_cursors_say_nothing_about_other_tenants(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService
) -> None:
    async def cursor_of_own_first_mission() -> str:
        page = (await data_of(http, api, OPERATOR_B, "{ missions(first: 1) { edges { cursor } } }"))["missions"]
        cursor: str = page["edges"][0]["cursor"]
        return cursor

    await data_of(http, api, OPERATOR_B, DEPLOY, t="two_stage")
    alone = await cursor_of_own_first_mission()
    await service.redis.flushall()
    for _ in range(5):  # another tenant's activity
        await data_of(http, api, OPERATOR_A, DEPLOY, t="two_stage")
    await data_of(http, api, OPERATOR_B, DEPLOY, t="two_stage")
    assert await cursor_of_own_first_mission() == alone
