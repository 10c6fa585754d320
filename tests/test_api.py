"""Every query and mutation of the API contract over real HTTP: a real uvicorn server, a real Redis,
real in-process ARQ workers where a mission must run. Nasty input lives in test_api_errors.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.settings import Settings
from mission.events import PubSubHub
from mission.models import Template
from mission.service import MissionService
from mission.templates import outcome_logic_hash
from server.redis_local import free_port
from tests import agents
from tests.conftest import TEST_TEMPLATES, RunningApi, StartWorker, run_to_end, serve_api
from tests.gql import data, gql

pytestmark = pytest.mark.timeout(60)

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

TEMPLATE_FIELDS = """
  id name goal sector departments
  squad { role department agent budgetShare timeout maxTries }
  outcomeLogicHash outcome { policy count }
  defaults { budget ttl risk { level maxDrawdown } inputs }
  limits { budget { min max } ttl { min max } }
  dependencyGraph { nodes { department roles status } edges { from to } stages }
"""

MISSION_FIELDS = """
  id templateId template { id name } status createdAt startedAt deadline finishedAt failureReason outcomeLogicHash
  config { budget ttl risk { level maxDrawdown } inputs }
  budget { allocated spent remaining }
  eventCount
  jobs {
    id department role agent status attempts progress message dependsOn startedAt finishedAt error output
    budget { allocated spent remaining }
  }
  graph { nodes { department roles status } edges { from to } stages }
"""

DEPLOY = f"""
mutation($t: ID!, $config: MissionConfigInput, $key: String) {{
  deployMission(templateId: $t, config: $config, idempotencyKey: $key) {{
    __typename
    ... on MissionDeployed {{ created mission {{ {MISSION_FIELDS} }} }}
    ... on TemplateNotFound {{ message templateId }}
    ... on InvalidConfig {{ message problems {{ field message }} }}
  }}
}}"""

CANCEL = f"""
mutation($id: ID!) {{
  cancelMission(id: $id) {{
    __typename
    ... on MissionCancelled {{ mission {{ {MISSION_FIELDS} }} }}
    ... on MissionNotFound {{ message missionId }}
  }}
}}"""

MISSION = f"query($id: ID!) {{ mission(id: $id) {{ {MISSION_FIELDS} }} }}"

MISSIONS = """
query($status: MissionStatus, $t: ID, $first: Int, $after: String) {
  missions(status: $status, templateId: $t, first: $first, after: $after) {
    totalCount
    edges { cursor node { id status templateId } }
    nodes { id }
    pageInfo { hasNextPage endCursor }
  }
}"""


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


async def deploy(
    http: httpx.AsyncClient,
    api: RunningApi,
    template: str,
    config: dict[str, Any] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = (await data(http, api.url, DEPLOY, t=template, config=config, key=key))["deployMission"]
    return result


async def deployed(
    http: httpx.AsyncClient, api: RunningApi, template: str, config: dict[str, Any] | None = None
) -> dict[str, Any]:
    result = await deploy(http, api, template, config)
    assert result["__typename"] == "MissionDeployed", result
    mission: dict[str, Any] = result["mission"]
    return mission


async def get_mission(http: httpx.AsyncClient, api: RunningApi, mission_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (await data(http, api.url, MISSION, id=mission_id))["mission"]
    return found


async def missions(http: httpx.AsyncClient, api: RunningApi, **variables: Any) -> dict[str, Any]:
    found: dict[str, Any] = (await data(http, api.url, MISSIONS, **variables))["missions"]
    return found


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def money(value: str) -> Decimal:
    """A Decimal from the wire: a string with exactly two decimals."""
    assert isinstance(value, str), value
    whole, _, cents = value.partition(".")
    assert whole.lstrip("-").isdigit() and len(cents) == 2 and cents.isdigit(), value
    return Decimal(value)


async def nothing_stored(service: MissionService) -> None:
    """No mission, job, event, queue entry, index, counter or idempotency key in Redis (only the
    deploy rate limit's counter may exist: a refused deploy still counts as an attempt)."""
    rate = f"{service.keys.prefix}:rate:"
    keys = [k async for k in service.redis.scan_iter(count=1000) if not k.startswith(rate)]
    assert keys == [], keys


# --- templates ---


async def test_templates_lists_every_template_in_file_order(http: httpx.AsyncClient, catalogue: RunningApi) -> None:
    found = (await data(http, catalogue.url, "{ templates { id sector } }"))["templates"]
    assert [t["id"] for t in found] == [*TEST_TEMPLATE_IDS, "diamond", "audit"]


SECTORS: list[tuple[str, list[str]]] = [
    ("Finance", ["diamond"]),
    ("fInAnCe", ["diamond"]),
    ("SECURITY", ["audit"]),
    ("  security ", ["audit"]),
    ("test", TEST_TEMPLATE_IDS),
    ("Nowhere", []),
    ("Finance\u0000", []),
    ("é" * 10_000, []),
]


async def test_templates_by_sector_is_case_insensitive(
    http: httpx.AsyncClient, catalogue: RunningApi, subtests: pytest.Subtests
) -> None:
    for sector, expected in SECTORS:
        with subtests.test(sector=sector[:20]):
            query = "query($s: String) { templates(sector: $s) { id sector } }"
            found = await data(http, catalogue.url, query, s=sector)
            assert [t["id"] for t in found["templates"]] == expected
            assert all(t["sector"].casefold() == sector.strip().casefold() for t in found["templates"])


async def test_template_has_every_field(http: httpx.AsyncClient, catalogue: RunningApi) -> None:
    found = (
        await data(
            http, catalogue.url, f"query($id: ID!) {{ template(id: $id) {{ {TEMPLATE_FIELDS} }} }}", id="diamond"
        )
    )["template"]
    graph = found.pop("dependencyGraph")
    defaults = found.pop("defaults")
    limits = found.pop("limits")
    assert found == {
        "id": "diamond",
        "name": "Diamond",
        "goal": "Scout, then guard and trade in parallel, then sign off",
        "sector": "Finance",
        "departments": ["Intel", "Security", "Finance", "Legal"],
        "squad": [
            {"role": "scout", "department": "Intel", "agent": "tests.agents:echo", "budgetShare": None,
             "timeout": None, "maxTries": 1},
            {"role": "guard", "department": "Security", "agent": "tests.agents:echo", "budgetShare": None,
             "timeout": 30.0, "maxTries": 1},
            {"role": "trader1", "department": "Finance", "agent": "tests.agents:echo", "budgetShare": 0.4,
             "timeout": None, "maxTries": 1},
            {"role": "trader2", "department": "Finance", "agent": "tests.agents:echo", "budgetShare": None,
             "timeout": None, "maxTries": 1},
            {"role": "lawyer", "department": "Legal", "agent": "tests.agents:echo", "budgetShare": None,
             "timeout": None, "maxTries": 2},
        ],
        "outcomeLogicHash": DIAMOND_HASH,
        "outcome": {"policy": "all", "count": None},
    }  # fmt: skip
    assert DIAMOND_HASH.startswith("sha256:") and len(DIAMOND_HASH) == len("sha256:") + 64
    # Money is a Decimal string; the template's own figures as the file states them.
    assert Decimal(defaults.pop("budget")) == Decimal(1000)
    assert defaults == {
        "ttl": 600,
        "risk": {"level": "high", "maxDrawdown": 0.2},
        "inputs": {"portfolio": ["ACME", "INITECH"], "limit": 5, "model": {"name": "var", "window": 30}},
    }
    assert Decimal(limits["budget"]["min"]) == 100 and Decimal(limits["budget"]["max"]) == 50000
    assert limits["ttl"] == {"min": 30, "max": 7200}
    assert [n["status"] for n in graph["nodes"]] == [None] * 4
    assert graph["stages"] == [["Intel"], ["Security", "Finance"], ["Legal"]]


async def test_template_quorum_and_computed_hash(http: httpx.AsyncClient, catalogue: RunningApi) -> None:
    query = (
        "query($id: ID!) { template(id: $id) { outcome { policy count } outcomeLogicHash defaults { budget ttl } } }"
    )
    found = (await data(http, catalogue.url, query, id="audit"))["template"]
    assert found["outcome"] == {"policy": "quorum", "count": 2}
    # The file declares no hash: the registry computes it (the same function checks declared ones).
    assert found["outcomeLogicHash"] == outcome_logic_hash(Template.model_validate(AUDIT))
    assert found["defaults"] == {"budget": "99.99", "ttl": 60}


async def test_unknown_template_is_null(
    http: httpx.AsyncClient, catalogue: RunningApi, subtests: pytest.Subtests
) -> None:
    query = "query($id: ID!) { template(id: $id) { id } departmentGraph(templateId: $id) { stages } }"
    for template_id in ("nope", "", "DIAMOND", "diamond ", "x" * 100_000, "🚀", "\u0000"):
        with subtests.test(template_id=template_id[:20]):
            assert await data(http, catalogue.url, query, id=template_id) == {"template": None, "departmentGraph": None}


async def test_department_graph_is_topological_layers(http: httpx.AsyncClient, catalogue: RunningApi) -> None:
    query = """query($id: ID!) {
      departmentGraph(templateId: $id) { nodes { department roles status } edges { from to } stages }
      template(id: $id) { dependencyGraph { nodes { department roles status } edges { from to } stages } }
    }"""
    found = await data(http, catalogue.url, query, id="diamond")
    graph = found["departmentGraph"]
    assert graph == found["template"]["dependencyGraph"]
    assert graph["nodes"] == [
        {"department": "Intel", "roles": ["scout"], "status": None},
        {"department": "Security", "roles": ["guard"], "status": None},
        {"department": "Finance", "roles": ["trader1", "trader2"], "status": None},
        {"department": "Legal", "roles": ["lawyer"], "status": None},
    ]
    edges = {(e["from"], e["to"]) for e in graph["edges"]}
    assert len(graph["edges"]) == len(edges)  # no duplicates
    assert edges == {("Intel", "Security"), ("Intel", "Finance"), ("Security", "Legal"), ("Finance", "Legal")}
    assert [set(stage) for stage in graph["stages"]] == [{"Intel"}, {"Security", "Finance"}, {"Legal"}]
    stage_of = {dept: i for i, stage in enumerate(graph["stages"]) for dept in stage}
    assert all(stage_of[upstream] < stage_of[downstream] for upstream, downstream in edges)


async def test_department_graph_of_a_three_stage_chain(http: httpx.AsyncClient, api: RunningApi) -> None:
    query = (
        '{ departmentGraph(templateId: "slow_chain") { nodes { department roles status } edges { from to } stages } }'
    )
    graph = (await data(http, api.url, query))["departmentGraph"]
    assert graph == {
        "nodes": [
            {"department": "A", "roles": ["first"], "status": None},
            {"department": "B", "roles": ["middle"], "status": None},
            {"department": "C", "roles": ["last"], "status": None},
        ],
        "edges": [{"from": "A", "to": "B"}, {"from": "B", "to": "C"}],
        "stages": [["A"], ["B"], ["C"]],
    }


# --- deployMission ---


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


BAD_CONFIGS: list[tuple[dict[str, Any], set[str]]] = [
    ({"budget": "0.99"}, {"budget"}),
    ({"budget": "10000.01"}, {"budget"}),
    ({"budget": "12.345"}, {"budget"}),
    ({"budget": "-5"}, {"budget"}),
    ({"ttl": 0}, {"ttl"}),
    ({"ttl": 3601}, {"ttl"}),
    ({"ttl": -1}, {"ttl"}),
    ({"risk": {"level": "reckless"}}, {"risk.level"}),
    ({"risk": {"level": "HIGH"}}, {"risk.level"}),
    ({"risk": {"maxDrawdown": 1.5}}, {"risk.maxdrawdown"}),
    ({"risk": {"maxDrawdown": -0.1}}, {"risk.maxdrawdown"}),
    ({"inputs": ["not", "an", "object"]}, {"inputs"}),
    ({"inputs": "text"}, {"inputs"}),
    (
        {"budget": "0.5", "ttl": 99_999, "risk": {"level": "bad", "maxDrawdown": 2}, "inputs": [1]},
        {"budget", "ttl", "risk.level", "risk.maxdrawdown", "inputs"},
    ),
]


async def test_deploy_invalid_config_names_each_bad_field_and_stores_nothing(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, subtests: pytest.Subtests
) -> None:
    for config, fields in BAD_CONFIGS:
        with subtests.test(config=config):
            result = await deploy(http, api, "two_stage", config)
            assert result["__typename"] == "InvalidConfig", result
            problems = result["problems"]
            # One problem per bad field (GraphQL or Python spelling of maxDrawdown alike).
            spelt = {p["field"].replace("_", "").lower() if "." in p["field"] else p["field"] for p in problems}
            assert spelt == fields and len(problems) == len(fields)
            for problem in problems:
                assert problem["message"]
                assert problem["field"] in result["message"] and problem["message"] in result["message"]
            await nothing_stored(service)
            assert (await missions(http, api))["totalCount"] == 0


async def test_deploy_inputs_size_limit(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings
) -> None:
    limit = settings.max_inputs_bytes
    overhead = len(json.dumps({"greeting": "hello", "blob": ""}, separators=(",", ":")))
    too_big = await deploy(http, api, "two_stage", {"inputs": {"blob": "x" * (limit - overhead + 1)}})
    assert too_big["__typename"] == "InvalidConfig"
    assert [p["field"] for p in too_big["problems"]] == ["inputs"]
    assert str(limit) in too_big["problems"][0]["message"]
    await nothing_stored(service)
    just_fits = await deploy(http, api, "two_stage", {"inputs": {"blob": "x" * (limit - overhead)}})
    assert just_fits["__typename"] == "MissionDeployed"


async def test_deploy_idempotency_key_bounds(http: httpx.AsyncClient, api: RunningApi, service: MissionService) -> None:
    for key in ("", "k" * 201):
        result = await deploy(http, api, "two_stage", key=key)
        assert result["__typename"] == "InvalidConfig"
        assert [p["field"] for p in result["problems"]] == ["idempotencyKey"]
    await nothing_stored(service)
    assert (await deploy(http, api, "two_stage", key="k" * 200))["created"] is True


# --- mission ---


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


async def test_mission_unknown_or_malformed_id_is_null(
    http: httpx.AsyncClient, api: RunningApi, subtests: pytest.Subtests
) -> None:
    await deployed(http, api, "two_stage")  # something exists, and must not be found by a pattern
    for mission_id in BAD_MISSION_IDS:
        with subtests.test(mission_id=mission_id[:40]):
            response = await http.post(api.url, json={"query": MISSION, "variables": {"id": mission_id}})
            assert response.status_code == 200
            assert response.json() == {"data": {"mission": None}}


# --- missions ---


async def test_missions_pages_walk_every_mission_once_newest_first(http: httpx.AsyncClient, api: RunningApi) -> None:
    ids = [(await deployed(http, api, "two_stage"))["id"] for _ in range(7)]
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = await missions(http, api, first=3, after=after)
        pages += 1
        assert page["totalCount"] == 7
        assert [e["node"]["id"] for e in page["edges"]] == [n["id"] for n in page["nodes"]]
        seen += [n["id"] for n in page["nodes"]]
        assert page["pageInfo"]["endCursor"] == (page["edges"][-1]["cursor"] if page["edges"] else None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert len(page["edges"]) == 3
        after = page["pageInfo"]["endCursor"]
        assert pages < 10
    assert pages == 3 and len(page["edges"]) == 1
    assert seen == list(reversed(ids))
    # An edge's cursor resumes right after that edge.
    middle = (await missions(http, api, first=7))["edges"][3]
    assert [n["id"] for n in (await missions(http, api, first=2, after=middle["cursor"]))["nodes"]] == seen[4:6]


async def test_missions_default_page_and_first_zero(http: httpx.AsyncClient, api: RunningApi) -> None:
    empty = await missions(http, api)
    assert empty == {"totalCount": 0, "edges": [], "nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}
    await deployed(http, api, "two_stage")
    zero = await missions(http, api, first=0)
    assert zero["totalCount"] == 1 and zero["edges"] == [] and zero["pageInfo"]["endCursor"] is None


async def test_missions_default_first_is_20_and_first_is_capped_at_100(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService
) -> None:
    for _ in range(101):
        await service.deploy("hang")
    default = await missions(http, api)
    assert len(default["edges"]) == 20 and default["pageInfo"]["hasNextPage"] is True
    for first in (101, 1000, 2**31 - 1):
        page = await missions(http, api, first=first)
        assert page["totalCount"] == 101
        assert len(page["edges"]) == 100 and page["pageInfo"]["hasNextPage"] is True
    rest = await missions(http, api, first=100, after=page["pageInfo"]["endCursor"])
    assert len(rest["edges"]) == 1 and rest["pageInfo"]["hasNextPage"] is False


async def test_missions_negative_first_is_a_clear_error(http: httpx.AsyncClient, api: RunningApi) -> None:
    for first in (-1, -(2**31)):
        body = await gql(http, api.url, MISSIONS, first=first)
        assert body["data"] is None
        assert [e["message"] for e in body["errors"]] == ["first must not be negative"]
        assert body["errors"][0]["path"] == ["missions"]


GARBAGE_CURSORS = [
    "garbage!!",
    "bjphYmM=",  # base64 of "n:abc"
    "eDo1",  # base64 of "x:5"
    "bjotMQ==",  # base64 of "n:-1"
    "🚀" * 10,
    "A" * 100_000,
    "%%%%",
]


async def test_missions_garbage_cursor_is_a_clear_error(
    http: httpx.AsyncClient, api: RunningApi, subtests: pytest.Subtests
) -> None:
    await deployed(http, api, "two_stage")
    for cursor in GARBAGE_CURSORS:
        with subtests.test(cursor=cursor[:20]):
            body = await gql(http, api.url, MISSIONS, after=cursor)
            assert body["data"] is None
            assert [e["message"] for e in body["errors"]] == ["after: not a cursor from this service"]


async def test_missions_filters_by_status_and_template(
    http: httpx.AsyncClient, api: RunningApi, start_worker: StartWorker, service: MissionService, hub: PubSubHub
) -> None:
    two_a = (await deployed(http, api, "two_stage"))["id"]
    fan = (await deployed(http, api, "fanout"))["id"]
    hang = (await deployed(http, api, "hang"))["id"]
    fail = (await deployed(http, api, "fail_upstream"))["id"]
    two_b = (await deployed(http, api, "two_stage"))["id"]
    queued = await missions(http, api, status="QUEUED")
    assert queued["totalCount"] == 5 and [n["id"] for n in queued["nodes"]] == [two_b, fail, hang, fan, two_a]

    await start_worker()
    for mid in (two_a, fan, fail, two_b):
        await run_to_end(service, hub, mid)
    cancelled = (await data(http, api.url, CANCEL, id=hang))["cancelMission"]
    assert cancelled["__typename"] == "MissionCancelled"

    async def ids(**filters: Any) -> list[str]:
        page = await missions(http, api, **filters)
        assert page["totalCount"] == len(page["nodes"])
        nodes = [edge["node"] for edge in page["edges"]]
        for node in nodes:
            assert node["status"] == filters.get("status", node["status"])
            assert node["templateId"] == filters.get("t", node["templateId"])
        return [n["id"] for n in nodes]

    assert await ids() == [two_b, fail, hang, fan, two_a]
    assert await ids(status="SUCCEEDED") == [two_b, fan, two_a]
    assert await ids(status="FAILED") == [fail]
    assert await ids(status="CANCELLED") == [hang]
    assert await ids(status="QUEUED") == []
    assert await ids(status="RUNNING") == []
    assert await ids(status="EXPIRED") == []
    assert await ids(t="two_stage") == [two_b, two_a]
    assert await ids(t="hang") == [hang]
    assert await ids(t="no_such_template") == []
    assert await ids(status="SUCCEEDED", t="two_stage") == [two_b, two_a]
    assert await ids(status="CANCELLED", t="two_stage") == []
    assert await ids(status="CANCELLED", t="hang") == [hang]
    assert await ids(status="FAILED", t="fail_upstream") == [fail]
    # Paging inside a filter.
    first = await missions(http, api, status="SUCCEEDED", first=2)
    assert [n["id"] for n in first["nodes"]] == [two_b, fan] and first["pageInfo"]["hasNextPage"] is True
    rest = await missions(http, api, status="SUCCEEDED", first=2, after=first["pageInfo"]["endCursor"])
    assert [n["id"] for n in rest["nodes"]] == [two_a] and rest["pageInfo"]["hasNextPage"] is False


# --- cancelMission ---


async def test_cancel_a_running_mission_stops_the_whole_graph(
    http: httpx.AsyncClient, api: RunningApi, start_worker: StartWorker, service: MissionService
) -> None:
    mid = (await deployed(http, api, "hang"))["id"]
    await start_worker()
    await asyncio.wait_for(agents.started(f"{mid}:hanger").wait(), 15)
    running = await get_mission(http, api, mid)
    assert running is not None and running["status"] == "RUNNING"
    assert {j["role"]: j["status"] for j in running["jobs"]} == {"hanger": "RUNNING", "after": "WAITING"}

    result = (await data(http, api.url, CANCEL, id=mid))["cancelMission"]
    assert result["__typename"] == "MissionCancelled"
    m = result["mission"]
    assert m["id"] == mid and m["status"] == "CANCELLED"
    assert m["finishedAt"] is not None and m["failureReason"]
    assert {j["role"]: j["status"] for j in m["jobs"]} == {"hanger": "CANCELLED", "after": "CANCELLED"}
    assert [n["status"] for n in m["graph"]["nodes"]] == ["CANCELLED", "CANCELLED"]
    # The agent really is stopped, and the stored state says the same as the mutation.
    await asyncio.wait_for(agents.cancelled(f"{mid}:hanger").wait(), 10)
    stored = await get_mission(http, api, mid)
    assert stored is not None and stored["status"] == "CANCELLED"
    assert {j["status"] for j in stored["jobs"]} == {"CANCELLED"}

    again = (await data(http, api.url, CANCEL, id=mid))["cancelMission"]
    assert again["__typename"] == "MissionCancelled"
    assert again["mission"]["status"] == "CANCELLED" and again["mission"]["finishedAt"] == m["finishedAt"]
    events = await service.store.events(mid)
    assert [e.type for e in events].count("mission.cancelled") == 1


async def test_cancel_a_queued_mission_leaves_nothing_queued(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings
) -> None:
    mid = (await deployed(http, api, "two_stage"))["id"]
    assert await service.redis.zcard(settings.queue) > 0
    result = (await data(http, api.url, CANCEL, id=mid))["cancelMission"]
    assert result["__typename"] == "MissionCancelled" and result["mission"]["status"] == "CANCELLED"
    assert {j["status"] for j in result["mission"]["jobs"]} == {"CANCELLED"}
    assert await service.redis.zcard(settings.queue) == 0  # roots and the deadline job withdrawn


async def test_cancel_a_finished_mission_returns_it_as_it_is(
    http: httpx.AsyncClient, api: RunningApi, start_worker: StartWorker, service: MissionService, hub: PubSubHub
) -> None:
    mid = (await deployed(http, api, "two_stage"))["id"]
    await start_worker()
    await run_to_end(service, hub, mid)
    before = await get_mission(http, api, mid)
    result = (await data(http, api.url, CANCEL, id=mid))["cancelMission"]
    assert result["__typename"] == "MissionCancelled"
    assert result["mission"] == before
    assert result["mission"]["status"] == "SUCCEEDED"


async def test_cancel_unknown_mission(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, subtests: pytest.Subtests
) -> None:
    for mission_id in BAD_MISSION_IDS:
        with subtests.test(mission_id=mission_id[:40]):
            result = (await data(http, api.url, CANCEL, id=mission_id))["cancelMission"]
            assert result["__typename"] == "MissionNotFound"
            assert result["message"].startswith("no mission with id")
            assert mission_id[:50] in result["missionId"] and len(result["missionId"]) <= 200
            assert len(result["message"]) < 300  # a 100 KB id is not echoed back whole
            await nothing_stored(service)


# --- health, readiness, GraphiQL ---


def base_url(api: RunningApi) -> str:
    return api.url.removesuffix("/graphql")


async def test_healthz_and_readyz(http: httpx.AsyncClient, api: RunningApi) -> None:
    health = await http.get(base_url(api) + "/healthz")
    assert health.status_code == 200
    ready = await http.get(base_url(api) + "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "redis": True, "templates": len(TEST_TEMPLATE_IDS), "down": []}


async def test_without_redis_the_server_starts_but_is_not_ready(http: httpx.AsyncClient) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", templates_path=TEST_TEMPLATES)
    async with serve_api(settings) as down:
        assert (await http.get(base_url(down) + "/healthz")).status_code == 200
        ready = await http.get(base_url(down) + "/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"ready": False, "redis": False, "templates": len(TEST_TEMPLATE_IDS), "down": []}
        # What needs no Redis still answers; what does fails masked, with an id to find it in the log.
        templates = await data(http, down.url, "{ templates { id } }")
        assert len(templates["templates"]) == len(TEST_TEMPLATE_IDS)
        for query in (
            "{ missions { totalCount } }",
            '{ mission(id: "mssn_00000000000000000000000000000000") { id } }',
            'mutation { deployMission(templateId: "two_stage") { __typename } }',
            'mutation { cancelMission(id: "mssn_00000000000000000000000000000000") { __typename } }',
        ):
            response = await http.post(down.url, json={"query": query})
            assert response.status_code == 200
            error = response.json()["errors"][0]
            assert "unavailable" in error["message"]  # says what is wrong, not how
            assert error["extensions"]["errorId"] in error["message"]
            assert "Traceback" not in response.text and "Connection" not in response.text


async def test_graphiql_is_served_to_browsers(http: httpx.AsyncClient, api: RunningApi) -> None:
    page = await http.get(api.url, headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()


async def test_graphiql_can_be_switched_off(http: httpx.AsyncClient, settings: Settings) -> None:
    async with serve_api(settings.model_copy(update={"graphiql": False})) as quiet:
        page = await http.get(quiet.url, headers={"Accept": "text/html"})
        assert page.status_code == 404
        assert "graphiql" not in page.text.lower()
        assert (await http.get(base_url(quiet) + "/static/graphiql/index.html")).status_code == 404
        # The API itself still answers.
        assert len((await data(http, quiet.url, "{ templates { id } }"))["templates"]) == len(TEST_TEMPLATE_IDS)
