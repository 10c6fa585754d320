"""Bare ARQ on the network-bound shape: each job awaits one answer from a slow local HTTP server
and counts itself done, with the same plain client as our agent (bench/rawhttp.py). ``max_jobs=300``,
10 ms poll."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from arq.connections import ArqRedis, RedisSettings
from arq.worker import run_worker

from bench import rawhttp

DONE_KEY = "bare:wait:done"
HEALTH_KEY = "arq:queue:health-check"


async def wait(ctx: dict[str, Any], url: str) -> None:
    await rawhttp.get(url)
    redis: ArqRedis = ctx["redis"]
    await redis.incr(DONE_KEY)


class WorkerSettings:
    functions: ClassVar[list[Any]] = [wait]
    redis_settings = RedisSettings.from_dsn(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    max_jobs = 300
    poll_delay = 0.01


if __name__ == "__main__":
    run_worker(WorkerSettings)  # type: ignore[arg-type]
