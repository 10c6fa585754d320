"""Agents for the engine's own tests: slow, flaky, failing, spending. Referenced as
``tests.agents:<name>`` from tests/templates.json."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import types
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


async def meter_loop(ctx: AgentContext) -> dict[str, Any]:
    """``inputs.steps`` times: charge 0.01 and report progress, pausing ``inputs.pause`` s. With
    ``inputs.ledger`` (a file), each charge is written down before it is asked for (``asked``) and
    once the SDK accepted it (``paid``), so a test can bound what the agents were charged, whichever
    worker process ran them."""
    steps, pause = int(ctx.inputs.get("steps", 40)), float(ctx.inputs.get("pause", 0.05))
    ledger = ctx.inputs.get("ledger")

    def write(what: str) -> None:
        if ledger:
            with open(ledger, "a") as file:
                file.write(f"{ctx.mission_id} {ctx.role} {ctx.attempt} {what} 1\n")

    for step in range(steps):
        write("asked")
        await ctx.spend(Decimal("0.01"), f"step {step}")
        write("paid")
        await ctx.progress((step + 1) / steps, f"step {step + 1} of {steps}")
        await asyncio.sleep(pause)
    return {"steps": steps, "attempt": ctx.attempt}


def reachable(root: object, most: int = 50_000) -> list[str]:
    """``repr()`` of everything reachable from ``root`` through data: attributes (slots, private and
    class-level properties included), containers, and functions' closures, defaults and bound
    ``self``. Not the interpreter's machinery (frames, coroutines, the event loop) nor module
    globals: any code can import a module, so what a context hands over is its data."""
    skip = (types.ModuleType, type, types.FrameType, types.CodeType, types.CoroutineType, asyncio.AbstractEventLoop)
    seen: set[int] = set()
    found: list[str] = []
    stack: list[object] = [root]
    while stack and len(seen) < most:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        try:
            found.append(repr(obj))
        except Exception as exc:  # a repr may fail; say so
            found.append(f"<repr failed: {exc!r}>")
        if isinstance(obj, (str, bytes, int, float, complex, bool)) or obj is None:
            continue
        if isinstance(obj, dict):
            stack += [*obj.keys(), *obj.values()]
        elif isinstance(obj, (list, tuple, set, frozenset, collections.deque)):
            stack += list(obj)
        if isinstance(obj, types.MethodType):
            stack += [obj.__self__, obj.__func__]
        if isinstance(obj, types.FunctionType):
            stack += [c.cell_contents for c in obj.__closure__ or () if c.cell_contents is not None]
            stack += [*(obj.__defaults__ or ()), *(obj.__kwdefaults__ or {}).values()]
            continue
        stack += list(getattr(obj, "__dict__", {}).values())
        for klass in type(obj).__mro__:
            for name in getattr(klass, "__slots__", ()):
                with contextlib.suppress(AttributeError):
                    stack.append(getattr(obj, name))
            for name, member in vars(klass).items():
                if isinstance(member, property):
                    with contextlib.suppress(Exception):
                        stack.append(getattr(obj, name))
                elif callable(member) and not name.startswith("__"):
                    with contextlib.suppress(Exception):
                        stack.append(getattr(obj, name))  # bound methods: their self and closures
    return found


async def introspect(ctx: AgentContext) -> dict[str, Any]:
    """Returns ``repr()`` of everything reachable from its context (see `reachable`)."""
    seen = reachable(ctx)
    return {"count": len(seen), "seen": "\n".join(seen)[:900_000]}


async def llm_calls(ctx: AgentContext) -> dict[str, Any]:
    """``inputs.parallel`` (default 1) concurrent model calls of ``inputs.content`` with
    ``inputs.max_tokens`` (default 8), optional ``inputs.model`` and ``inputs.response_format``;
    counts the calls the budget refused."""
    from mission.errors import BudgetExceeded

    started(ctx.job_id).set()
    content = str(ctx.inputs.get("content", "Say hi"))
    parallel = int(ctx.inputs.get("parallel", 1))
    calls: list[dict[str, Any]] = []
    refused = 0

    async def call() -> None:
        nonlocal refused
        try:
            reply = await ctx.llm.chat(
                [{"role": "user", "content": content}],
                model=ctx.inputs.get("model"),
                max_tokens=int(ctx.inputs.get("max_tokens", 8)),
                temperature=0,
                response_format=ctx.inputs.get("response_format"),
            )
        except BudgetExceeded:
            refused += 1
            return
        calls.append(
            {
                "maxTokens": reply.max_tokens,
                "promptTokens": reply.usage.prompt_tokens,
                "completionTokens": reply.usage.completion_tokens,
                "cost": str(reply.usage.cost),
                "json": reply.json,
                "text": reply.text,
            }
        )

    try:
        await asyncio.gather(*(call() for _ in range(parallel)))
    except asyncio.CancelledError:
        cancelled(ctx.job_id).set()
        raise
    return {"calls": calls, "refused": refused}
