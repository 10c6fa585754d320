"""The `mission` query over real HTTP, with real in-process ARQ workers running the missions: every field of
a finished mission, a failed one, the budget after spending, unknown ids."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from mission.events import PubSubHub
from mission.service import MissionService
from tests.conftest import BAD_MISSION_IDS, DIAMOND_HASH, RunningApi, StartWorker, run_to_end
from tests.gql import FULL_MISSION, at, deployed, get_mission, money

pytestmark = pytest.mark.timeout(60)


async def test_mission_of_a_finished_mission_has_every_field(
    http: httpx.AsyncClient, catalogue: RunningApi, start_worker: StartWorker, service: MissionService, hub: PubSubHub
) -> None:
    config = {"budget": "1234.56", "ttl": 900, "risk": {"maxDrawdown": 0.1}, "inputs": {"limit": 7, "note": "x"}}
    mid = (await deployed(http, catalogue, "diamond", config))["id"]
    await start_worker()
    events = await run_to_end(service, hub, mid)
    assert events[-1].type == "mission.succeeded"

    m = await get_mission(http, catalogue, mid)
    assert m is not None
    assert m["id"] == mid and m["templateId"] == "diamond" and m["template"] == {"id": "diamond", "name": "Diamond"}
    assert m["status"] == "SUCCEEDED" and m["failureReason"] is None
    assert at(m["createdAt"]) <= at(m["startedAt"]) <= at(m["finishedAt"]) < at(m["deadline"])
    assert at(m["deadline"]) - at(m["createdAt"]) == timedelta(seconds=900)
    assert m["outcomeLogicHash"] == DIAMOND_HASH
    inputs = {"portfolio": ["ACME", "INITECH"], "limit": 7, "model": {"name": "var", "window": 30}, "note": "x"}
    assert m["config"] == {
        "budget": "1234.56",
        "ttl": 900,
        "risk": {"level": "high", "maxDrawdown": 0.1},
        "inputs": inputs,
    }
    assert m["budget"] == {"allocated": "1234.56", "spent": "0.00", "remaining": "1234.56"}
    assert m["eventCount"] == len(events) == events[-1].seq

    jobs = {job["role"]: job for job in m["jobs"]}
    assert [job["id"] for job in m["jobs"]] == [
        f"{mid}:{r}" for r in ("scout", "guard", "trader1", "trader2", "lawyer")
    ]
    for role, job in jobs.items():
        assert job["agent"] == "tests.agents:echo"
        assert job["status"] == "SUCCEEDED" and job["attempts"] == 1 and job["error"] is None
        assert job["progress"] == 1.0 and isinstance(job["message"], str)
        assert at(job["startedAt"]) <= at(job["finishedAt"])
        assert job["output"]["role"] == role and job["output"]["inputs"] == inputs
        b = job["budget"]
        assert money(b["spent"]) == 0 and money(b["remaining"]) == money(b["allocated"])
    assert {r: j["department"] for r, j in jobs.items()} == {
        "scout": "Intel", "guard": "Security", "trader1": "Finance", "trader2": "Finance", "lawyer": "Legal"
    }  # fmt: skip
    assert jobs["scout"]["dependsOn"] == []
    assert jobs["guard"]["dependsOn"] == jobs["trader1"]["dependsOn"] == [f"{mid}:scout"]
    assert sorted(jobs["lawyer"]["dependsOn"]) == sorted(f"{mid}:{r}" for r in ("guard", "trader1", "trader2"))
    # Downstream ran after its upstream, and saw their outputs.
    upstream_done = max(at(jobs[r]["finishedAt"]) for r in ("guard", "trader1", "trader2"))
    assert at(jobs["lawyer"]["startedAt"]) >= upstream_done
    assert set(jobs["lawyer"]["output"]["upstream"]) == {"guard", "trader1", "trader2"}
    assert jobs["guard"]["output"]["upstream"] == {"scout": jobs["scout"]["output"]}
    # The split follows the shares (40 % to trader1, 15 % each to the others) and sums exactly.
    allocated = {r: money(j["budget"]["allocated"]) for r, j in jobs.items()}
    assert sum(allocated.values()) == Decimal("1234.56")
    assert abs(allocated["trader1"] - Decimal("493.82")) <= Decimal("0.01")
    assert all(
        abs(allocated[r] - Decimal("185.18")) <= Decimal("0.01") for r in ("scout", "guard", "trader2", "lawyer")
    )

    assert m["graph"] == {
        "nodes": [
            {"department": "Intel", "roles": ["scout"], "status": "SUCCEEDED"},
            {"department": "Security", "roles": ["guard"], "status": "SUCCEEDED"},
            {"department": "Finance", "roles": ["trader1", "trader2"], "status": "SUCCEEDED"},
            {"department": "Legal", "roles": ["lawyer"], "status": "SUCCEEDED"},
        ],
        "edges": m["graph"]["edges"],
        "stages": [["Intel"], ["Security", "Finance"], ["Legal"]],
    }
    assert {(e["from"], e["to"]) for e in m["graph"]["edges"]} == {
        ("Intel", "Security"), ("Intel", "Finance"), ("Security", "Legal"), ("Finance", "Legal")
    }  # fmt: skip


async def test_mission_of_a_failed_mission_reports_why(
    http: httpx.AsyncClient, api: RunningApi, start_worker: StartWorker, service: MissionService, hub: PubSubHub
) -> None:
    mid = (await deployed(http, api, "fail_upstream"))["id"]
    await start_worker()
    assert (await run_to_end(service, hub, mid))[-1].type == "mission.failed"
    m = await get_mission(http, api, mid)
    assert m is not None and m["status"] == "FAILED"
    assert m["failureReason"] and "broken" in m["failureReason"]
    assert at(m["finishedAt"]) >= at(m["createdAt"])
    jobs = {job["role"]: job for job in m["jobs"]}
    assert jobs["broken"]["status"] == "FAILED" and jobs["broken"]["attempts"] == 2
    assert "always fails" in jobs["broken"]["error"] and jobs["broken"]["output"] is None
    assert jobs["fine"]["status"] == "SUCCEEDED" and jobs["fine"]["output"]["role"] == "fine"
    assert jobs["second"]["status"] == jobs["third"]["status"] == "SKIPPED"
    assert jobs["second"]["startedAt"] is None and jobs["second"]["attempts"] == 0
    statuses = {n["department"]: n["status"] for n in m["graph"]["nodes"]}
    assert statuses == {"A": "FAILED", "B": "SKIPPED", "C": "SKIPPED"}


async def test_mission_budget_after_spending_adds_up(
    http: httpx.AsyncClient, api: RunningApi, start_worker: StartWorker, service: MissionService, hub: PubSubHub
) -> None:
    mid = (await deployed(http, api, "spenders"))["id"]
    await start_worker()
    await run_to_end(service, hub, mid)
    m = await get_mission(http, api, mid)
    assert m is not None
    total = m["budget"]
    assert money(total["spent"]) > 0
    assert money(total["spent"]) <= money(total["allocated"]) == Decimal("100.00")
    assert money(total["remaining"]) == money(total["allocated"]) - money(total["spent"])
    assert sum(money(j["budget"]["spent"]) for j in m["jobs"]) == money(total["spent"])
    for job in m["jobs"]:
        b = job["budget"]
        assert money(b["spent"]) <= money(b["allocated"])
        assert money(b["remaining"]) == money(b["allocated"]) - money(b["spent"])
        assert money(b["spent"]) % Decimal("0.37") == 0  # whole charges only


async def test_mission_unknown_or_malformed_id_is_null(
    http: httpx.AsyncClient, api: RunningApi, subtests: pytest.Subtests
) -> None:
    await deployed(http, api, "two_stage")  # something exists, and must not be found by a pattern
    for mission_id in BAD_MISSION_IDS:
        with subtests.test(mission_id=mission_id[:40]):
            response = await http.post(api.url, json={"query": FULL_MISSION, "variables": {"id": mission_id}})
            assert response.status_code == 200
            assert response.json() == {"data": {"mission": None}}
