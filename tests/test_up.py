"""`mission-service up`: the whole service in one process tree, a local Redis that keeps its data."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import psutil
import pytest

from server.redis_local import free_port
from tests.conftest import TEST_TEMPLATES, eventually
from tests.processes import Child, service_env

pytestmark = pytest.mark.timeout(120)

DEPLOY = 'mutation { deployMission(templateId: "%s") { ... on MissionDeployed { mission { id } } } }'


def up(tmp_path: Path, port: int, round_: int) -> Child:
    env = service_env("unused", TEST_TEMPLATES, port=port)
    del env["MISSION_REDIS_URL"]  # none configured: `up` starts its own Redis
    return Child(["up", "--data-dir", str(tmp_path / "data")], env, tmp_path / f"up-{round_}.log")


async def ready(client: httpx.AsyncClient, child: Child, port: int) -> Child:
    """``child`` (an `up`), once it answers /readyz."""

    async def answers() -> bool:
        try:
            return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(answers, timeout=60, interval=0.1)
    return child


async def deploy(client: httpx.AsyncClient, base: str, template: str) -> str:
    deployed = (await client.post(f"{base}/graphql", json={"query": DEPLOY % template})).json()
    return str(deployed["data"]["deployMission"]["mission"]["id"])


async def status_of(client: httpx.AsyncClient, url: str, mission_id: str) -> str | None:
    query = f'{{ mission(id: "{mission_id}") {{ status }} }}'
    mission = (await client.post(url, json={"query": query})).json()["data"]["mission"]
    return None if mission is None else str(mission["status"])


async def test_up_serves_everything_stops_cleanly_and_keeps_missions(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=5) as client:
        first = await ready(client, up(tmp_path, port, 1), port)
        assert f"GraphiQL: {base}/graphql" in first.log_path.read_text()
        assert f"Mission Control: {base}/" in first.log_path.read_text()
        page = await client.get(f"{base}/graphql", headers={"accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()

        mission_id = await deploy(client, base, "two_stage")
        # model agents, answered by the embedded model `up` started (no MISSION_LLM_BASE_URL)
        model_mission = await deploy(client, base, "llm_pair")

        async def succeeded() -> bool:
            return await status_of(client, f"{base}/graphql", mission_id) == "SUCCEEDED"

        await eventually(succeeded, timeout=30, interval=0.1)  # the worker `up` started ran it

        async def model_ran() -> bool:
            return await status_of(client, f"{base}/graphql", model_mission) == "SUCCEEDED"

        await eventually(model_ran, timeout=60, interval=0.1)
        assert "Started the embedded model" in first.log_path.read_text()

        children = psutil.Process(first.pid).children(recursive=True)
        assert {"redis-server"} <= {c.name() for c in children}  # its own Redis, and a worker
        assert len(children) >= 2
        os.kill(first.pid, signal.SIGINT)  # Ctrl-C
        assert first.process.wait(30) == 0
        _, alive = psutil.wait_procs(children, timeout=15)
        assert alive == []  # nothing left behind

        second = up(tmp_path, port, 2)  # the same data directory: the mission is still there
        try:
            await ready(client, second, port)
            assert await status_of(client, f"{base}/graphql", mission_id) == "SUCCEEDED"
            children = psutil.Process(second.pid).children(recursive=True)
            assert {"redis-server"} <= {c.name() for c in children}
        finally:
            os.kill(second.pid, signal.SIGTERM)  # a service manager's stop: the same clean end
            assert second.process.wait(30) == 0
        _, alive = psutil.wait_procs(children, timeout=15)
        assert alive == []


async def test_a_worker_that_dies_under_up_is_started_again(tmp_path: Path) -> None:
    """Missions deployed after `up`'s worker was killed still run: `up` starts it again."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=5) as client:
        service = up(tmp_path, port, 1)
        try:
            await ready(client, service, port)
            workers = [c for c in psutil.Process(service.pid).children() if "worker" in c.cmdline()]
            assert len(workers) == 1
            workers[0].kill()
            mission_id = await deploy(client, base, "two_stage")

            async def succeeded() -> bool:
                return await status_of(client, f"{base}/graphql", mission_id) == "SUCCEEDED"

            await eventually(succeeded, timeout=30, interval=0.1)
            assert "The worker exited with code -9; starting it again" in service.log_path.read_text()
            children = psutil.Process(service.pid).children(recursive=True)
        finally:
            os.kill(service.pid, signal.SIGINT)
            assert service.process.wait(30) == 0
        _, alive = psutil.wait_procs(children, timeout=15)
        assert alive == []
