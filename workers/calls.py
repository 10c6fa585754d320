"""The SDK calls of one running attempt, made by the worker for its agent: each waits through a
Redis outage as the runner does, and is applied once however often it is sent (``seq``)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mission.errors import BudgetExceeded, JobStopped
from mission.money import from_cents
from mission.store import MissionStore, Reservation, Settlement
from workers.agents.sdk import (
    AttemptHandedBack,
    ChatRequest,
    ChatResult,
    InvalidModelOutput,
    Ordered,
    PermanentError,
    Usage,
)
from workers.models import ModelProvider, Refused
from workers.outage import TRANSIENT, persistently

T = TypeVar("T")
JSON_FORMATS = ("json_object", "json_schema")
log = logging.getLogger("mission.worker")


@dataclass
class WorkerCalls:
    """Implements `workers.agents.sdk.AttemptCalls` for (mission, role, attempt)."""

    store: MissionStore
    mission_id: str
    role: str
    attempt: int
    give_up_after: float  # seconds an outage may last before the attempt is handed back
    models: ModelProvider | None = field(default=None, repr=False)
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

    async def chat(self, request: ChatRequest, ordered: Ordered) -> ChatResult:
        """Reserve the worst case, send, settle to the reported usage (see mission/llm.py)."""
        models = self.models
        if models is None or not models.configured:
            raise PermanentError("no model endpoint: set MISSION_LLM_BASE_URL (`up` starts the embedded model)")
        model = request.model or models.default_model
        price = models.price(model)
        bound = models.allowance.prompt_bound(request.messages)
        reservation = Reservation(
            worst_cents=price.cents(bound, request.max_tokens),
            prompt_bound=bound,
            max_tokens=request.max_tokens,
            min_tokens=models.min_tokens,
            input_units=price.input_units,
            output_units=price.output_units,
            model=model,
        )
        async with models.slots:
            seqs: list[int] = []

            async def reserve(seq: int) -> tuple[str, int, int]:
                seqs.append(seq)
                return await self._call(
                    lambda: self.store.llm_reserve(self.mission_id, self.role, self.attempt, seq, reservation)
                )

            result, first, second = await ordered(reserve)
            if result == "stale":
                raise JobStopped(f"{self.mission_id}:{self.role} attempt {self.attempt} is no longer current")
            if result == "exceeded":
                raise BudgetExceeded(from_cents(reservation.worst_cents), from_cents(first), from_cents(second))
            reserved, granted = first, second
            seq = seqs[-1]
            started = time.monotonic()

            async def settle(outcome: str, prompt: int = 0, completion: int = 0, cents: int = 0) -> int:
                ms = int((time.monotonic() - started) * 1000)
                done = Settlement(outcome, model, prompt, completion, cents, ms)
                store, mission_id, role, attempt = self.store, self.mission_id, self.role, self.attempt
                return await self._call(lambda: store.llm_settle(mission_id, role, attempt, seq, done))

            try:
                answer = await models.send(model, request, granted)
            except Refused as exc:
                await settle("refused")
                if exc.retryable:
                    raise
                raise PermanentError(str(exc)) from None
            except BaseException:  # cut after sending: the provider may have billed it all
                models.settle_later(settle("unknown"))
                raise
            if answer.reported:
                prompt, completion = answer.prompt_tokens, answer.completion_tokens
            else:  # no usage reported: the worst case
                prompt, completion = bound, granted
            charged = await settle("ok", prompt, completion, price.cents(prompt, completion))
        if charged < 0:  # settled before (a retried settle): its cost is within the reservation
            charged = min(price.cents(prompt, completion), reserved)
        usage = Usage(prompt, completion, answer.cached_tokens, from_cents(charged))
        parsed: Any = None
        wants_json = request.response_format is not None and request.response_format.get("type") in JSON_FORMATS
        if wants_json:
            try:
                parsed = json.loads(answer.text)
            except ValueError as exc:
                raise InvalidModelOutput(f"the model's answer is not valid JSON: {exc}") from None
        return ChatResult(answer.text, parsed, usage, model, granted, answer.finish_reason)
