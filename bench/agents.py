"""Agents for the benchmarks, referenced as ``bench.agents:<name>`` from bench/templates.json."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
from redis.asyncio import Redis

from bench import rawhttp
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


_HTTP: httpx.AsyncClient | None = None


def http() -> httpx.AsyncClient:
    """One client per worker process, as an agent library would keep one."""
    global _HTTP
    if _HTTP is None:
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
        _HTTP = httpx.AsyncClient(timeout=60, limits=limits)
    return _HTTP


async def await_http(ctx: AgentContext) -> dict[str, Any]:
    """Awaits one answer from ``inputs.url`` (the network-bound agent of the `network` benchmark)."""
    await rawhttp.get(ctx.inputs["url"])
    return {"ok": True}


async def llm_overhead(ctx: AgentContext) -> dict[str, Any]:
    """``inputs.pairs`` times, the same chat completion sent directly to ``inputs.url`` and through
    ``ctx.llm`` (reserve, send, settle), in ABBA order (so neither always goes first); returns both
    latency lists in ms."""
    messages = [{"role": "user", "content": str(ctx.inputs.get("content", "Name three colours."))}]
    max_tokens = int(ctx.inputs.get("max_tokens", 16))
    payload = {"model": ctx.inputs["model"], "messages": messages, "max_tokens": max_tokens, "temperature": 0}
    direct, metered = [], []
    for _ in range(3):  # warm-up: connections, the server's prompt cache
        (await http().post(ctx.inputs["url"] + "/chat/completions", json=payload)).raise_for_status()
        await ctx.llm.chat(messages, max_tokens=max_tokens, temperature=0)

    async def send_direct() -> None:
        (await http().post(ctx.inputs["url"] + "/chat/completions", json=payload)).raise_for_status()

    async def send_metered() -> None:
        await ctx.llm.chat(messages, max_tokens=max_tokens, temperature=0)

    for pair in range(int(ctx.inputs.get("pairs", 10))):
        order = [(send_direct, direct), (send_metered, metered)]
        for send, latencies in order if pair % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            await send()
            latencies.append((time.perf_counter() - start) * 1000)
    return {"direct": direct, "metered": metered}
