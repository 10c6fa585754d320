"""7. Network-bound agents: one worker running 300 agents at once, each awaiting a 1 s answer from a
local HTTP server, vs bare ARQ (``max_jobs=300``) on the same shape; and what a model call through
``ctx.llm`` (reserve, send, settle) adds to its latency over calling the same local model directly."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx
from arq import create_pool
from arq.connections import RedisSettings
from redis.asyncio import Redis

from bench.baselines import bare_arq_wait
from bench.procs import TEMPLATES, Child, Procs, base_env, python, start_worker, until, wait_http, wait_workers
from bench.stats import Metric, Metrics, Target
from config.settings import Settings
from mission.keys import Keys
from mission.service import MissionService
from server.model_local import MODEL_NAME, LocalModel
from server.redis_local import LocalRedis, free_port

NAME = "network"
CONCURRENCY = 300
JOBS = 1200  # four waves of 300: ideally 4 s
WAIT_SECONDS = 1.0
IDEAL = CONCURRENCY / WAIT_SECONDS  # jobs/s
PAIRS = 20


async def slow_server(procs: Procs) -> tuple[Child, str]:
    port = free_port()
    child = procs.start("slow-http", python("-m", "bench.slow_http", str(port)), base_env())
    base = f"http://127.0.0.1:{port}"
    await wait_http(f"{base}/stats", child)
    return child, base


async def timed_run(base: str, finished: object, watch: Child) -> tuple[float, float]:
    """Jobs/s: JOBS / (the server's first request → the last completion); and the worker's CPU ms
    per job over its whole life (start-up included)."""
    done_at = 0.0

    async def all_done() -> bool:
        nonlocal done_at
        count = await finished()  # type: ignore[operator]
        if count >= JOBS:
            done_at = time.time()
            return True
        return False

    await until(all_done, "every network-bound job to finish", timeout=120, interval=0.01, watch=[watch])
    async with httpx.AsyncClient() as client:
        first = (await client.get(f"{base}/stats")).json()["first_at"]
    return JOBS / (done_at - first), watch.cpu() * 1000 / JOBS


async def ours(
    redis_url: str, redis: Redis, procs: Procs, base: str, on_worker: Callable[[Child], Awaitable[object]] | None = None
) -> tuple[float, float]:
    settings = Settings.model_validate({"redis_url": redis_url, "templates_path": TEMPLATES})
    service = MissionService(settings)
    keys = Keys()
    try:
        async with httpx.AsyncClient() as client:
            await client.get(f"{base}/reset")
        for _ in range(JOBS):  # queued before the worker starts: its run alone is timed
            await service.deploy_mission("bench_wait", {"inputs": {"url": f"{base}/wait?s={WAIT_SECONDS}"}})
        worker = start_worker(procs, redis_url, "worker-network", worker_concurrency=CONCURRENCY)
        await wait_workers(redis, worker, keys.wake_channel)
        if on_worker is not None:
            await on_worker(worker)

        async def finished() -> int:
            return int(await redis.zcard(keys.index("*", "SUCCEEDED")))

        rate = await timed_run(base, finished, worker)
        procs.stop(worker)
        return rate
    finally:
        await service.close()


async def bare(redis_url: str, redis: Redis, procs: Procs, base: str) -> tuple[float, float]:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        async with httpx.AsyncClient() as client:
            await client.get(f"{base}/reset")
        for _ in range(JOBS):
            await pool.enqueue_job("wait", f"{base}/wait?s={WAIT_SECONDS}")
        env = base_env(BENCH_REDIS_URL=redis_url)
        worker = procs.start("bare-arq-wait", python("-m", "bench.baselines.bare_arq_wait"), env)

        async def finished() -> int:
            return int(await redis.get(bare_arq_wait.DONE_KEY) or 0)

        rate = await timed_run(base, finished, worker)
        procs.stop(worker)
        return rate
    finally:
        await pool.aclose()


async def model_overhead(redis_url: str, redis: Redis, procs: Procs, model: LocalModel) -> tuple[float, float]:
    """(median direct ms, median through ctx.llm ms) over PAIRS alternating calls in one agent."""
    prices = f'{{"{MODEL_NAME}": {{"input": "0", "output": "0"}}}}'
    worker = start_worker(
        procs, redis_url, "worker-llm", llm_base_url=model.base_url, llm_prices=prices, llm_model=MODEL_NAME
    )
    keys = Keys()
    await wait_workers(redis, worker, keys.wake_channel)
    service = MissionService(Settings.model_validate({"redis_url": redis_url, "templates_path": TEMPLATES}))
    try:
        inputs = {"url": model.base_url, "model": MODEL_NAME, "pairs": PAIRS}
        summary = await service.deploy_mission("bench_llm", {"inputs": inputs})
        mission_id = str(summary["mission_id"])

        async def ended() -> bool:
            status = await service.store.status(mission_id)
            return status is not None and status.terminal

        await until(ended, "the model-call mission to end", timeout=180, interval=0.1, watch=[worker])
        record = await service.store.read_one(mission_id, outputs=True)
        assert record is not None and record.jobs[0].output, f"the model-call mission failed: {record}"
        output = record.jobs[0].output
        return statistics.median(output["direct"]), statistics.median(output["metered"])
    finally:
        await service.close()
        procs.stop(worker)


async def run(reps: int) -> list[Metric]:
    metrics = Metrics(NAME)
    with LocalRedis() as redis_server, Procs() as procs, LocalModel() as model:
        redis = Redis.from_url(redis_server.url)
        _, base = await slow_server(procs)
        try:
            for _ in range(reps):
                await redis.flushall()
                ours_rate, ours_cpu = await ours(redis_server.url, redis, procs, base)
                await redis.flushall()
                bare_rate, bare_cpu = await bare(redis_server.url, redis, procs, base)
                metrics.add("ours: 300 agents awaiting 1 s", ours_rate, "jobs/s", Target(">=", 0.85 * IDEAL))
                metrics.add("bare ARQ max_jobs=300: same", bare_rate, "jobs/s")
                metrics.add("ours: worker CPU per job", ours_cpu, "ms")
                metrics.add("bare ARQ: worker CPU per job", bare_cpu, "ms")
                metrics.ratio("ours / ideal 300 jobs/s", ours_rate, IDEAL, Target(">=", 0.85))
                await redis.flushall()
                direct, metered = await model_overhead(redis_server.url, redis, procs, model)
                metrics.add("model call direct (p50)", direct, "ms")
                metrics.add("model call via ctx.llm (p50)", metered, "ms")
                metrics.add("ctx.llm overhead", (metered - direct) / direct * 100, "%", Target("<=", 5))
        finally:
            await redis.aclose()
    return metrics.all()


if __name__ == "__main__":
    for metric in asyncio.run(run(1)):
        print(metric.name, metric.values, metric.unit)
