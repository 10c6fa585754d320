"""Riding out a Redis outage (a restart, a failover): what counts as one, and how long to wait."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis import exceptions as redis_errors

log = logging.getLogger("mission.worker")

T = TypeVar("T")

# Redis away or restarting: worth waiting for. A script error is not, and surfaces at once.
TRANSIENT = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ReadOnlyError,
    OSError,
)


async def persistently(call: Callable[[], Awaitable[T]], give_up_after: float, max_delay: float = 1.0) -> T:
    """Retry a call through a Redis outage for up to ``give_up_after`` seconds, then raise its error.

    Every call a worker makes for a running attempt (start, the agent's SDK calls, finish) waits
    this way; past the bound the attempt is handed back and runs again (see `workers.runner`).
    """
    deadline = time.monotonic() + give_up_after
    delay = 0.05
    while True:
        try:
            return await call()
        except TRANSIENT:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("Redis unavailable; retrying in %.2fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
