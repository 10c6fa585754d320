"""Reads cost a constant number of Redis round trips, whatever the number of jobs or missions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio.connection import AbstractConnection

from config.settings import Settings
from mission.service import MissionService
from tests.conftest import TEST_TEMPLATES, StartWorker, run_to_end, serve_api
from tests.gql import data

pytestmark = pytest.mark.timeout(60)

FULL = """query ($id: ID!) { mission(id: $id) {
  id status budget { spent } graph { nodes { department status } }
  jobs { id role status attempts progress dependsOn startedAt error output budget { allocated spent } }
} }"""
PAGE = "{ missions(first: 20) { totalCount nodes { id status jobs { id status output } } } }"


@pytest.fixture
def fifty(tmp_path: Path, settings: Settings) -> Settings:
    """The test templates plus one with a 50-agent squad."""
    templates = json.loads(TEST_TEMPLATES.read_text())
    templates["templates"].append(
        {
            "id": "fifty",
            "name": "Fifty",
            "sector": "Test",
            "goal": "Fifty agents",
            "squad": [{"role": f"a{i}", "department": "Wide", "agent": "util.noop"} for i in range(50)],
            "defaults": {"budget": 100, "ttl": 120},
            "limits": {"budget": {"min": 1, "max": 1000}, "ttl": {"min": 1, "max": 3600}},
        }
    )
    path = tmp_path / "templates.json"
    path.write_text(json.dumps(templates))
    return settings.model_copy(update={"templates_path": path})


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every request the API server's Redis connections send (a pipeline is one request)."""
    sent: list[object] = []
    original = AbstractConnection.send_packed_command

    async def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        if self.client_name == "mission-api":  # not the test's own client, nor the worker's
            sent.append(command)
        await original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    yield sent


async def test_a_mission_with_50_jobs_is_read_in_one_round_trip(
    fifty: Settings, start_worker: StartWorker, round_trips: list[object]
) -> None:
    service = MissionService(fifty)
    try:
        async with serve_api(fifty) as api, httpx.AsyncClient() as client:
            from mission.events import PubSubHub

            hub = PubSubHub(service.redis)
            await hub.start()
            await start_worker()
            ids = [(await service.deploy_mission("fifty"))["mission_id"] for _ in range(3)]
            for mission_id in ids:
                await run_to_end(service, hub, mission_id)
            await hub.close()

            await data(client, api.url, FULL, id=ids[1])  # warm up: connections made, scripts loaded
            await data(client, api.url, PAGE)
            round_trips.clear()
            mission = (await data(client, api.url, FULL, id=ids[0]))["mission"]
            assert len(mission["jobs"]) == 50 and all(job["output"] for job in mission["jobs"])
            assert len(round_trips) <= 3, f"{len(round_trips)} round trips"
            # the mission's version (seq, outputs kept: the read cache's key), then the mission, its
            # jobs and their outputs in one Lua call
            assert len(round_trips) == 2
            round_trips.clear()
            assert (await data(client, api.url, FULL, id=ids[0]))["mission"] == mission
            assert len(round_trips) == 1  # unchanged since: answered from the cache once its version is read

            round_trips.clear()
            page = (await data(client, api.url, PAGE))["missions"]
            assert page["totalCount"] == 3 and sum(len(m["jobs"]) for m in page["nodes"]) == 150
            assert len(round_trips) == 2  # the index page (one pipeline), then every mission at once
    finally:
        await service.close()
