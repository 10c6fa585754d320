"""`deployMission` over real HTTP: what is stored (the template's defaults merged with the given config),
the budget split, idempotency keys, an unknown template. Refused configs: test_deploy_config.py and
test_deploy_inputs.py."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from config.settings import Settings
from mission.service import MissionService
from tests.conftest import RunningApi, nothing_stored
from tests.gql import at, deploy, deployed, get_mission, missions, money

pytestmark = pytest.mark.timeout(60)


async def test_deploy_stores_the_mission_with_the_merged_config(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings
) -> None:
    config = {"budget": "250", "ttl": 120, "risk": {"level": "high", "maxDrawdown": 0.25}, "inputs": {"extra": [1, 2]}}
    result = await deploy(http, api, "two_stage", config)
    assert result["__typename"] == "MissionDeployed" and result["created"] is True
    mission = result["mission"]
    mid = mission["id"]
    assert mid.startswith("mssn_")
    assert mission["status"] == "QUEUED" and mission["templateId"] == "two_stage"
    assert mission["config"] == {
        "budget": "250.00",
        "ttl": 120,
        "risk": {"level": "high", "maxDrawdown": 0.25},
        "inputs": {"greeting": "hello", "extra": [1, 2]},
    }
    assert mission["budget"] == {"allocated": "250.00", "spent": "0.00", "remaining": "250.00"}
    assert at(mission["deadline"]) - at(mission["createdAt"]) == timedelta(seconds=120)
    assert mission["startedAt"] is None and mission["finishedAt"] is None and mission["failureReason"] is None
    assert mission["eventCount"] >= 1
    jobs = {job["role"]: job for job in mission["jobs"]}
    assert [job["id"] for job in mission["jobs"]] == [f"{mid}:left", f"{mid}:right", f"{mid}:join"]
    assert jobs["left"]["dependsOn"] == [] and jobs["right"]["dependsOn"] == []
    assert sorted(jobs["join"]["dependsOn"]) == [f"{mid}:left", f"{mid}:right"]
    assert {r: j["status"] for r, j in jobs.items()} == {"left": "QUEUED", "right": "QUEUED", "join": "WAITING"}
    assert all(j["attempts"] == 0 and j["output"] is None and j["startedAt"] is None for j in jobs.values())
    assert sum(money(j["budget"]["allocated"]) for j in jobs.values()) == Decimal("250.00")
    # The roots really are queued for workers (ARQ job ids end with the attempt), the join is not yet.
    queued = {m.decode() if isinstance(m, bytes) else m for m in await service.redis.zrange(settings.queue, 0, -1)}
    assert {f"{mid}:left:1", f"{mid}:right:1"} <= queued
    assert not any(m.startswith(f"{mid}:join") for m in queued)
    # What came back is what was stored.
    assert await get_mission(http, api, mid) == mission


async def test_deploy_without_config_takes_the_template_defaults(http: httpx.AsyncClient, api: RunningApi) -> None:
    mission = await deployed(http, api, "two_stage")
    assert mission["config"] == {
        "budget": "100.00",
        "ttl": 60,
        "risk": {"level": "medium", "maxDrawdown": None},
        "inputs": {"greeting": "hello"},
    }


INPUT_MERGES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"inputs": {"greeting": "hi"}}, {"greeting": "hi"}),
    (
        {"inputs": {"greeting": None, "n": {"deep": [1, {"x": True}]}}},
        {"greeting": None, "n": {"deep": [1, {"x": True}]}},
    ),
    ({"inputs": {}}, {"greeting": "hello"}),
    ({"inputs": {"ünï": "cødé 🚀"}}, {"greeting": "hello", "ünï": "cødé 🚀"}),
]


async def test_deploy_merges_inputs_over_the_template_inputs(
    http: httpx.AsyncClient, api: RunningApi, subtests: pytest.Subtests
) -> None:
    for config, expected in INPUT_MERGES:
        with subtests.test(config=config):
            mission = await deployed(http, api, "two_stage", config)
            assert mission["config"]["inputs"] == expected
            assert (await get_mission(http, api, mission["id"]))["config"]["inputs"] == expected  # type: ignore[index]


async def test_deploy_merges_nested_inputs_key_by_key(http: httpx.AsyncClient, catalogue: RunningApi) -> None:
    config = {"inputs": {"model": {"window": 60}, "portfolio": ["ZZZ"]}}
    mission = await deployed(http, catalogue, "diamond", config)
    assert mission["config"]["inputs"] == {
        "portfolio": ["ZZZ"],  # a list replaces
        "limit": 5,
        "model": {"name": "var", "window": 60},  # an object merges
    }


async def test_deploy_merges_risk_over_the_template_risk(
    http: httpx.AsyncClient, catalogue: RunningApi, subtests: pytest.Subtests
) -> None:
    for risk, expected in (
        ({"level": "low"}, {"level": "low", "maxDrawdown": 0.2}),
        ({"maxDrawdown": 0}, {"level": "high", "maxDrawdown": 0.0}),
        ({"level": "critical", "maxDrawdown": 1}, {"level": "critical", "maxDrawdown": 1.0}),
    ):
        with subtests.test(risk=risk):
            mission = await deployed(http, catalogue, "diamond", {"risk": risk})
            assert mission["config"]["risk"] == expected


async def test_deploy_budget_is_two_decimals_and_splits_exactly(
    http: httpx.AsyncClient, api: RunningApi, subtests: pytest.Subtests
) -> None:
    budgets: list[tuple[Any, str]] = [
        ("1", "1.00"), (12.5, "12.50"), ("100.01", "100.01"), ("10000", "10000.00"), (7, "7.00"), ("0.1E+2", "10.00")
    ]  # fmt: skip
    for budget, wire in budgets:
        with subtests.test(budget=budget):
            mission = await deployed(http, api, "two_stage", {"budget": budget})
            assert mission["config"]["budget"] == wire and mission["budget"]["allocated"] == wire
            allocations = [money(job["budget"]["allocated"]) for job in mission["jobs"]]
            assert sum(allocations) == Decimal(wire)
            assert max(allocations) - min(allocations) <= Decimal("0.01")  # equal shares, to the cent


async def test_deploy_budget_follows_the_shares(http: httpx.AsyncClient, api: RunningApi) -> None:
    mission = await deployed(http, api, "spenders", {"budget": "1000"})
    allocated = {job["role"]: job["budget"]["allocated"] for job in mission["jobs"]}
    assert allocated == {f"s{i}": "300.00" if i == 6 else "100.00" for i in range(1, 9)}


async def test_deploy_with_an_idempotency_key_creates_once(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings
) -> None:
    first = await deploy(http, api, "two_stage", {"budget": "42"}, key="order-7")
    assert first["__typename"] == "MissionDeployed" and first["created"] is True
    queued = await service.redis.zcard(settings.queue)
    again = await deploy(http, api, "two_stage", {"budget": "43"}, key="order-7")
    assert again["__typename"] == "MissionDeployed" and again["created"] is False
    assert again["mission"]["id"] == first["mission"]["id"]
    assert again["mission"]["config"]["budget"] == "42.00"  # the existing mission, as it was created
    assert await service.redis.zcard(settings.queue) == queued  # nothing queued twice
    page = await missions(http, api)
    assert page["totalCount"] == 1 and [n["id"] for n in page["nodes"]] == [first["mission"]["id"]]
    events = await service.store.events(first["mission"]["id"])
    assert [e.type for e in events].count("mission.deployed") == 1
    other = await deploy(http, api, "two_stage", key="order-8")
    assert other["created"] is True and other["mission"]["id"] != first["mission"]["id"]
    assert (await missions(http, api))["totalCount"] == 2


async def test_deploy_unknown_template(http: httpx.AsyncClient, api: RunningApi, service: MissionService) -> None:
    result = await deploy(http, api, "no_such_template", {"budget": "10"})
    assert result == {
        "__typename": "TemplateNotFound",
        "message": "no template with id 'no_such_template'",
        "templateId": "no_such_template",
    }
    await nothing_stored(service)
