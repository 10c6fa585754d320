"""Websocket protocol handlers that check each message's shape before Strawberry's handlers read it:
a malformed frame gets a protocol error (close 4400), never an exception that drops the socket."""

from __future__ import annotations

from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from resolvers.context import Context


def _optional(value: Any, kind: type | tuple[type, ...]) -> bool:
    return value is None or isinstance(value, kind)


def _operation_problem(payload: Any) -> str | None:
    """What is wrong with a subscribe/start payload, if anything."""
    if not isinstance(payload, dict):
        return "the payload must be an object"
    if not isinstance(payload.get("query"), str):
        return "payload.query must be a string"
    if not _optional(payload.get("variables"), dict):
        return "payload.variables must be an object"
    if not _optional(payload.get("operationName"), str):
        return "payload.operationName must be a string"
    if not _optional(payload.get("extensions"), dict):
        return "payload.extensions must be an object"
    return None


def message_problem(message: Any, operation_types: set[str], stop_types: set[str]) -> str | None:
    """What is wrong with a message's shape, if anything (either protocol)."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "a message must be an object with a string type"
    kind = message["type"]
    if kind in operation_types | stop_types and not isinstance(message.get("id"), str):
        return f"a {kind} message needs a string id"
    if kind in operation_types:
        return _operation_problem(message.get("payload"))
    return None


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws."""

    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message, {"subscribe"}, {"complete"})
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """graphql-ws (subscriptions-transport-ws), for older clients."""

    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message, {"start"}, {"stop"})
        if problem is not None:
            await self.websocket.close(code=4400, reason=problem)
            return
        await super().handle_message(message)
