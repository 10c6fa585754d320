"""The template queries over real HTTP: `templates`, `template`, `departmentGraph`, over a richer catalogue
(two sectors, a diamond over three stages, a quorum, every template field)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from mission.models import Template
from mission.templates import outcome_logic_hash
from tests.conftest import AUDIT, DIAMOND_HASH, TEST_TEMPLATE_IDS, RunningApi
from tests.gql import data

pytestmark = pytest.mark.timeout(60)


TEMPLATE_FIELDS = """
  id name goal sector departments
  squad { role department agent budgetShare timeout maxTries }
  outcomeLogicHash outcome { policy count }
  defaults { budget ttl risk { level maxDrawdown } inputs }
  limits { budget { min max } ttl { min max } }
  dependencyGraph { nodes { department roles status } edges { from to } stages }
"""


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
