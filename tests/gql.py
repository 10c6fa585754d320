"""Minimal real GraphQL clients for the tests: HTTP (httpx) and both websocket protocols."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

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

TRANSPORT_WS = "graphql-transport-ws"  # the current protocol
LEGACY_WS = "graphql-ws"  # subscriptions-transport-ws, still used by older clients


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

    async def close(self) -> None:
        await self.ws.close()
