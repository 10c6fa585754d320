"""Each mission leaves an INFO line when deployed (the API's log) and when it ends (the log of the
process whose script ended it), read from the JSON logs of a real API server and worker."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.settings import Settings
from mission.events import PubSubHub
from mission.service import MissionService
from server.redis_local import free_port
from tests.conftest import TEST_TEMPLATES, eventually, run_to_end
from tests.gql import CANCEL, DEPLOY, data
from tests.processes import Child, Processes

pytestmark = pytest.mark.timeout(90)

KEY = "operator-key-for-the-log-test"
KEY_ID = hashlib.sha256(KEY.encode()).hexdigest()[:12]


def lines_of(child: Child, mission_id: str) -> list[dict[str, Any]]:
    return [line for line in child.log_lines() if line.get("mission_id") == mission_id]


async def the_line(child: Child, mission_id: str, message_part: str) -> dict[str, Any]:
    """The one line about the mission (outside any job) whose message has ``message_part``; waits
    for it (the line follows the event the test saw), bounded."""
    found: list[dict[str, Any]] = []

    def written() -> bool:
        found[:] = [line for line in lines_of(child, mission_id) if message_part in line["message"]]
        return bool(found)

    await eventually(written, timeout=10)
    assert len(found) == 1, found
    return found[0]


def with_a_spender(path: Path) -> Path:
    """The test templates plus `spend_once`, one agent that spends and succeeds."""
    templates = json.loads(TEST_TEMPLATES.read_text())
    spender = {**templates["templates"][0], "id": "spend_once", "outcome_logic_hash": None}
    spender["squad"] = [{"role": "payer", "department": "Finance", "agent": "tests.agents:spend_once"}]
    spender["dependencies"] = {}
    spender["defaults"] = {"budget": 5, "ttl": 60, "inputs": {"charge": "1.25"}}
    templates["templates"].append({k: v for k, v in spender.items() if v is not None})
    path.write_text(json.dumps(templates))
    return path


async def test_deploy_and_end_are_logged_at_info_with_the_mission(
    settings: Settings, service: MissionService, hub: PubSubHub, procs: Processes, tmp_path: Path
) -> None:
    templates = with_a_spender(tmp_path / "templates.json")
    keys = json.dumps({KEY: {"tenant": "acme", "role": "operator"}})
    api = procs.api(free_port(), settings.redis_url, templates_path=templates, api_keys=keys)
    worker = procs.worker(settings.redis_url, templates_path=templates)
    await asyncio.gather(api.wait_ready(), worker.wait_ready())

    async with httpx.AsyncClient(timeout=10, headers={"authorization": f"Bearer {KEY}"}) as http:

        async def deploy(template: str, config: dict[str, Any]) -> str:
            result = (await data(http, api.url, DEPLOY, t=template, config=config))["deployMission"]
            assert result["__typename"] == "MissionDeployed", result
            mission_id: str = result["mission"]["id"]
            return mission_id

        spends = await deploy("spend_once", {})
        await run_to_end(service, hub, spends)
        expires = await deploy("hang", {"ttl": 1})
        await run_to_end(service, hub, expires)
        cancelled = await deploy("hang", {})
        assert (await data(http, api.url, CANCEL, id=cancelled))["cancelMission"]["__typename"] == "MissionCancelled"

    for mission_id, template in [(spends, "spend_once"), (expires, "hang"), (cancelled, "hang")]:
        deployed = await the_line(api, mission_id, "deployed")
        assert deployed["level"] == "info" and deployed["logger"] == "mission.api"
        assert deployed["message"] == f"mission {mission_id} deployed from {template} for tenant acme"
        assert (deployed["template"], deployed["tenant"], deployed["key_id"]) == (template, "acme", KEY_ID)
        assert KEY not in json.dumps(deployed)

    # A worker's script ended the first two; the API's cancel ended the third.
    for child, mission_id, template, status, spent, budget in [
        (worker, spends, "spend_once", "SUCCEEDED", "1.25", "5.00"),
        (worker, expires, "hang", "EXPIRED", "0.00", "10.00"),
        (api, cancelled, "hang", "CANCELLED", "0.00", "10.00"),
    ]:
        ended = await the_line(child, mission_id, f"mission {mission_id} {status} after ")
        assert ended["level"] == "info"
        assert (ended["status"], ended["spent"], ended["budget"]) == (status, spent, budget)
        assert (ended["template"], ended["tenant"]) == (template, "acme")
        record = await service.get_mission(mission_id)
        assert record is not None and record.finished_at is not None
        expected = (record.finished_at - record.created_at).total_seconds()
        assert ended["duration_s"] == pytest.approx(expected, abs=0.002)
        assert ended["message"] == f"mission {mission_id} {status} after {expected:.3f} s, spent {spent} of {budget}"
        other = api if child is worker else worker
        assert not [line for line in lines_of(other, mission_id) if " after " in line["message"]]
