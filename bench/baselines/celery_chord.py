"""Celery: the same mission shape as a chord (a group of ``width`` no-op tasks, then a callback),
Redis as broker and result backend. Runs in its own virtualenv (bench/.venv-celery): Celery 5.7
needs redis-py >= 6.1, ARQ pins it below 6.

- worker: ``python -m celery -A bench.baselines.celery_chord worker --pool prefork --concurrency 2``
- deploy: ``python -m bench.baselines.celery_chord COUNT WIDTH`` queues COUNT chords back to back

Redis at ``BENCH_REDIS_URL``. The callback counts finished missions in ``celery:done``.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from typing import Any

import redis
from celery import Celery, chord
from celery.signals import worker_ready

URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
DONE_KEY = "celery:done"
READY_KEY = "celery:ready"
START_KEY = "celery:t0"  # wall-clock time of the first deploy

app = Celery("bench", broker=URL, backend=URL)
_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(URL)
    return _client


@app.task(name="bench.leaf")  # type: ignore[untyped-decorator]
def leaf(mission_id: str, index: int) -> int:
    return index


@app.task(name="bench.final")  # type: ignore[untyped-decorator]
def final(results: list[int], mission_id: str) -> None:
    client().incr(DONE_KEY)


@worker_ready.connect  # type: ignore[untyped-decorator]
def announce(**_: Any) -> None:
    client().set(READY_KEY, "1")


def deploy(count: int, width: int) -> None:
    client().set(START_KEY, repr(time.time()))
    for _ in range(count):
        mission_id = uuid.uuid4().hex
        chord(leaf.s(mission_id, i) for i in range(width))(final.s(mission_id))


if __name__ == "__main__":
    deploy(int(sys.argv[1]), int(sys.argv[2]))
