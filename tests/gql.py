"""Minimal real GraphQL clients for the tests (HTTP with httpx, both websocket protocols), the documents
several test files share, and the checks every answer must pass."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from tests.common import REPO

if TYPE_CHECKING:
    from tests.conftest import RunningApi
    from tests.processes import Server

DEPLOY = """
mutation($t: ID!, $config: MissionConfigInput, $key: String) {
  deployMission(templateId: $t, config: $config, idempotencyKey: $key) {
    __typename
    ... on MissionDeployed { created mission { id status templateId config { budget ttl inputs } } }
    ... on TemplateNotFound { message templateId }
    ... on InvalidConfig { message problems { field message } }
    ... on RateLimited { message retryAfter }
  }
}"""
CANCEL = """
mutation($id: ID!) {
  cancelMission(id: $id) {
    __typename
    ... on MissionCancelled { mission { id status } }
    ... on MissionNotFound { message missionId }
  }
}"""

# What a response must never show: the server's insides.
LEAKS = ("Traceback", 'File "', "site-packages", str(REPO), "/usr/lib/python")
MAX_REQUEST_BYTES = 256 * 1024  # Settings.max_request_bytes (default): HTTP bodies and websocket frames
COUNT = "{ missions(first: 1) { totalCount } }"
MISSION = "query($id: ID!) { mission(id: $id) { id status config { inputs } } }"
EVENTS = "subscription($id: ID!) { missionEvents(missionId: $id) { seq type } }"

# API keys for a server that has keys, sent as `bearer(key)`.
OPERATOR = "opr-limits-key-4e8b1c7d2a9f"
OTHER_OPERATOR = "opr-limits-key-other-93d1f0"
VIEWER = "vwr-limits-key-c05a7e21b6d8"

TRANSPORT_WS = "graphql-transport-ws"  # the current protocol
LEGACY_WS = "graphql-ws"  # subscriptions-transport-ws, still used by older clients


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def gql(client: httpx.AsyncClient, url: str, query: str, **variables: Any) -> dict[str, Any]:
    """POST a query; returns the whole response body (data and errors)."""
    response = await client.post(url, json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def data(client: httpx.AsyncClient, url: str, query: str, **variables: Any) -> dict[str, Any]:
    """POST a query that must succeed; returns its data."""
    body = await gql(client, url, query, **variables)
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]
    return result


class WsClient:
    """One websocket connection speaking either protocol."""

    def __init__(self, ws: ClientConnection, protocol: str) -> None:
        self.ws = ws
        self.protocol = protocol
        self._ids = itertools.count(1)

    @classmethod
    async def connect(
        cls, url: str, protocol: str = TRANSPORT_WS, payload: dict[str, Any] | None = None, init: bool = True
    ) -> WsClient:
        ws = await websockets.connect(url, subprotocols=[protocol])  # type: ignore[list-item]
        client = cls(ws, protocol)
        if init:
            await client.send({"type": "connection_init", "payload": payload or {}})
            ack = await client.receive_type("connection_ack")
            assert ack["type"] == "connection_ack", ack
        return client

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(raw, str), f"a binary frame: {raw[:80]!r}"  # both protocols speak text frames
        message: dict[str, Any] = json.loads(raw)
        return message

    async def receive_type(self, *types: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next message, skipping keep-alives (legacy ``ka``)."""
        while True:
            message = await self.receive(timeout)
            if message["type"] != "ka" or "ka" in types:
                return message

    async def subscribe(self, query: str, **variables: Any) -> str:
        op_id = str(next(self._ids))
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        await self.send({"id": op_id, "type": kind, "payload": {"query": query, "variables": variables}})
        return op_id

    async def stop(self, op_id: str) -> None:
        await self.send({"id": op_id, "type": "complete" if self.protocol == TRANSPORT_WS else "stop"})

    async def results(self, op_id: str, timeout: float = 20.0) -> AsyncIterator[dict[str, Any]]:
        """Each result's ``payload`` (data and/or errors) until the server completes the operation."""
        data_type = "next" if self.protocol == TRANSPORT_WS else "data"
        while True:
            message = await self.receive_type(timeout=timeout)
            if message.get("id") != op_id:
                continue
            if message["type"] == "complete":
                return
            if message["type"] == "error":
                errors = message["payload"]
                yield {"errors": errors if isinstance(errors, list) else [errors]}
                if self.protocol == TRANSPORT_WS:
                    return
                continue
            assert message["type"] == data_type, message
            yield message["payload"]

    async def results_of(self, op_ids: list[str], timeout: float = 20.0) -> dict[str, list[dict[str, Any]]]:
        """Every result's ``payload`` of several operations running at once, until each is complete
        (`results` follows one operation and passes over the others' messages)."""
        data_type = "next" if self.protocol == TRANSPORT_WS else "data"
        found: dict[str, list[dict[str, Any]]] = {op_id: [] for op_id in op_ids}
        open_ops = set(op_ids)
        while open_ops:
            message = await self.receive_type(timeout=timeout)
            op_id = message.get("id")
            if op_id not in open_ops:
                continue
            if message["type"] == "complete":
                open_ops.discard(op_id)
            else:
                assert message["type"] == data_type, message
                found[op_id].append(message["payload"])
        return found

    async def close(self) -> None:
        await self.ws.close()


# --- what every answer must look like ---


def no_traceback(text: str) -> None:
    for marker in ("Traceback", 'File "', '.py"', "most recent call"):
        assert marker not in text, text[:500]


def clean(response: httpx.Response) -> httpx.Response:
    """No server error, and nothing of the server's insides in the body."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    for leak in LEAKS:
        assert leak not in response.text, (leak, response.text[:2000])
    return response


def graphql_body(response: httpx.Response) -> dict[str, Any]:
    """A well-formed GraphQL response: a JSON object with `data` and/or `errors`, each error with a message."""
    clean(response)
    body = response.json()
    assert isinstance(body, dict) and ("data" in body or "errors" in body), body
    errors = body.get("errors")
    if errors is not None:
        assert isinstance(errors, list) and errors, body
        assert all(isinstance(e, dict) and isinstance(e.get("message"), str) for e in errors), body
    return body


def unmasked(body: dict[str, Any]) -> dict[str, Any]:
    """Every error is one meant for the caller (GraphQL's own or ours), never a masked unexpected one."""
    for error in body.get("errors") or ():
        assert "errorId" not in (error.get("extensions") or {}), body
        assert not error["message"].startswith("Unexpected error"), body
    return body


def deploy_result(response: httpx.Response) -> dict[str, Any]:
    body = unmasked(graphql_body(response))
    assert response.status_code == 200 and body.get("data"), body
    result: dict[str, Any] = body["data"]["deployMission"]
    return result


def mission_count(server: Server) -> int:
    count: int = graphql_body(server.post(COUNT))["data"]["missions"]["totalCount"]
    return count


def graphql_error(body: dict[str, Any]) -> str:
    """The errors of a refused operation, joined; GraphQL's own or ours, never masked."""
    assert body.get("data") is None, body
    message = "\n".join(str(error["message"]) for error in body["errors"])
    assert message and "Unexpected error" not in message
    return message


# --- raw requests to the in-process API ---


async def post_raw(
    http: httpx.AsyncClient, api: RunningApi, body: bytes, content_type: str = "application/json"
) -> httpx.Response:
    response = await http.post(api.url, content=body, headers={"Content-Type": content_type})
    clean(response)
    return response


async def post_json_text(http: httpx.AsyncClient, api: RunningApi, query: str, variables: str) -> dict[str, Any]:
    """POST with variables written as raw JSON text (for NaN, 1e400 and friends Python would not send)."""
    body = f'{{"query": {json.dumps(query)}, "variables": {variables}}}'
    response = await post_raw(http, api, body.encode())
    assert response.status_code == 200, response.text[:500]
    result: dict[str, Any] = response.json()
    return result


async def post(http: httpx.AsyncClient, api: RunningApi, query: str, **variables: Any) -> dict[str, Any]:
    response = await http.post(api.url, json={"query": query, "variables": variables})
    clean(response)
    assert response.status_code == 200, response.text[:500]
    result: dict[str, Any] = response.json()
    return result


# --- every field of a mission: deploy, cancel, mission, missions ---

MISSION_FIELDS = """
  id templateId template { id name } status createdAt startedAt deadline finishedAt failureReason outcomeLogicHash
  config { budget ttl risk { level maxDrawdown } inputs }
  budget { allocated spent remaining }
  eventCount
  jobs {
    id department role agent status attempts progress message dependsOn startedAt finishedAt error output
    budget { allocated spent remaining }
  }
  graph { nodes { department roles status } edges { from to } stages }
"""

FULL_DEPLOY = f"""
mutation($t: ID!, $config: MissionConfigInput, $key: String) {{
  deployMission(templateId: $t, config: $config, idempotencyKey: $key) {{
    __typename
    ... on MissionDeployed {{ created mission {{ {MISSION_FIELDS} }} }}
    ... on TemplateNotFound {{ message templateId }}
    ... on InvalidConfig {{ message problems {{ field message }} }}
  }}
}}"""

FULL_CANCEL = f"""
mutation($id: ID!) {{
  cancelMission(id: $id) {{
    __typename
    ... on MissionCancelled {{ mission {{ {MISSION_FIELDS} }} }}
    ... on MissionNotFound {{ message missionId }}
  }}
}}"""

FULL_MISSION = f"query($id: ID!) {{ mission(id: $id) {{ {MISSION_FIELDS} }} }}"

MISSIONS = """
query($status: MissionStatus, $t: ID, $first: Int, $after: String) {
  missions(status: $status, templateId: $t, first: $first, after: $after) {
    totalCount
    edges { cursor node { id status templateId } }
    nodes { id }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def deploy(
    http: httpx.AsyncClient,
    api: RunningApi,
    template: str,
    config: dict[str, Any] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    found = await data(http, api.url, FULL_DEPLOY, t=template, config=config, key=key)
    result: dict[str, Any] = found["deployMission"]
    return result


async def deployed(
    http: httpx.AsyncClient, api: RunningApi, template: str, config: dict[str, Any] | None = None
) -> dict[str, Any]:
    result = await deploy(http, api, template, config)
    assert result["__typename"] == "MissionDeployed", result
    mission: dict[str, Any] = result["mission"]
    return mission


async def get_mission(http: httpx.AsyncClient, api: RunningApi, mission_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (await data(http, api.url, FULL_MISSION, id=mission_id))["mission"]
    return found


async def missions(http: httpx.AsyncClient, api: RunningApi, **variables: Any) -> dict[str, Any]:
    found: dict[str, Any] = (await data(http, api.url, MISSIONS, **variables))["missions"]
    return found


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def money(value: str) -> Decimal:
    """A Decimal from the wire: a string with exactly two decimals."""
    assert isinstance(value, str), value
    whole, _, cents = value.partition(".")
    assert whole.lstrip("-").isdigit() and len(cents) == 2 and cents.isdigit(), value
    return Decimal(value)
