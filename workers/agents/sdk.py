"""The agent SDK: what an agent function receives and may call.

```python
async def my_agent(ctx: AgentContext) -> dict:
    ctx.inputs, ctx.upstream, ctx.config, ctx.deadline
    await ctx.spend(Decimal("12.50"), "api call")  # BudgetExceeded past this agent's allocation
    await ctx.progress(0.5, "halfway")
    reply = await ctx.llm.chat([{"role": "user", "content": "Hi"}], max_tokens=64)  # metered by reservation
    return {...}                                     # any JSON-serialisable result
```

An agent is user code, so its context is a narrow view: its mission's config and inputs, its
limits, what the service shows of itself (`service`: addresses, switches and limits, never a
secret) and a logger. The SDK calls reach Redis through a context variable the worker binds to
the agent's task, so nothing reachable from the context holds a credential or the store.

A model call (`ctx.llm.chat`) is made by the worker: the provider's client and key live there,
out of the agent's reach. Each call reserves its worst case in the budget before it is sent and
settles to the reported usage (see mission/llm.py).

Through a Redis outage an SDK call waits, as the worker does; if Redis stays away too long the
attempt is handed back (`AttemptHandedBack`) and runs again, without counting as a failed try.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from mission.errors import BudgetExceeded, JobStopped
from mission.money import affordable, charge_cents, from_cents

MAX_NOTE = 500
MAX_MESSAGES = 200
ROLES = ("system", "user", "assistant")
T = TypeVar("T")


class PermanentError(Exception):
    """Raise it to fail the job at once: trying again would change nothing (bad inputs, a refusal).

    ``ValueError`` and ``TypeError`` count as permanent too; any other exception is retried up to
    the agent's ``max_tries``.
    """


class AttemptHandedBack(Exception):
    """Redis stayed away longer than an SDK call may wait: this attempt is handed back and runs
    again as a new one. Let it propagate; whatever the agent does next is not recorded."""


class ModelError(Exception):
    """A model call failed (the provider refused or broke off); retried with the attempt."""


class ModelNotPriced(PermanentError):
    """The model has no price in ``MISSION_LLM_PRICES``: nothing runs unmetered."""


class InvalidModelOutput(ModelError):
    """The model's answer is not the JSON that was asked for (its tokens are charged); retryable."""


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost: Decimal  # what the call was charged


@dataclass(frozen=True)
class ChatResult:
    text: str
    json: Any  # the parsed answer when JSON was asked for (``response_format``), else None
    usage: Usage
    model: str
    max_tokens: int  # as granted: less than asked when the allocation could not hold the worst case
    finish_reason: str


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, str]]
    model: str | None
    max_tokens: int
    temperature: float | None
    response_format: dict[str, Any] | None
    deadline: datetime


class Ordered(Protocol):
    """Runs one SDK call with the attempt's next ``seq``, one call at a time."""

    async def __call__(self, call: Callable[[int], Awaitable[T]]) -> T: ...


def is_retryable(exc: BaseException) -> bool:
    return not isinstance(exc, (PermanentError, ValueError, TypeError))


class AttemptCalls(Protocol):
    """The SDK calls of one attempt, as the worker makes them; ``seq`` numbers them from 1."""

    async def spend(self, seq: int, cents: int, note: str) -> tuple[str, int, int]: ...

    async def progress(self, seq: int, fraction: float, message: str) -> bool: ...

    async def chat(self, request: ChatRequest, ordered: Ordered) -> ChatResult: ...


_CALLS: contextvars.ContextVar[AttemptCalls] = contextvars.ContextVar("mission_attempt_calls")


def bind_calls(calls: AttemptCalls) -> contextvars.Context:
    """A copy of the current context in which an agent's SDK calls go to ``calls``: run the
    agent's task in it (``asyncio.create_task(..., context=...)``)."""
    context = contextvars.copy_context()
    context.run(_CALLS.set, calls)
    return context


def set_calls(calls: AttemptCalls) -> None:
    """Send the SDK calls made in the current context to ``calls``: to run agents outside a worker
    (an agent's unit tests)."""
    _CALLS.set(calls)


def _calls() -> AttemptCalls:
    try:
        return _CALLS.get()
    except LookupError:
        raise RuntimeError("an AgentContext's calls work only inside the agent's run") from None


def check_messages(messages: Any) -> list[dict[str, str]]:
    """The messages as plain ``{"role", "content"}`` dicts; `ValueError` says what is wrong."""
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        raise ValueError(f"messages must be a list of 1 to {MAX_MESSAGES} messages")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ValueError(f"messages[{i}] needs a role among {', '.join(ROLES)}")
        if not isinstance(message.get("content"), str):
            raise ValueError(f"messages[{i}].content must be a string")
        checked.append({"role": message["role"], "content": message["content"]})
    return checked


@dataclass(repr=False)
class ModelCalls:
    """``ctx.llm``: chat with a model; every call is metered against the agent's allocation."""

    _ordered: Ordered
    _deadline: datetime

    async def chat(
        self,
        messages: list[dict[str, str]],
        *,
        model: str | None = None,
        max_tokens: int,
        temperature: float | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> ChatResult:
        """Send ``messages``; returns the text (and the parsed JSON when ``response_format`` asks
        for JSON) with its usage and cost.

        The call first reserves its worst case (a bound of the prompt's tokens × input price +
        ``max_tokens`` × output price); when the allocation cannot hold it, ``max_tokens`` shrinks
        to what fits (see ``ChatResult.max_tokens``), and below a useful minimum `BudgetExceeded` is
        raised before anything is sent. `ModelNotPriced` for a model without a price.
        """
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= 1_000_000:
            raise ValueError("max_tokens must be an integer from 1 to 1,000,000")
        if temperature is not None and not 0 <= float(temperature) <= 2:
            raise ValueError("temperature must be from 0 to 2")
        if response_format is not None and not isinstance(response_format, dict):
            raise ValueError("response_format must be an object")
        request = ChatRequest(
            messages=check_messages(messages),
            model=model,
            max_tokens=max_tokens,
            temperature=None if temperature is None else float(temperature),
            response_format=response_format,
            deadline=self._deadline,
        )
        return await _calls().chat(request, self._ordered)

    def __repr__(self) -> str:
        return "ModelCalls()"


@dataclass
class AgentContext:
    """One attempt of one agent: its inputs, its upstream results, its limits."""

    mission_id: str
    role: str
    department: str
    attempt: int
    inputs: dict[str, Any]
    upstream: dict[str, Any]  # role -> output of every job this one waited for
    config: dict[str, Any]  # the merged mission config: budget, ttl, risk, inputs
    deadline: datetime  # the mission's
    allocated: Decimal  # this agent's share of the budget
    timeout: float | None = None  # seconds per try, if the template sets one
    max_tries: int = 1
    service: dict[str, Any] = field(default_factory=dict)  # the service's public surface: no secret
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("mission.agent"), repr=False)
    spent: Decimal = Decimal("0.00")
    llm_spec: dict[str, Any] | None = None  # a model agent's `llm` block from its template
    _seq: int = field(default=0, repr=False)
    _ordered: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    llm: ModelCalls = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.llm = ModelCalls(self._in_order, self.deadline)

    async def _in_order(self, call: Callable[[int], Awaitable[T]]) -> T:
        async with self._ordered:  # one call at a time, so a retried seq is never overtaken
            return await call(self._next())

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

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    async def spend(self, amount: Decimal | int | str, note: str = "") -> Decimal:
        """Charge this agent's allocation (fractions of a cent round up); returns what is left.

        Raises `BudgetExceeded` (nothing charged) when the charge would pass the allocation, and
        `JobStopped` when this attempt is no longer current (mission ended, attempt superseded).
        """
        cents = charge_cents(amount)
        async with self._ordered:  # one call at a time, so a retried seq is never overtaken
            result, spent, allocated = await _calls().spend(self._next(), cents, str(note)[:MAX_NOTE])
        if result == "stale":
            raise JobStopped(f"{self.job_id} attempt {self.attempt} is no longer current")
        if result == "exceeded":
            raise BudgetExceeded(from_cents(cents), from_cents(spent), from_cents(allocated))
        self.spent = from_cents(spent)
        return from_cents(allocated - spent)

    async def pay_per_item(self, fee: Decimal, count: int, what: str) -> int:
        """Pay ``fee`` for each of ``count`` items, or for as many as the remaining allocation holds,
        in one charge; returns how many were paid for: the agent works on those."""
        paid = affordable(self.remaining, fee, count)
        await self.pay(fee, paid, what)
        return paid

    async def pay(self, fee: Decimal, count: int, what: str) -> None:
        """Charge ``count`` × ``fee`` in one spend (nothing when there is nothing to pay for)."""
        if count > 0 and fee > 0:
            await self.spend(fee * count, f"{count} {what} at {fee} each")

    async def progress(self, fraction: float, message: str = "") -> None:
        """Record progress (clamped to 0..1) with a short message; published as an event."""
        value = float(fraction)
        value = 0.0 if math.isnan(value) else min(max(value, 0.0), 1.0)
        async with self._ordered:
            current = await _calls().progress(self._next(), value, str(message)[:MAX_NOTE])
        if not current:
            raise JobStopped(f"{self.job_id} attempt {self.attempt} is no longer current")
