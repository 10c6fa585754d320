"""1. Engine throughput: five-job missions (4 parallel no-ops, then 1) deployed back to back, one
worker, ours vs bare ARQ vs a Celery chord in the same run; missions/s and worker CPU per job."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from bench.engines import BareArq, CeleryChord, Engine, Ours
from bench.procs import Procs, redis_cpu, until
from bench.stats import Metric, Metrics, Target
from server.redis_local import LocalRedis

NAME = "throughput"
JOBS_PER_MISSION = 5
MISSIONS = {"ours": 500, "bare ARQ": 500, "Celery": 200}
TIMEOUT = 90.0


@dataclass(frozen=True)
class Run:
    missions: int
    seconds: float
    worker_cpu: float
    redis_cpu: float

    @property
    def rate(self) -> float:
        return self.missions / self.seconds

    def cpu_ms_per_job(self, cpu: float) -> float:
        return cpu * 1000 / (self.missions * JOBS_PER_MISSION)


async def deploy_all(engine: Engine, count: int) -> None:
    for _ in range(count):
        await engine.deploy("fanout")


async def drain(engine: Engine, count: int, redis_server: LocalRedis, start: float, cpu0: tuple[float, float]) -> Run:
    """Wait until ``count`` missions finished; the time since ``start`` (perf_counter)."""

    async def all_done() -> bool:
        return await engine.finished() >= count

    await until(
        all_done, f"{engine.name}: {count} missions to finish", timeout=TIMEOUT, interval=0.01, watch=[engine.worker]
    )
    seconds = time.perf_counter() - start
    return Run(count, seconds, engine.worker.cpu() - cpu0[0], redis_cpu(redis_server) - cpu0[1])


async def run_in_process(engine: Engine, count: int, redis_server: LocalRedis) -> Run:
    await engine.start()
    try:
        cpu0 = (engine.worker.cpu(), redis_cpu(redis_server))
        start = time.perf_counter()
        deploying = asyncio.create_task(deploy_all(engine, count))
        run = await drain(engine, count, redis_server, start, cpu0)
        await deploying
        return run
    finally:
        await engine.stop()


async def run_celery(engine: CeleryChord, count: int, redis_server: LocalRedis) -> Run:
    await engine.start()
    try:
        cpu0 = (engine.worker.cpu(), redis_cpu(redis_server))
        engine.deploy_many(count)
        started = await engine.started_at()  # wall clock: the deployer is another process
        run = await drain(engine, count, redis_server, time.perf_counter(), cpu0)
        return Run(count, time.time() - started, run.worker_cpu, run.redis_cpu)
    finally:
        await engine.stop()


async def run(reps: int) -> list[Metric]:
    metrics = Metrics(NAME)
    with LocalRedis() as redis_server, Procs() as procs:
        redis = Redis.from_url(redis_server.url)
        try:
            for _ in range(reps):
                runs: dict[str, Run] = {}
                for engine in (Ours(redis_server.url, redis, procs), BareArq(redis_server.url, redis, procs)):
                    await redis.flushall()
                    runs[engine.name] = await run_in_process(engine, MISSIONS[engine.name], redis_server)
                celery = CeleryChord(redis_server.url, redis, procs)
                if celery.available():
                    await redis.flushall()
                    runs[celery.name] = await run_celery(celery, MISSIONS[celery.name], redis_server)
                record(metrics, runs)
        finally:
            await redis.aclose()
    return metrics.all()


def record(metrics: Metrics, runs: dict[str, Run]) -> None:
    for name in ("ours", "bare ARQ", "Celery"):
        found = runs.get(name)
        metrics.add(f"{name}: missions/s", found.rate if found else math.nan, "missions/s")
    ours = runs["ours"]
    metrics.ratio("ours / bare ARQ", ours.rate, runs["bare ARQ"].rate, Target(">=", 1.3))
    celery = runs.get("Celery")
    metrics.ratio("ours / Celery", ours.rate, celery.rate if celery else math.nan, Target(">=", 1.5))
    for name in ("ours", "bare ARQ", "Celery"):
        found = runs.get(name)
        metrics.add(f"{name}: worker CPU per job", found.cpu_ms_per_job(found.worker_cpu) if found else math.nan, "ms")
    for name in ("ours", "bare ARQ", "Celery"):
        found = runs.get(name)
        metrics.add(f"{name}: Redis CPU per job", found.cpu_ms_per_job(found.redis_cpu) if found else math.nan, "ms")
    bare = runs["bare ARQ"]
    metrics.ratio(
        "ours / bare ARQ: Redis CPU per job",
        ours.cpu_ms_per_job(ours.redis_cpu),
        bare.cpu_ms_per_job(bare.redis_cpu),
        Target("<=", 1.0),
    )
