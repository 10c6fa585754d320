"""2. Latency at low load: deploy -> terminal for a two-stage mission, one at a time, and the CPU an
idle worker burns; ours (woken by pub/sub, 0.5 s poll) vs bare ARQ (10 ms poll)."""

from __future__ import annotations

import asyncio
import random
import time

from redis.asyncio import Redis

from bench.engines import BareArq, Engine, Ours
from bench.procs import Procs
from bench.stats import Metric, Metrics, Target, percentile
from server.redis_local import LocalRedis

NAME = "latency"
SAMPLES = 150
GAP_SECONDS = (0.005, 0.025)  # idle time between missions, random so it falls anywhere in a poll period
IDLE_SECONDS = 4.0


async def sample(engine: Engine, count: int) -> list[float]:
    """Deploy -> terminal, in ms, for ``count`` missions one after the other."""
    listener = await engine.listen()
    try:
        for _ in range(5):  # warm-up: imports, connections, scripts loaded
            await listener.arrivals.wait(await engine.deploy("two_stage"))
        latencies = []
        for _ in range(count):
            await asyncio.sleep(random.uniform(*GAP_SECONDS))
            start = time.perf_counter()
            mission_id = await engine.deploy("two_stage")
            latencies.append((await listener.arrivals.wait(mission_id) - start) * 1000)
        return latencies
    finally:
        await listener.close()


async def idle_share(engine: Engine) -> float:
    """The worker's CPU over ``IDLE_SECONDS`` with nothing to do, in % of one core."""
    await asyncio.sleep(0.5)
    before = engine.worker.cpu()
    await asyncio.sleep(IDLE_SECONDS)
    return (engine.worker.cpu() - before) / IDLE_SECONDS * 100


async def measure(
    engine: Engine, metrics: Metrics, p50: Target | None, p99: Target | None, idle: Target | None
) -> None:
    await engine.start()
    try:
        latencies = await sample(engine, SAMPLES)
        metrics.add(f"{engine.name}: p50 deploy->done", percentile(latencies, 50), "ms", p50)
        metrics.add(f"{engine.name}: p99 deploy->done", percentile(latencies, 99), "ms", p99)
        metrics.add(f"{engine.name}: idle worker CPU", await idle_share(engine), "% core", idle)
    finally:
        await engine.stop()


async def run(reps: int) -> list[Metric]:
    metrics = Metrics(NAME)
    with LocalRedis() as redis_server, Procs() as procs:
        redis = Redis.from_url(redis_server.url)
        try:
            for _ in range(reps):
                await redis.flushall()
                ours = Ours(redis_server.url, redis, procs)
                await measure(ours, metrics, Target("<=", 20), Target("<=", 40), Target("<=", 3))
                await redis.flushall()
                await measure(BareArq(redis_server.url, redis, procs), metrics, None, None, None)
        finally:
            await redis.aclose()
    return metrics.all()
