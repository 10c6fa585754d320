"""Supervised background tasks (the worker's heartbeat, reaper and listeners; the pub/sub reader).

A task that crashes (any exception but a cancellation) is logged with its traceback and started
again after a backoff, doubling from ``backoff`` up to ``max_backoff``. A task that crashes
``max_crashes`` times within ``window`` seconds stays down and the supervisor calls ``on_fatal``
with its name: the process stops (non-zero exit) rather than limping on without it. ``down``
names the tasks not running at the moment, for readiness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

log = logging.getLogger("mission.supervisor")

Body = Callable[[], Coroutine[Any, Any, None]]


class Supervisor:
    """Starts, watches and restarts one process's background tasks."""

    def __init__(
        self,
        on_fatal: Callable[[str], None] | None = None,
        *,
        max_crashes: int = 5,
        window: float = 60.0,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
    ) -> None:
        self.on_fatal = on_fatal
        self.max_crashes = max_crashes
        self.window = window
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.failed: str | None = None  # the first task that kept failing
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._crashes: dict[str, deque[float]] = {}
        self._down: set[str] = set()

    @property
    def down(self) -> list[str]:
        """The tasks not running now: waiting to start again after a crash, or given up."""
        return sorted(self._down)

    def spawn(self, name: str, body: Body) -> None:
        """Run ``body`` (a loop meant to run until cancelled) under supervision, as task ``name``."""
        if name in self._tasks and not self._tasks[name].done():
            raise RuntimeError(f"task {name} is already running")
        self._tasks[name] = asyncio.create_task(self._supervise(name, body), name=name)

    async def stop(self, name: str) -> None:
        """Cancel one task and wait for it to end."""
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._down.discard(name)

    async def close(self) -> None:
        for name in list(self._tasks):
            await self.stop(name)

    @contextlib.asynccontextmanager
    async def run_once(self, name: str) -> AsyncIterator[None]:
        """One run of a periodic task that a timer starts (the reaper, an ARQ cron job): a crash is
        logged and counted as a supervised task's is, and the task is down until a run succeeds."""
        try:
            yield
        except Exception as exc:
            self.crashed(name, exc)  # the timer runs it again
        else:
            if self.failed != name:
                self._down.discard(name)

    def crashed(self, name: str, exc: BaseException) -> float | None:
        """Count a crash of ``name``: the delay before it starts again, or None once it keeps failing
        (then ``on_fatal`` is called)."""
        now = time.monotonic()
        crashes = self._crashes.setdefault(name, deque())
        crashes.append(now)
        while now - crashes[0] > self.window:
            crashes.popleft()
        self._down.add(name)
        if len(crashes) >= self.max_crashes:
            log.critical("task %s crashed %d times in %.0f s; giving up", name, len(crashes), self.window, exc_info=exc)
            if self.failed is None:
                self.failed = name
                if self.on_fatal is not None:
                    self.on_fatal(name)
            return None
        delay: float = min(self.backoff * 2.0 ** (len(crashes) - 1), self.max_backoff)
        log.error("task %s crashed; starting it again in %.1f s", name, delay, exc_info=exc)
        return delay

    async def _supervise(self, name: str, body: Body) -> None:
        while True:
            try:
                await body()
                raise RuntimeError("returned, though it should run until cancelled")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = self.crashed(name, exc)
            if delay is None:
                return
            await asyncio.sleep(delay)
            self._down.discard(name)
