"""The SDK calls of one running attempt, made by the worker for its agent: each waits through a
Redis outage as the runner does, and is applied once however often it is sent (``seq``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from mission.store import MissionStore
from workers.agents.sdk import AttemptHandedBack
from workers.outage import TRANSIENT, persistently

T = TypeVar("T")


@dataclass
class WorkerCalls:
    """Implements `workers.agents.sdk.AttemptCalls` for (mission, role, attempt)."""

    store: MissionStore
    mission_id: str
    role: str
    attempt: int
    give_up_after: float  # seconds an outage may last before the attempt is handed back
    handed_back: bool = False

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        if self.handed_back:
            raise AttemptHandedBack("this attempt was handed back after a Redis outage")
        try:
            return await persistently(call, self.give_up_after)
        except TRANSIENT as exc:
            self.handed_back = True
            raise AttemptHandedBack(f"Redis unavailable for {self.give_up_after:g} s: {exc}") from exc

    async def spend(self, seq: int, cents: int, note: str) -> tuple[str, int, int]:
        return await self._call(lambda: self.store.spend(self.mission_id, self.role, self.attempt, cents, note, seq))

    async def progress(self, seq: int, fraction: float, message: str) -> bool:
        return await self._call(
            lambda: self.store.progress(self.mission_id, self.role, self.attempt, fraction, message, seq)
        )
