"""Keep one child process of `mission-service up` running: started again when it exits, until it
keeps exiting, when `up` is told to give up (a worker that cannot start would otherwise leave the
API serving missions that never run)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence

from server.redis_local import stop_process


class Keeper:
    """Runs ``argv`` and starts it again whenever it exits, after a backoff (``first_delay``,
    doubling, at most 10 s); more than ``most_exits`` exits within ``window`` seconds calls
    ``give_up`` instead (once, from the keeper's thread)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        give_up: Callable[[], None],
        *,
        most_exits: int = 5,
        window: float = 60.0,
        first_delay: float = 0.5,
    ) -> None:
        self.name = name
        self.restarts = 0
        self.gave_up = False
        self._argv, self._env, self._give_up = list(argv), dict(env), give_up
        self._most_exits, self._window, self._first_delay = most_exits, window, first_delay
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._process = subprocess.Popen(self._argv, env=self._env)
        self._thread = threading.Thread(target=self._watch, name=f"keep {name}", daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int:
        with self._lock:
            return self._process.pid

    def _watch(self) -> None:
        exits: deque[float] = deque()
        while True:
            code = self._process.wait()
            if self._stopping.is_set():
                return
            now = time.monotonic()
            exits.append(now)
            while now - exits[0] > self._window:
                exits.popleft()
            if len(exits) > self._most_exits:
                print(
                    f"The {self.name} exited {len(exits)} times within {self._window:g} s (last code {code}): "
                    "stopping everything",
                    file=sys.stderr,
                )
                self.gave_up = True
                self._give_up()
                return
            delay = min(self._first_delay * 2 ** (len(exits) - 1), 10.0)
            print(f"The {self.name} exited with code {code}; starting it again in {delay:g} s", file=sys.stderr)
            if self._stopping.wait(delay):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._process = subprocess.Popen(self._argv, env=self._env)
                self.restarts += 1

    def stop(self, timeout: float) -> None:
        """Stop the child (SIGTERM, then SIGKILL after ``timeout``) and start it no more."""
        with self._lock:
            self._stopping.set()
            process = self._process
        stop_process(process, timeout=timeout)
        self._thread.join(timeout=5)
