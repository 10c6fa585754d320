"""Agents for the engine's own tests: slow, flaky, failing, spending. Referenced as
``tests.agents:<name>`` from tests/templates.json."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from workers.agents.sdk import AgentContext

# What in-process agents saw, for assertions (the worker runs in the test's own process).
STARTED: dict[str, asyncio.Event] = {}
CANCELLED: dict[str, asyncio.Event] = {}


def started(job_id: str) -> asyncio.Event:
    """Set when the agent of ``job_id`` starts."""
    return STARTED.setdefault(job_id, asyncio.Event())


def cancelled(job_id: str) -> asyncio.Event:
    """Set when the agent of ``job_id`` is stopped (its task cancelled)."""
    return CANCELLED.setdefault(job_id, asyncio.Event())


async def hang(ctx: AgentContext) -> dict[str, Any]:
    """Runs until stopped; records that it was stopped."""
    started(ctx.job_id).set()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        cancelled(ctx.job_id).set()
        raise
    return {}


async def slow(ctx: AgentContext) -> dict[str, Any]:
    """Sleeps ``inputs.seconds`` (default 3): long enough to be killed or cancelled mid-run."""
    started(ctx.job_id).set()
    await ctx.progress(0.1, "started")
    await asyncio.sleep(float(ctx.inputs.get("seconds", 3)))
    return {"attempt": ctx.attempt}


async def flaky(ctx: AgentContext) -> dict[str, Any]:
    """Fails on its first two tries, succeeds on the third."""
    if ctx.attempt < 3:
        raise RuntimeError(f"flaky failure on try {ctx.attempt}")
    return {"succeeded_on": ctx.attempt}


async def fail(ctx: AgentContext) -> dict[str, Any]:
    raise RuntimeError("this agent always fails")


async def bad_input(ctx: AgentContext) -> dict[str, Any]:
    raise ValueError("inputs.amount must be a number")


async def echo(ctx: AgentContext) -> dict[str, Any]:
    """Returns what it saw: inputs, upstream results."""
    return {"role": ctx.role, "inputs": ctx.inputs, "upstream": ctx.upstream}


async def spend_all(ctx: AgentContext) -> dict[str, Any]:
    """Spends ``inputs.charge`` (default 1.00) in ``inputs.parallel`` concurrent calls until refused."""
    charge = Decimal(str(ctx.inputs.get("charge", "1.00")))
    parallel = int(ctx.inputs.get("parallel", 8))
    accepted = 0

    async def spender() -> None:
        nonlocal accepted
        while True:
            await ctx.spend(charge, "metered call")
            accepted += 1

    await asyncio.gather(*(spender() for _ in range(parallel)))
    return {"accepted": accepted}


async def spend_once(ctx: AgentContext) -> dict[str, Any]:
    """Spends ``inputs.charge`` once and succeeds."""
    remaining = await ctx.spend(Decimal(str(ctx.inputs.get("charge", "1.00"))), "one call")
    return {"remaining": str(remaining)}
