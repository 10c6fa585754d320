"""Generic agents: handy for demos, benchmarks and tests of the engine itself."""

from __future__ import annotations

import asyncio
from typing import Any

from workers.agents.sdk import AgentContext


async def noop(ctx: AgentContext) -> dict[str, Any]:
    """Does nothing and succeeds: the cost of the engine alone."""
    return {"role": ctx.role}


async def sleep(ctx: AgentContext) -> dict[str, Any]:
    """Waits ``inputs.seconds`` (default 1), reporting progress as it goes."""
    seconds = float(ctx.inputs.get("seconds", 1))
    steps = max(1, min(int(seconds * 4), 100))
    for step in range(steps):
        await asyncio.sleep(seconds / steps)
        await ctx.progress((step + 1) / steps, f"slept {seconds * (step + 1) / steps:.2f}s")
    return {"slept": seconds}
