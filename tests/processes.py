"""The service as real child processes, for the fault and load tests: `mission-service serve` and
`mission-service worker`, each logging to a file under the test's tmp_path, each SIGKILL-able.

Also the checks those tests share: every event log gap-free, read straight from Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from mission.keys import Keys
from mission.records import Event
from server.redis_local import stop_process
from tests.common import REPO, TEST_SETTINGS, TEST_TEMPLATES


def service_env(redis_url: str, templates_path: Path = TEST_TEMPLATES, **extra: Any) -> dict[str, str]:
    """The environment of a child process: TEST_SETTINGS as ``MISSION_*``, plus ``extra`` (same naming)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSION_")}
    env["PYTHONPATH"] = str(REPO)
    settings = {**TEST_SETTINGS, "templates_path": templates_path, "redis_url": redis_url, "log_format": "json"}
    settings.update(extra)
    env.update({f"MISSION_{k.upper()}": str(v) for k, v in settings.items()})
    return env


class Child:
    """One `python -m server.cli …` child; stdout and stderr go to ``log_path``."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", *self.argv], env=env, cwd=REPO, stdout=self._log, stderr=self._log
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines (anything else, e.g. a crash's bare traceback, as ``{"raw": line}``)."""
        lines = []
        for line in self.log_text().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"raw": line})
        return lines

    def kill(self) -> int:
        """SIGKILL; returns the exit code (-9 when the signal did it)."""
        self.process.send_signal(signal.SIGKILL)
        return self.process.wait(10)

    def stop(self) -> int:
        """SIGTERM (a graceful shutdown), SIGKILL after 15 s; returns the exit code."""
        code = stop_process(self.process, timeout=15)
        self._log.close()
        return code

    def __repr__(self) -> str:
        return f"<{' '.join(self.argv)} pid={self.pid} rc={self.process.returncode} log={self.log_path}>"


class ApiProcess(Child):
    def __init__(self, port: int, env: dict[str, str], log_path: Path) -> None:
        super().__init__(["--log-level", "INFO", "serve", "--port", str(port)], env, log_path)
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/graphql"
        self.ws_url = f"ws://127.0.0.1:{port}/graphql"

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until /readyz says ready (Redis answers, templates loaded); fails if the process exits."""
        async with httpx.AsyncClient(timeout=1.0) as client, asyncio.timeout(timeout):
            while True:
                if not self.alive:
                    raise RuntimeError(f"API server exited with {self.process.returncode}:\n{self.log_text()}")
                try:
                    if (await client.get(f"{self.base}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)


class WorkerChild(Child):
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__(["--log-level", "INFO", "worker"], env, log_path)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until the worker logs that it is ready (its startup subscribed the wake and control channels)."""
        async with asyncio.timeout(timeout):
            while "ready on queue" not in self.log_text():
                if not self.alive:
                    raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log_text()}")
                await asyncio.sleep(0.05)


class Processes:
    """Starts children for one test and stops every one of them at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.children: list[Child] = []

    def _log(self, kind: str) -> Path:
        return self.tmp_path / f"{kind}-{sum(1 for c in self.children if c.log_path.name.startswith(kind))}.log"

    def api(self, port: int, redis_url: str, **settings: Any) -> ApiProcess:
        child = ApiProcess(port, service_env(redis_url, **settings), self._log("api"))
        self.children.append(child)
        return child

    def worker(self, redis_url: str, **settings: Any) -> WorkerChild:
        child = WorkerChild(service_env(redis_url, **settings), self._log("worker"))
        self.children.append(child)
        return child

    def tracebacks(self) -> list[str]:
        """Log lines of every child that carry a traceback (a crash or an unexpected error)."""
        found = []
        for child in self.children:
            for line in child.log_lines():
                if "traceback" in line or "Traceback" in line.get("raw", ""):
                    found.append(f"{child.log_path.name}: {json.dumps(line)[:2000]}")
        return found

    def close(self) -> None:
        for child in self.children:
            child.stop()


async def event_logs(redis: Redis, keys: Keys, mission_ids: Iterable[str]) -> dict[str, list[Event]]:
    """Each mission's whole event log, read from Redis in one pipeline."""
    ids = list(mission_ids)
    async with redis.pipeline(transaction=False) as pipe:
        for mission_id in ids:
            pipe.lrange(keys.events(mission_id), 0, -1)
        raw = await pipe.execute()
    return {mission_id: [Event.parse(item) for item in items] for mission_id, items in zip(ids, raw, strict=True)}


def gap_free_problems(mission_id: str, events: list[Event], seq: int | None = None) -> list[str]:
    """What is wrong with one finished mission's log: seq must be 1..n with no gap or duplicate, each
    event in its slot, exactly one event ending the mission and that one last; ``seq`` (the mission
    hash's counter), when given, must equal n."""
    problems = []
    seqs = [e.seq for e in events]
    if seqs != list(range(1, len(events) + 1)):
        problems.append(f"{mission_id}: seqs {seqs}")
    if any(e.mission_id != mission_id for e in events):
        problems.append(f"{mission_id}: an event of another mission in the log")
    terminal = [e.seq for e in events if e.terminal]
    if len(terminal) != 1 or not events or terminal[0] != events[-1].seq:
        problems.append(f"{mission_id}: terminal events at {terminal} of {len(events)}")
    if seq is not None and seq != len(events):
        problems.append(f"{mission_id}: the mission's seq counter is {seq}, its log has {len(events)}")
    return problems
