"""Fixtures: a real Redis per test session (flushed per test), real ARQ workers, the service in-process
and as one child server per test module; the richer template catalogue; checks of what is stored."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
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
from mission.models import Template
from mission.records import Event
from mission.service import MissionService
from mission.templates import outcome_logic_hash
from server.app import create_app
from server.model_local import LocalModel
from server.redis_local import LocalRedis, free_port
from tests.common import REPO, TEST_SETTINGS, TEST_TEMPLATES
from tests.processes import Processes, Server, start_server
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


@pytest.fixture(scope="module")
def child_server(redis_server: LocalRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`mission-service serve` as a child process, shared by the tests of one module."""
    running = start_server(redis_server.url, tmp_path_factory.mktemp("served") / "server.log")
    try:
        yield running
    finally:
        running.http.close()
        running.process.terminate()
        try:
            running.process.wait(15)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()


@pytest.fixture
def server(child_server: Server) -> Iterator[Server]:
    """The module's child server; whatever a test sent, it is still up and serving a normal query afterwards."""
    yield child_server
    child_server.assert_serving()


async def missions_stored(service: MissionService) -> int:
    return (await service.store.page("*")).total


async def no_mission_stored(service: MissionService, settings: Settings) -> None:
    prefix = service.keys.prefix
    assert [k async for k in service.redis.scan_iter(match=f"{prefix}:m:*")] == []
    assert [k async for k in service.redis.scan_iter(match=f"{prefix}:idx:*")] == []
    assert [k async for k in service.redis.scan_iter(match=f"{prefix}:idem:*")] == []
    assert await service.redis.zcard(settings.queue) == 0


async def nothing_stored(service: MissionService) -> None:
    """No mission, job, event, queue entry, index, counter or idempotency key in Redis (only the
    deploy rate limit's counter may exist: a refused deploy still counts as an attempt)."""
    rate = f"{service.keys.prefix}:rate:"
    keys = [k async for k in service.redis.scan_iter(count=1000) if not k.startswith(rate)]
    assert keys == [], keys


def base_url(api: RunningApi) -> str:
    return api.url.removesuffix("/graphql")


# --- a richer catalogue: two sectors, a diamond over three stages, a quorum, every template field ---

DIAMOND: dict[str, Any] = {
    "id": "diamond",
    "name": "Diamond",
    "sector": "Finance",
    "goal": "Scout, then guard and trade in parallel, then sign off",
    "squad": [
        {"role": "scout", "department": "Intel", "agent": "tests.agents:echo"},
        {"role": "guard", "department": "Security", "agent": "tests.agents:echo", "timeout": 30},
        {"role": "trader1", "department": "Finance", "agent": "tests.agents:echo", "budget_share": 0.4},
        {"role": "trader2", "department": "Finance", "agent": "tests.agents:echo"},
        {"role": "lawyer", "department": "Legal", "agent": "tests.agents:echo", "max_tries": 2},
    ],
    "dependencies": {"Security": ["Intel"], "Finance": ["Intel"], "Legal": ["Security", "Finance"]},
    "outcome": {"policy": "all"},
    "defaults": {
        "budget": 1000,
        "ttl": 600,
        "risk": {"level": "high", "max_drawdown": 0.2},
        "inputs": {"portfolio": ["ACME", "INITECH"], "limit": 5, "model": {"name": "var", "window": 30}},
    },
    "limits": {"budget": {"min": 100, "max": 50000}, "ttl": {"min": 30, "max": 7200}},
}

# Declared in the file, so the registry checks it (a wrong one would refuse the file).
DIAMOND_HASH = outcome_logic_hash(Template.model_validate(DIAMOND))

AUDIT: dict[str, Any] = {
    "id": "audit",
    "name": "Audit",
    "sector": "Security",
    "goal": "Two of three auditors must agree",
    "squad": [{"role": f"auditor{i}", "department": "Audit", "agent": "tests.agents:echo"} for i in (1, 2, 3)],
    "outcome": {"policy": "quorum", "count": 2},
    "defaults": {"budget": "99.99", "ttl": 60},
    "limits": {"budget": {"min": 1, "max": 100}, "ttl": {"min": 1, "max": 3600}},
}

TEST_TEMPLATE_IDS = [t["id"] for t in json.loads(TEST_TEMPLATES.read_text())["templates"]]

BAD_MISSION_IDS = [
    "",
    "mssn_" + "0" * 32,  # well-formed, unknown
    "mssn_" + "g" * 32,
    "MSSN_" + "0" * 32,
    "x" * 100_000,
    "mssn_" + "0" * 32 + "\n",
    "mssn_ünïcødé🚀",
    "\u0000",
    "' OR 1=1 --",
    "ms:m:*",
]


@pytest.fixture
def catalogue_path(tmp_path: Path) -> Path:
    raw = json.loads(TEST_TEMPLATES.read_text())
    raw["templates"] += [{**DIAMOND, "outcome_logic_hash": DIAMOND_HASH}, AUDIT]
    path = tmp_path / "templates.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.fixture
async def catalogue(settings: Settings, catalogue_path: Path) -> AsyncIterator[RunningApi]:
    """The API over the richer catalogue (same Redis as `settings`, so `service` and workers see it)."""
    async with serve_api(settings.model_copy(update={"templates_path": catalogue_path})) as running:
        yield running
