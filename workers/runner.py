"""One attempt of one agent: take it, run it inside its limits, record how it ended."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arq.worker import Retry

from mission import codec
from mission.agents import resolve_agent
from mission.errors import AgentNotFound, BudgetExceeded, JobStopped
from mission.logs import bound
from mission.models import MissionStatus
from mission.money import from_cents
from mission.store import MissionStore, Started
from workers.agents.sdk import AgentContext, AttemptHandedBack, bind_calls, is_retryable
from workers.calls import WorkerCalls
from workers.outage import TRANSIENT, persistently
from workers.runtime import WorkerRuntime

log = logging.getLogger("mission.worker")

MAX_OUTPUT_BYTES = 1024 * 1024
MAX_ERROR = 2000


def retry_delay_ms(runtime: WorkerRuntime, failures: int) -> int:
    """Exponential backoff: the first retry after `retry_backoff_seconds`, doubling each time."""
    s = runtime.settings
    return int(min(s.retry_backoff_seconds * 2**failures, s.retry_backoff_max_seconds) * 1000)


async def expire_when_due(store: MissionStore, mission_id: str, give_up_after: float) -> str:
    """Expire a mission whose deadline has come (by this worker's timer); Redis's clock, which
    decides, may lag a little: wait for it."""
    for _ in range(50):
        result, status = await persistently(lambda: store.stop(mission_id, MissionStatus.EXPIRED), give_up_after)
        if result != "early":
            return status
        await asyncio.sleep(0.1)
    return "early"


async def time_out_when_due(store: MissionStore, mission_id: str, give_up_after: float) -> str:
    """Apply an approval gate's ``on_timeout`` once its deadline has come (Redis's clock decides,
    as for `expire_when_due`); returns the decide script's result."""
    for _ in range(50):
        result, _, _ = await persistently(
            lambda: store.decide(mission_id, "timeout", "", "", allow_self=False), give_up_after
        )
        if result != "early":
            return result
        await asyncio.sleep(0.1)
    return "early"


async def run_attempt(runtime: WorkerRuntime, mission_id: str, role: str, attempt: int) -> dict[str, Any]:
    with bound(mission_id=mission_id, job_id=f"{mission_id}:{role}", attempt=attempt):
        return await _run_attempt(runtime, mission_id, role, attempt)


async def _run_attempt(runtime: WorkerRuntime, mission_id: str, role: str, attempt: int) -> dict[str, Any]:
    store = runtime.store
    give_up_after = runtime.settings.lease_seconds * 3
    try:
        started = await persistently(
            lambda: store.start_job(mission_id, role, attempt, runtime.lease_ms, runtime.name), give_up_after
        )
    except TRANSIENT as exc:
        raise Retry(defer=1) from exc  # ARQ keeps the job and runs it again once Redis is back
    if not isinstance(started, Started):
        return {"ran": False, "reason": started}
    job = started.job

    async def finish(outcome: str, payload: str, *, retryable: bool = False) -> dict[str, Any]:
        result, status = await asyncio.shield(
            persistently(
                lambda: store.finish_job(
                    mission_id,
                    role,
                    attempt,
                    outcome,
                    payload,
                    retryable=retryable,
                    retry_delay_ms=retry_delay_ms(runtime, int(job.get("failures", 0))),
                    lease_losses=runtime.settings.max_lease_losses,
                ),
                give_up_after=give_up_after,
            )
        )
        level = logging.DEBUG if outcome == "ok" else logging.INFO
        log.log(level, "attempt ended: %s%s", outcome, f" ({payload[:200]})" if outcome == "error" else "")
        # the finish script also forgot the attempt's ARQ job (out of the queue, its keys deleted)
        return {"ran": True, "outcome": outcome, "result": result, "status": status, "forgotten": True}

    try:
        agent = resolve_agent(job["agent"])
    except AgentNotFound as exc:
        return await finish("error", exc.message)

    ctx = AgentContext(
        mission_id=mission_id,
        role=role,
        department=job["department"],
        attempt=attempt,
        inputs=dict(started.config.get("inputs") or {}),
        upstream=started.upstream,
        config=started.config,
        deadline=datetime.fromtimestamp(started.deadline_ms / 1000, tz=UTC),
        allocated=from_cents(int(job["allocated"])),
        timeout=float(job["timeout"]) if job.get("timeout") else None,
        max_tries=int(job.get("max_tries") or 1),
        service=runtime.service,
        spent=from_cents(int(job.get("spent", 0))),
        llm_spec=codec.loads(job["llm"]) if job.get("llm") else None,
    )
    calls = WorkerCalls(store, mission_id, role, attempt, give_up_after, runtime.models)
    until_deadline = started.remaining_ms / 1000  # Redis's clock: the worker's may be off
    job_timeout = float(job["timeout"]) if job.get("timeout") else math.inf
    key = (mission_id, role, attempt)
    task = asyncio.create_task(agent(ctx), name=f"agent {mission_id}:{role}:{attempt}", context=bind_calls(calls))
    runtime.track(key, task)  # its lease is renewed until its end is recorded, outages included
    try:
        ending = await _await_agent(task, job_timeout, until_deadline)
        if calls.handed_back:  # Redis stayed away too long for an SDK call: not the agent's failure
            await finish("release", "Redis was unavailable to the agent's calls; running again")
            return {"ran": True, "outcome": "handed back"}
        if isinstance(ending, Expired):
            await asyncio.shield(expire_when_due(store, mission_id, give_up_after))
            return {"ran": True, "outcome": "expired"}
        if isinstance(ending, Stopped):
            if ending.shutting_down:  # hand the attempt back so another worker runs it now
                await finish("release", "")
                raise asyncio.CancelledError
            return {"ran": True, "outcome": "stopped"}  # the mission ended; its state is already stored
        return await finish(ending.outcome, ending.payload, retryable=ending.retryable)
    finally:
        runtime.untrack(key)


@dataclass(frozen=True)
class Ended:
    outcome: str  # ok | error
    payload: str  # output JSON or error text
    retryable: bool = False


@dataclass(frozen=True)
class Expired:
    """The mission's deadline passed while the agent ran."""


@dataclass(frozen=True)
class Stopped:
    """The agent was stopped: the mission ended, the attempt was superseded, or the worker stops."""

    shutting_down: bool


async def _await_agent(task: asyncio.Task[Any], job_timeout: float, until_deadline: float) -> Ended | Expired | Stopped:
    """Wait for the agent within its limits and say how it ended."""
    limit = max(0.0, min(job_timeout, until_deadline))
    try:
        async with asyncio.timeout(None if math.isinf(limit) else limit):
            output = await task
    except TimeoutError:
        if job_timeout >= until_deadline:
            return Expired()
        return Ended("error", f"timeout: the agent ran longer than its {job_timeout:g} s", retryable=True)
    except asyncio.CancelledError:
        current = asyncio.current_task()
        return Stopped(shutting_down=current is not None and current.cancelling() > 0)
    except BudgetExceeded as exc:
        return Ended("error", f"budget_exceeded: {exc.message}")
    except JobStopped:
        return Stopped(shutting_down=False)
    except AttemptHandedBack as exc:
        return Ended("error", str(exc), retryable=True)  # the runner hands the attempt back
    except Exception as exc:
        return Ended("error", f"{type(exc).__name__}: {exc}"[:MAX_ERROR], retryable=is_retryable(exc))
    try:
        payload = codec.dumps(output)
    except (TypeError, ValueError) as exc:
        return Ended("error", f"output is not JSON-serialisable: {exc}"[:MAX_ERROR])
    size = len(payload.encode())
    if size > MAX_OUTPUT_BYTES:
        return Ended("error", f"output of {size} bytes is above the limit of {MAX_OUTPUT_BYTES}")
    return Ended("ok", payload)
