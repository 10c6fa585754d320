"""Agents for the benchmarks, referenced as ``bench.agents:<name>`` from bench/templates.json."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from redis.asyncio import Redis

from workers.agents.sdk import AgentContext


def go_key(mission_id: str) -> str:
    """The key the fan-out benchmark sets once every subscriber is listening."""
    return f"bench:go:{mission_id}"


async def wait_for_go(ctx: AgentContext, wait: float) -> None:
    # agents get no settings (they may hold secrets): the benchmark's worker has the URL in its environment
    redis = Redis.from_url(os.environ["MISSION_REDIS_URL"])
    try:
        deadline = time.monotonic() + wait
        while not await redis.exists(go_key(ctx.mission_id)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no go signal within {wait:g} s")
            await asyncio.sleep(0.05)
    finally:
        await redis.aclose()


async def pulse(ctx: AgentContext) -> dict[str, Any]:
    """Waits for the go signal, then reports progress ``count`` times, one every ``interval`` s.

    Each report is one stored and published `job.progress` event; subscribers measure how long
    each takes to reach them (the event's ``at`` is set by Redis when it is published).
    """
    count = int(ctx.inputs.get("count", 20))
    interval = float(ctx.inputs.get("interval", 0.5))
    await wait_for_go(ctx, float(ctx.inputs.get("wait", 120)))
    loop = asyncio.get_running_loop()
    start = loop.time()
    for step in range(1, count + 1):
        await ctx.progress(step / count, f"pulse {step}")
        await asyncio.sleep(max(0.0, start + step * interval - loop.time()))
    return {"pulses": count}
