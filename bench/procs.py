"""Child processes of a benchmark (workers, servers, load generators), their readiness and CPU time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psutil
from redis.asyncio import Redis

from server.redis_local import LocalRedis, free_port, stop_process

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
TEMPLATES = BENCH_DIR / "templates.json"
RESULTS = BENCH_DIR / "results"
LOGS = RESULTS / "logs"
CELERY_PYTHON = BENCH_DIR / ".venv-celery" / "bin" / "python"

# Settings every mission process of a benchmark gets (the rest are the product's defaults).
MISSION_SETTINGS: dict[str, str] = {
    "TEMPLATES_PATH": str(TEMPLATES),
    "WORKER_CONCURRENCY": "100",  # as the bare ARQ worker's max_jobs
    "DEPLOY_RATE_LIMIT": "1000000000",  # the load tests deploy far more than a user may
}


def base_env(**extra: str) -> dict[str, str]:
    """This environment without any ``MISSION_*`` variable, the repo root importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSION_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def mission_env(redis_url: str, **settings: Any) -> dict[str, str]:
    env = base_env(MISSION_REDIS_URL=redis_url)
    env.update({f"MISSION_{k}": v for k, v in MISSION_SETTINGS.items()})
    env.update({f"MISSION_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU time of a process and its live descendants."""
    total = 0.0
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for member in family:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


class Child:
    """One child process, its output in ``bench/results/logs/<name>.log``."""

    def __init__(self, name: str, argv: Sequence[str], env: dict[str, str]) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOGS / f"{name}.log"
        self._log = self.log_path.open("ab")
        self._log.write(f"\n--- {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(list(argv), env=env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT)
        self.ps = psutil.Process(self.process.pid)

    @property
    def pid(self) -> int:
        return self.process.pid

    def check(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with code {code}; see {self.log_path}")

    def cpu(self) -> float:
        return cpu_seconds(self.ps)

    def stop(self, timeout: float = 15.0) -> None:
        stop_process(self.process, timeout)
        self._log.close()


class Procs:
    """Starts children and stops every one of them on exit, newest first."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> Child:
        child = Child(name, argv, env)
        self.children.append(child)
        return child

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self.children:
            self.children.remove(child)

    def __enter__(self) -> Procs:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for child in reversed(self.children):
            child.stop()
        self.children.clear()


async def until(
    predicate: Callable[[], Awaitable[bool]],
    what: str,
    timeout: float = 60.0,
    interval: float = 0.05,
    watch: Sequence[Child] = (),
) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` or as soon as a watched child exits."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        for child in watch:
            child.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(interval)


# --- the project's processes ---


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def start_worker(procs: Procs, redis_url: str, name: str, **settings: Any) -> Child:
    return procs.start(name, python("-m", "server.cli", "worker"), mission_env(redis_url, **settings))


async def wait_workers(redis: Redis, child: Child, channel: str = "ms:ch:wake:mission:queue") -> None:
    """Until the worker listens for wake-ups on ``channel`` (it subscribes once started up)."""

    async def listening() -> bool:
        found = await redis.pubsub_numsub(channel)
        return int(found[0][1]) >= 1

    await until(listening, f"{child.name} to start", watch=[child])


def start_server(procs: Procs, redis_url: str, port: int, name: str, **settings: Any) -> Child:
    argv = python("-m", "server.cli", "--log-level", "WARNING", "serve", "--port", str(port))
    return procs.start(name, argv, mission_env(redis_url, **settings))


async def wait_http(url: str, child: Child, timeout: float = 60.0) -> None:
    """Until ``url`` answers 200."""
    async with httpx.AsyncClient(timeout=2.0) as client:

        async def answers() -> bool:
            try:
                return (await client.get(url)).status_code == 200
            except httpx.HTTPError:
                return False

        await until(answers, f"{child.name} at {url}", timeout=timeout, watch=[child])


class Server:
    """A GraphQL server child process on a free loopback port."""

    def __init__(self, child: Child, port: int) -> None:
        self.child = child
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"


async def mission_server(procs: Procs, redis_url: str, name: str = "server", **settings: Any) -> Server:
    port = free_port()
    child = start_server(procs, redis_url, port, name, **settings)
    await wait_http(f"http://127.0.0.1:{port}/readyz", child)
    return Server(child, port)


def redis_cpu(server: LocalRedis) -> float:
    if server.process is None:
        return 0.0
    return cpu_seconds(psutil.Process(server.process.pid))


async def used_memory(redis: Redis) -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])
