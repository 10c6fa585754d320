"""The agent SDK: what an agent function receives and may call.

```python
async def my_agent(ctx: AgentContext) -> dict:
    ctx.inputs, ctx.upstream, ctx.config, ctx.deadline
    await ctx.spend(Decimal("12.50"), "api call")  # BudgetExceeded past this agent's allocation
    await ctx.progress(0.5, "halfway")
    return {...}                                     # any JSON-serialisable result
```
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from mission.errors import BudgetExceeded, JobStopped
from mission.money import charge_cents, from_cents

if TYPE_CHECKING:
    from config.settings import Settings
    from mission.store import MissionStore

MAX_NOTE = 500


class PermanentError(Exception):
    """Raise it to fail the job at once: trying again would change nothing (bad inputs, a refusal).

    ``ValueError`` and ``TypeError`` count as permanent too; any other exception is retried up to
    the agent's ``max_tries``.
    """


def is_retryable(exc: BaseException) -> bool:
    return not isinstance(exc, (PermanentError, ValueError, TypeError))


@dataclass
class AgentContext:
    """One attempt of one agent: its inputs, its upstream results, its budget and deadline."""

    mission_id: str
    role: str
    department: str
    attempt: int
    inputs: dict[str, Any]
    upstream: dict[str, Any]  # role -> output of every job this one waited for
    config: dict[str, Any]  # the merged mission config: budget, ttl, risk, inputs
    deadline: datetime
    allocated: Decimal
    settings: Settings
    _store: MissionStore = field(repr=False)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("mission.agent"), repr=False)
    spent: Decimal = Decimal("0.00")

    @property
    def job_id(self) -> str:
        return f"{self.mission_id}:{self.role}"

    @property
    def risk(self) -> dict[str, Any]:
        risk: dict[str, Any] = self.config.get("risk") or {}
        return risk

    @property
    def remaining(self) -> Decimal:
        return self.allocated - self.spent

    async def spend(self, amount: Decimal | int | str, note: str = "") -> Decimal:
        """Charge this agent's allocation (fractions of a cent round up); returns what is left.

        Raises `BudgetExceeded` (nothing charged) when the charge would pass the allocation, and
        `JobStopped` when this attempt is no longer current (mission ended, attempt superseded).
        """
        cents = charge_cents(amount)
        result, spent, allocated = await self._store.spend(
            self.mission_id, self.role, self.attempt, cents, str(note)[:MAX_NOTE]
        )
        if result == "stale":
            raise JobStopped(f"{self.job_id} attempt {self.attempt} is no longer current")
        if result == "exceeded":
            raise BudgetExceeded(from_cents(cents), from_cents(spent), from_cents(allocated))
        self.spent = from_cents(spent)
        return from_cents(allocated - spent)

    async def progress(self, fraction: float, message: str = "") -> None:
        """Record progress (clamped to 0..1) with a short message; published as an event."""
        value = float(fraction)
        value = 0.0 if math.isnan(value) else min(max(value, 0.0), 1.0)
        if not await self._store.progress(self.mission_id, self.role, self.attempt, value, str(message)[:MAX_NOTE]):
            raise JobStopped(f"{self.job_id} attempt {self.attempt} is no longer current")
