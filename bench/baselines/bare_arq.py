"""Bare ARQ: the same mission shape with only a Redis counter for the dependency.

Stage one is ``width`` parallel ``leaf`` jobs; each increments the mission's counter, and the one
that brings it to ``width`` enqueues ``final``, which counts the mission done and publishes its id.
The worker (``python -m bench.baselines.bare_arq``, Redis at ``BENCH_REDIS_URL``) runs 100 jobs at
once and polls every 10 ms.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, ClassVar

from arq.connections import ArqRedis, RedisSettings
from arq.worker import run_worker

DONE_KEY = "bare:done"  # missions finished
DONE_CHANNEL = "bare:done"  # the id of each mission as it finishes
HEALTH_KEY = "arq:queue:health-check"  # written by the worker's first poll


def redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))


async def leaf(ctx: dict[str, Any], mission_id: str, width: int) -> None:
    redis: ArqRedis = ctx["redis"]
    if await redis.incr(f"bare:count:{mission_id}") == width:
        await redis.enqueue_job("final", mission_id)


async def final(ctx: dict[str, Any], mission_id: str) -> None:
    redis: ArqRedis = ctx["redis"]
    await redis.incr(DONE_KEY)
    await redis.publish(DONE_CHANNEL, mission_id)


class WorkerSettings:
    functions: ClassVar[list[Any]] = [leaf, final]
    redis_settings = redis_settings()
    max_jobs = 100
    poll_delay = 0.01


async def deploy(pool: ArqRedis, width: int) -> str:
    """Queue one mission's first stage; returns its id."""
    mission_id = uuid.uuid4().hex
    for _ in range(width):
        await pool.enqueue_job("leaf", mission_id, width)
    return mission_id


if __name__ == "__main__":
    run_worker(WorkerSettings)  # type: ignore[arg-type]
