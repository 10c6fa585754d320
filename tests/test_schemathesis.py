"""Generated requests: schemathesis builds queries and mutations from the served schema (positive and
negative cases, a bounded, derandomized number of each), with strategies for our scalars that mix valid
values (known template and mission ids, in-range budgets) with nasty ones, and sends them over real HTTP to
`mission-service serve` as a child process. Every answer must be a 2xx/4xx JSON GraphQL response, with no
trace of the server's insides and no masked "Unexpected error"; the summary checks the valid ones reached
the resolvers."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.gql import DEPLOY, LEAKS, deploy_result, graphql_body
from tests.processes import Server

pytestmark = pytest.mark.timeout(60)


EXAMPLES = 80  # per operation and per mode (positive, negative): 7 operations x 2 x 80 = 1,120 requests

OPERATIONS = [
    "Query.templates",
    "Query.template",
    "Query.mission",
    "Query.missions",
    "Query.departmentGraph",
    "Mutation.deployMission",
    "Mutation.cancelMission",
]

NASTY_TEXT = [
    "",
    " ",
    "\u0000",
    "a\u0000b",
    "🚀",
    "\u200b",
    "\u202etwo_stage",
    "مهمة",
    "\ufeff",
    "ｔｗｏ_ｓｔａｇｅ",
    "two_stage:*",
    "*",
    "%s%n",
    "../../etc/passwd",
    "' OR 1=1 --",
    "m" * 10_000,
]

NASTY_MONEY = ["-0.01", "0.001", "12.345", "NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "1e400", "-1e400",
               "1e-400", "99999999999999999999999999.99", "0", "abc", "", " 1", "1,000", "0x10"]  # fmt: skip


@dataclass
class FuzzStats:
    requests: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)


STATS = FuzzStats()


def _register_scalars(known_ids: list[str]) -> None:
    """Strategies for our scalars (and for ID/String/Int, so some cases reach past 'not found')."""
    import graphql
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis.graphql import nodes

    def obj(pairs: list[tuple[str, graphql.ValueNode]]) -> graphql.ValueNode:
        return nodes.Object([graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v) for k, v in pairs])

    names = st.from_regex(r"\A[_A-Za-z][_0-9A-Za-z]{0,12}\Z")
    leaves = st.one_of(
        st.integers().map(nodes.Int),
        st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        st.one_of(st.text(max_size=30), st.sampled_from(NASTY_TEXT)).map(nodes.String),
        st.booleans().map(nodes.Boolean),
        st.just(nodes.Null),
    )
    json_values = st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.lists(kids, max_size=5).map(nodes.List),
            st.lists(st.tuples(names, kids), max_size=5, unique_by=lambda kv: kv[0]).map(obj),
        ),
        max_leaves=20,
    )
    texts = st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=40))
    schemathesis.graphql.scalar("JSON", json_values)
    schemathesis.graphql.scalar(
        "Decimal",
        st.one_of(
            st.sampled_from(["1", "100", "99.99", "10000", "0.01", "1E+2", *NASTY_MONEY]).map(nodes.String),
            st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str).map(nodes.String),
            st.integers().map(nodes.Int),
            st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
        ),
    )
    schemathesis.graphql.scalar("ID", st.one_of(st.sampled_from(known_ids), texts).map(nodes.String))
    schemathesis.graphql.scalar(
        "String", st.one_of(st.sampled_from(["Test", "tEsT", "low", "high", "critical"]), texts).map(nodes.String)
    )
    schemathesis.graphql.scalar(
        "Int",
        st.one_of(
            st.sampled_from([0, 1, -1, 30, 60, 100, 3600, 2**31 - 1, -(2**31)]),
            st.integers(min_value=-(2**31), max_value=2**31 - 1),
        ).map(nodes.Int),
    )


@pytest.fixture(scope="module")
def fuzz_schema(child_server: Server) -> Any:
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency (see pyproject)")
    deployed = deploy_result(child_server.post(DEPLOY, t="two_stage", key="fuzz-seed"))
    assert deployed["__typename"] == "MissionDeployed", deployed
    templates = [t["id"] for t in graphql_body(child_server.post("{ templates { id } }"))["data"]["templates"]]
    _register_scalars([*templates, deployed["mission"]["id"]])
    return schemathesis.graphql.from_url(child_server.url, timeout=15)


def _fuzz(server: Server, operation: Any, label: str, mode: Any) -> None:
    """`EXAMPLES` derandomized cases of one operation in one generation mode, each sent over HTTP and checked."""
    from hypothesis import HealthCheck, given, settings

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(base_url=server.url, timeout=30)
        STATS.requests += 1
        assert response.status_code < 500, (response.status_code, case.body, response.text[:500])
        for leak in LEAKS:
            assert leak not in response.text, (leak, case.body, response.text[:2000])
        body = response.json()  # raises on anything that is not JSON
        assert isinstance(body, dict) and ("data" in body or "errors" in body), (case.body, body)
        for error in body.get("errors") or ():
            assert isinstance(error.get("message"), str), (case.body, body)
            assert "errorId" not in (error.get("extensions") or {}), (case.body, body)  # nothing masked
        data = body.get("data")
        if data is None:
            outcome = "error: " + body["errors"][0]["message"][:50].split(":")[0]
        else:
            value = next(iter(data.values()), None)
            shape = ",".join(sorted(value)) if isinstance(value, dict) else type(value).__name__
            outcome = ("data+errors " if body.get("errors") else "data ") + shape[:40]
        STATS.outcomes[f"{label} {mode.value} {response.status_code} {outcome}"] += 1

    run()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("label", OPERATIONS)
def test_schemathesis(server: Server, fuzz_schema: Any, label: str) -> None:
    from schemathesis.generation import GenerationMode

    root, name = label.split(".")
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        _fuzz(server, fuzz_schema[root][name], label, mode)
    server.assert_serving()


def test_fuzz_summary(server: Server) -> None:
    """Runs last in this file: schemathesis sent every operation's cases in both modes, and the valid
    ones reached the resolvers (answered with data, not all refused before)."""
    if not STATS.requests:
        pytest.skip("the schemathesis tests did not run in this session")
    print(f"\nschemathesis: {STATS.requests} requests")
    for outcome, count in sorted(STATS.outcomes.items()):
        print(f"  {count:4} {outcome}")
    sent: collections.Counter[tuple[str, str]] = collections.Counter()
    answered: collections.Counter[tuple[str, str]] = collections.Counter()
    for outcome, count in STATS.outcomes.items():
        label, mode, _status, kind = outcome.split(" ", 3)
        sent[label, mode] += count
        if kind.startswith("data"):
            answered[label, mode] += count
    ran = {label for label, _ in sent}
    assert STATS.requests == sum(sent.values())
    for label in ran:
        assert sent[label, "positive"] > 0 and sent[label, "negative"] > 0, (label, sent)
        assert answered[label, "positive"] > 0, f"no valid {label} case reached the resolvers: {STATS.outcomes}"
