"""Fixtures: a real Redis per test session (flushed per test), real ARQ workers, the service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import uvicorn

from config.settings import Settings
from mission.events import PubSubHub, mission_events
from mission.records import Event
from mission.service import MissionService
from server.app import create_app
from server.model_local import LocalModel
from server.redis_local import LocalRedis, free_port
from tests.common import REPO, TEST_SETTINGS, TEST_TEMPLATES
from tests.processes import Processes
from workers.settings import MissionWorker, create_worker

__all__ = ["REPO", "TEST_SETTINGS", "TEST_TEMPLATES"]  # re-exported: tests import them from here too


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    with LocalRedis() as server:
        yield server


@pytest.fixture(scope="session")
def model_server() -> Iterator[LocalModel]:
    """The embedded model (llama.cpp serving SmolLM2-135M) on a free loopback port."""
    with LocalModel() as server:
        yield server


@pytest.fixture
def settings(redis_server: LocalRedis) -> Settings:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return Settings(redis_url=redis_server.url, **TEST_SETTINGS)


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[MissionService]:
    svc = MissionService(settings)
    yield svc
    await svc.close()


@pytest.fixture
async def hub(service: MissionService) -> AsyncIterator[PubSubHub]:
    hub = PubSubHub(service.redis)
    await hub.start()
    yield hub
    await hub.close()


StartWorker = Callable[..., Awaitable[MissionWorker]]


@pytest.fixture
async def start_worker(settings: Settings) -> AsyncIterator[StartWorker]:
    """Start in-process ARQ workers (real ones, on the test's Redis); all stopped at the end."""
    running: list[tuple[MissionWorker, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> MissionWorker:
        worker = create_worker(settings, handle_signals=False, **overrides)
        task = asyncio.create_task(worker.async_run())
        running.append((worker, task))
        ready = asyncio.create_task(worker.ready.wait())
        done, _ = await asyncio.wait({ready, task}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if task.done():
                task.result()
            raise TimeoutError("worker did not start")
        return worker

    yield start
    for worker, task in running:
        with contextlib.suppress(Exception):
            await worker.close()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


async def run_to_end(service: MissionService, hub: PubSubHub, mission_id: str, timeout: float = 20) -> list[Event]:
    """Every event of the mission up to the one that ends it (bounded by ``timeout``)."""

    async def collect() -> list[Event]:
        return [event async for event in mission_events(hub, service.store, mission_id)]

    return await asyncio.wait_for(collect(), timeout)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Real `mission-service` child processes (serve, worker), each logging under tmp_path; all
    stopped at the end."""
    processes = Processes(tmp_path)
    yield processes
    processes.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15) as client:
        yield client


@dataclass
class RunningApi:
    """The real app on a real uvicorn server, on a free loopback port."""

    url: str
    ws_url: str
    server: uvicorn.Server


@contextlib.asynccontextmanager
async def serve_api(settings: Settings) -> AsyncIterator[RunningApi]:
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    def started() -> bool:  # uvicorn exposes no event for this
        if task.done():
            task.result()
        return bool(server.started)

    await eventually(started)
    try:
        yield RunningApi(url=f"http://127.0.0.1:{port}/graphql", ws_url=f"ws://127.0.0.1:{port}/graphql", server=server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[RunningApi]:
    async with serve_api(settings) as running:
        yield running


async def eventually(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.01) -> None:
    """Poll an observable the code under test offers no event for (a server-side count), bounded."""
    async with asyncio.timeout(timeout):
        while True:
            result = predicate()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(interval)
