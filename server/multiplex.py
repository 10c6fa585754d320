"""Shared subscriptions: subscribers of one process holding the same subscription document, the same
variables and the same visibility (tenant and role) share one execution. Each result is executed
once and serialised once (`SharedResult.payload`); each socket then gets the same text with its own
operation id spliced into the protocol's envelope.

A group runs one `schema.subscribe` with a context of its own (the first subscriber's principal, fresh
loaders) and hands each result to every member's queue. A subscription field whose stream depends
on its arguments alone (`REPLAYABLE`: a mission's events after a cursor) keeps what it has sent, so
a late member is given the same results from the start; a live field (`LIVE`: every change from now
on) is joined as it runs. Any other document — queries and mutations sent over a websocket, unknown
or malformed ones — runs unshared, exactly as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncGenerator, Mapping
from functools import cached_property
from typing import Any

from graphql import GraphQLError, OperationType
from strawberry.schema.base import BaseSchema
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from mission import codec
from mission.events import SERVES
from resolvers.context import Context, Loaders
from server.documents import only_root_field

log = logging.getLogger("mission.api")

REPLAYABLE = frozenset({"missionEvents"})  # the stream is a function of its arguments: replay it to late members
LIVE = frozenset({"missionUpdates"})  # changes from the moment of subscribing: join as it runs
MAX_HISTORY = 2_000  # results a replayable group keeps; past it, newcomers start a group of their own
MAX_PENDING = 10_000  # results a member may have unsent; past it the member is ended with an error


class SharedResult(ExecutionResult):
    """An execution result given to several subscribers: its payload is serialised once."""

    @cached_property
    def payload(self) -> str:
        body: dict[str, Any] = {"data": self.data}
        if self.errors:
            body["errors"] = [error.formatted for error in self.errors]
        if self.extensions:
            body["extensions"] = self.extensions
        return codec.dumps(body)

    def frame(self, operation_id: str, kind: str) -> str:
        """The whole protocol message (``next`` or legacy ``data``) for one operation id."""
        return f'{{"id":{codec.dumps(operation_id)},"type":"{kind}","payload":{self.payload}}}'

    @classmethod
    def of(cls, result: ExecutionResult) -> ExecutionResult:
        if isinstance(result, PreExecutionError):  # answered per protocol by each member's handler
            return result
        return cls(data=result.data, errors=result.errors, extensions=result.extensions)


class _End:
    pass


_END = _End()


def _root_field(query: str, operation_name: str | None, max_tokens: int) -> str | None:
    """The subscription's one root field, or None when the document is not a plain subscription
    (a query or mutation, several operations without a name, a fragment at the root, a bad document)."""
    field = only_root_field(query, operation_name, max_tokens, OperationType.SUBSCRIPTION)
    return None if field is None or field.directives else field.name.value


GroupKey = tuple[str, str | None, str, str, str]


class _Member:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[ExecutionResult | _End | BaseException] = asyncio.Queue()

    def put(self, item: ExecutionResult | _End | BaseException) -> None:
        if self.queue.qsize() >= MAX_PENDING:
            while not self.queue.empty():
                self.queue.get_nowait()
            too_slow = GraphQLError(f"this subscriber fell {MAX_PENDING} results behind; subscribe again")
            self.queue.put_nowait(ExecutionResult(data=None, errors=[too_slow]))
            item = _END
        self.queue.put_nowait(item)


class _Group:
    def __init__(self, mux: Multiplexer, key: GroupKey, replay: bool) -> None:
        self.mux = mux
        self.key = key
        self.members: set[_Member] = set()
        self.history: list[ExecutionResult] | None = [] if replay else None
        self.live = not replay  # members join whenever; a replayable group only while it keeps its history
        self.ended = False
        self.task: asyncio.Task[None] | None = None

    @property
    def joinable(self) -> bool:
        return not self.ended and (self.live or self.history is not None)

    def join(self) -> _Member:
        member = _Member()
        for result in self.history or ():
            member.put(result)
        self.members.add(member)
        return member

    def leave(self, member: _Member) -> None:
        self.members.discard(member)
        if not self.members and self.task is not None and not self.ended:
            self._forget()
            self.task.cancel()  # nobody listens: stop executing

    def _forget(self) -> None:
        self.ended = True
        if self.mux.groups.get(self.key) is self:
            del self.mux.groups[self.key]

    def _send(self, item: ExecutionResult | _End | BaseException) -> None:
        for member in list(self.members):
            member.put(item)

    async def run(
        self,
        schema: BaseSchema,
        query: str,
        variables: Mapping[str, object] | None,
        operation_name: str | None,
        context: Context,
    ) -> None:
        SERVES.set(lambda: len(self.members))  # the hub counts every member, not this one execution
        try:
            source = await schema.subscribe(
                query,
                variable_values=dict(variables) if variables is not None else None,
                context_value=context,
                operation_name=operation_name,
            )
            async with contextlib.aclosing(source):
                async for result in source:
                    shared = SharedResult.of(result)
                    if self.history is not None:
                        self.history.append(shared)
                        if len(self.history) > MAX_HISTORY:
                            self.history = None
                    self._send(shared)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # each member's handler answers it as it would its own
            self._forget()
            self._send(exc)
            return
        self._forget()
        self._send(_END)


class Multiplexer:
    """The process's shared subscription groups, by (document, operation, variables, tenant, role)."""

    def __init__(self, schema: BaseSchema, *, max_tokens: int) -> None:
        self.schema = schema
        self.max_tokens = max_tokens
        self.groups: dict[GroupKey, _Group] = {}

    @property
    def executions(self) -> int:
        return len(self.groups)

    def shares(self, query: str, operation_name: str | None, context: Context) -> str | None:
        """The root field when this operation can be shared, else None."""
        if context.principal is None:
            return None
        field = _root_field(query, operation_name, self.max_tokens)
        return field if field in REPLAYABLE or field in LIVE else None

    def subscribe(
        self,
        query: str,
        variables: Mapping[str, object] | None,
        operation_name: str | None,
        context: Context,
        field: str,
    ) -> AsyncGenerator[ExecutionResult, None]:
        """This subscription's results, from the group of identical ones (started if there is none);
        ``field`` is its root field, as `shares` found it."""
        try:
            canonical = codec.dumps(_sorted(variables or {}))
        except (TypeError, ValueError):
            canonical = repr(variables)
        principal = context.caller
        key: GroupKey = (query, operation_name, canonical, principal.tenant, principal.role)
        group = self.groups.get(key)
        if group is None or not group.joinable:  # no await from the lookup to here: one group per key
            group = self.groups[key] = _Group(self, key, replay=field in REPLAYABLE)
            own = dataclasses.replace(context, loaders=Loaders(context.service), request=None, connection_params=None)
            run = group.run(self.schema, query, variables, operation_name, own)
            group.task = asyncio.create_task(run, name="shared-subscription")
        member = group.join()
        return self._results(group, member)

    @staticmethod
    async def _results(group: _Group, member: _Member) -> AsyncGenerator[ExecutionResult, None]:
        try:
            while True:
                item = await member.queue.get()
                if isinstance(item, _End):
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            group.leave(member)

    async def close(self) -> None:
        tasks = [g.task for g in self.groups.values() if g.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        self.groups.clear()


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value
