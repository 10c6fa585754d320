"""Answers to `mission(id)` queries, kept until the mission changes.

A mission's state changes with an event (each appends one and bumps the mission's `seq`), except
what a model call reserves (its spend grows before the call settles with an event), and its outputs
expire on their own. So the answer to a query whose one root field is `mission(id: …)` is reusable
while (seq, spent, outputs kept) stay what they were when it was computed: the cache key is
(document, operation, variables, tenant, role, mission, seq, spent, outputs kept), and each read first asks
Redis for the mission's current version (one round trip) before answering from the cache. The
version is read before executing, so a stored answer shows the state at that seq or later: never
older than the seq a client saw. Only answers without errors are kept; a bounded LRU per process.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

from graphql import (
    OperationType,
    StringValueNode,
    VariableNode,
)
from redis.exceptions import RedisError
from starlette.requests import Request

from mission import codec
from mission.service import MissionService, is_mission_id
from resolvers.context import Principal
from server.documents import only_root_field

Key = tuple[str, str | None, str, str, str, str, int, int, bool]


@dataclass(frozen=True)
class Pending:
    """A cacheable read: its key, and the stored answer when there is one."""

    key: Key
    body: bytes | None


@lru_cache(maxsize=512)
def _mission_argument(query: str, operation_name: str | None, max_tokens: int) -> tuple[bool, str] | None:
    """For a query whose only root field is `mission`: (is a variable, the variable's name or the
    literal id); else None."""
    field = only_root_field(query, operation_name, max_tokens, OperationType.QUERY)
    if field is None:
        return None
    arguments = field.arguments or ()
    if field.name.value != "mission" or field.directives or len(arguments) != 1:
        return None
    value = arguments[0].value
    if isinstance(value, VariableNode):
        return True, value.name.value
    if isinstance(value, StringValueNode):
        return False, value.value
    return None


class ReadCache:
    def __init__(self, service: MissionService, *, entries: int, max_tokens: int) -> None:
        self.service = service
        self.entries = entries
        self.max_tokens = max_tokens
        self._answers: OrderedDict[Key, bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0

    async def prepare(self, request: Request, principal: Principal) -> Pending | None:
        """The key of this request when it is a cacheable read of an existing mission (with the
        answer when it is stored); None for anything else."""
        if request.method != "POST" or not request.headers.get("content-type", "").startswith("application/json"):
            return None
        try:
            body = codec.loads(await request.body())
        except (ValueError, RecursionError):
            return None  # Strawberry answers it
        if not isinstance(body, dict) or not isinstance(query := body.get("query"), str):
            return None
        variables, operation_name = body.get("variables") or {}, body.get("operationName")
        if not isinstance(variables, dict) or not (operation_name is None or isinstance(operation_name, str)):
            return None
        argument = _mission_argument(query, operation_name, self.max_tokens)
        if argument is None:
            return None
        is_variable, name = argument
        mission_id = variables.get(name) if is_variable else name
        if not isinstance(mission_id, str) or not is_mission_id(mission_id):
            return None
        try:
            version = await self.service.version(mission_id)
        except (RedisError, OSError):
            return None  # the execution says the store is unavailable, as for any read
        if version is None:
            return None
        try:
            canonical = codec.dumps(variables)
        except (TypeError, ValueError):
            return None
        key: Key = (query, operation_name, canonical, principal.tenant, principal.role, mission_id, *version)
        found = self._answers.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
            self._answers.move_to_end(key)
        return Pending(key, found)

    def store(self, key: Key, body: bytes) -> None:
        self._answers[key] = body
        self._answers.move_to_end(key)
        while len(self._answers) > self.entries:
            self._answers.popitem(last=False)
