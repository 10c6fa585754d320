"""Websocket protocol handlers that check each message's shape before Strawberry's handlers read it:
a malformed frame gets a protocol error (close 4400), never an exception that drops the socket.
Subscriptions go through the process's `Multiplexer`: a result shared by several subscribers is
sent as the text it was serialised to once, with this operation's id spliced in."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any, cast

from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from resolvers.context import Context
from server.multiplex import Multiplexer, SharedResult

if TYPE_CHECKING:
    from strawberry.schema.base import BaseSchema
    from strawberry.schema.schema import StreamResult


class SharingSchema:
    """The schema as a websocket handler sees it: operations it streams go through the multiplexer."""

    def __init__(self, schema: BaseSchema, multiplexer: Multiplexer) -> None:
        self._schema = schema
        self._multiplexer = multiplexer

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
    ) -> Any:
        shared = self._shared(query, variable_values, operation_name, context_value)
        return shared or await self._schema.stream(query, variable_values, context_value, root_value, operation_name)

    async def subscribe(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
    ) -> Any:
        shared = self._shared(query, variable_values, operation_name, context_value)
        return shared or await self._schema.subscribe(query, variable_values, context_value, root_value, operation_name)

    def _shared(
        self, query: str | None, variables: dict[str, Any] | None, operation_name: str | None, context: Any
    ) -> AsyncGenerator[ExecutionResult, None] | None:
        if query is None or not isinstance(context, Context):
            return None
        field = self._multiplexer.shares(query, operation_name, context)
        if field is None:
            return None
        return self._multiplexer.subscribe(query, variables, operation_name, context, field)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)


def _sharing(handler: Any) -> None:
    multiplexer = getattr(handler.view, "multiplexer", None)
    if multiplexer is not None:
        handler.schema = SharingSchema(handler.schema, multiplexer)


async def send_text(handler: Any, text: str) -> None:
    """Send a message already serialised (what `send_json` does after encoding)."""
    try:
        await cast(ASGIWebSocketAdapter, handler.websocket).ws.send_text(text)
    except WebSocketDisconnect as exc:
        raise WebSocketDisconnected from exc


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _sharing(self)

    async def _send_result_stream(self, operation: Operation[Context, None], result_source: StreamResult) -> None:
        """Strawberry's, sending a shared result's serialised text as it is."""
        is_first_result = True
        async for result in result_source:
            if isinstance(result, SharedResult):
                if operation.completed:
                    return
                await send_text(self, result.frame(operation.id, "next"))
            elif is_first_result and isinstance(result, PreExecutionError):
                await self._handle_pre_execution_error(operation, result)
                return
            elif not isinstance(result, ExecutionResult):
                await self._reject_incremental_delivery(operation)
                return
            else:
                await operation.send_next(result)
            is_first_result = False

    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message, {"subscribe"}, {"complete"})
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """graphql-ws (subscriptions-transport-ws), for older clients."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _sharing(self)

    async def send_data_message(self, execution_result: ExecutionResult, operation_id: str) -> None:
        if isinstance(execution_result, SharedResult):
            await send_text(self, execution_result.frame(operation_id, "data"))
        else:
            await super().send_data_message(execution_result, operation_id)

    async def handle_message(self, message: Any) -> None:
        problem = message_problem(message, {"start"}, {"stop"})
        if problem is not None:
            await self.websocket.close(code=4400, reason=problem)
            return
        await super().handle_message(message)
