"""Fuzzing over real HTTP and websockets, against `mission-service serve` as a child process.

1. schemathesis generates queries and mutations from the served schema (positive and negative cases, a bounded,
   derandomized number of each), with strategies for our scalars that mix valid values (known template and mission
   ids, in-range budgets) with nasty ones. Every answer must be a 2xx/4xx JSON GraphQL response, with no trace of
   the server's insides and no masked "Unexpected error".
2. Hand-written nasty values: huge and fractional money, unicode, 100 KB ids, 1 MB keys, deep and wide JSON and
   queries, batching, GET mutations, wrong content types, and websocket abuse on both protocols.

After every test the server process must still be alive and answer a normal query.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from mission.events import PubSubHub
from mission.service import MissionService
from server.redis_local import LocalRedis, free_port
from tests.conftest import REPO, TEST_TEMPLATES, eventually
from tests.gql import DEPLOY

pytestmark = pytest.mark.timeout(60)

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
MAX_SUBSCRIPTIONS = 20  # Settings.max_subscriptions_per_connection (default)
MAX_REQUEST_BYTES = 256 * 1024  # Settings.max_request_bytes (default): HTTP bodies and websocket frames
LEAKS = ("Traceback", 'File "', "site-packages", str(REPO), "/usr/lib/python")

READS = """
query($id: ID!, $sector: String) {
  mission(id: $id) { id }
  template(id: $id) { id }
  departmentGraph(templateId: $id) { stages }
  templates(sector: $sector) { id }
  missions(templateId: $id) { totalCount }
}"""
CANCEL = "mutation($id: ID!) { cancelMission(id: $id) { __typename ... on MissionNotFound { message missionId } } }"
COUNT = "{ missions(first: 1) { totalCount } }"
NO_MISSION = 'subscription { missionEvents(missionId: "no-such-mission") { seq } }'
UPDATES = "subscription { missionUpdates { id status } }"


# --- the server under test: `mission-service serve` as a child process ---


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log()[-chars:]

    def post(self, query: str, **variables: Any) -> httpx.Response:
        return self.http.post(self.url, json={"query": query, "variables": variables})

    def post_raw(self, body: bytes | str, content_type: str = "application/json") -> httpx.Response:
        content = body.encode() if isinstance(body, str) else body
        return self.http.post(self.url, content=content, headers={"Content-Type": content_type})

    def assert_serving(self) -> None:
        """Alive, and a normal query on a fresh connection answers."""
        assert self.process.poll() is None, f"server exited with {self.process.returncode}:\n{self.log_tail()}"
        response = httpx.post(self.url, json={"query": "{ templates { id } }"}, timeout=15)
        assert response.status_code == 200, (response.status_code, response.text[:300], self.log_tail())
        assert "two_stage" in [t["id"] for t in response.json()["data"]["templates"]]


def _start_server(redis_url: str, log_path: Path) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSION_")}  # open (no keys), loopback only
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "MISSION_REDIS_URL": redis_url,
            "MISSION_TEMPLATES_PATH": str(TEST_TEMPLATES),
            "MISSION_LOG_FORMAT": "json",
            # Fuzzing deploys a lot; the rate limit would turn most of them into RateLimited and hide deeper paths.
            "MISSION_DEPLOY_RATE_LIMIT": "1000000",
        }
    )
    port = free_port()
    log = log_path.open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "--log-level",
            "WARNING",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = Server(process=process, port=port, log_path=log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server not ready in 30 s:\n{server.log_tail()}")


@pytest.fixture(scope="module")
def server(redis_server: LocalRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = _start_server(redis_server.url, tmp_path_factory.mktemp("fuzz") / "server.log")
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


@pytest.fixture(autouse=True)
def still_serving(server: Server) -> Iterator[None]:
    """Whatever a test sent, the server is still up and serving a normal query afterwards."""
    yield
    server.assert_serving()


# --- what every answer must look like ---


def clean(response: httpx.Response) -> httpx.Response:
    """No server error, and nothing of the server's insides in the body."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    for leak in LEAKS:
        assert leak not in response.text, (leak, response.text[:2000])
    return response


def graphql_body(response: httpx.Response) -> dict[str, Any]:
    """A well-formed GraphQL response: a JSON object with `data` and/or `errors`, each error with a message."""
    clean(response)
    body = response.json()
    assert isinstance(body, dict) and ("data" in body or "errors" in body), body
    errors = body.get("errors")
    if errors is not None:
        assert isinstance(errors, list) and errors, body
        assert all(isinstance(e, dict) and isinstance(e.get("message"), str) for e in errors), body
    return body


def unmasked(body: dict[str, Any]) -> dict[str, Any]:
    """Every error is one meant for the caller (GraphQL's own or ours), never a masked unexpected one."""
    for error in body.get("errors") or ():
        assert "errorId" not in (error.get("extensions") or {}), body
        assert not error["message"].startswith("Unexpected error"), body
    return body


def deploy_result(response: httpx.Response) -> dict[str, Any]:
    body = unmasked(graphql_body(response))
    assert response.status_code == 200 and body.get("data"), body
    result: dict[str, Any] = body["data"]["deployMission"]
    return result


def mission_count(server: Server) -> int:
    count: int = graphql_body(server.post(COUNT))["data"]["missions"]["totalCount"]
    return count


# --- 1. schemathesis ---

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
def fuzz_schema(server: Server) -> Any:
    schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev dependency (see pyproject)")
    deployed = deploy_result(server.post(DEPLOY, t="two_stage", key="fuzz-seed"))
    assert deployed["__typename"] == "MissionDeployed", deployed
    templates = [t["id"] for t in graphql_body(server.post("{ templates { id } }"))["data"]["templates"]]
    _register_scalars([*templates, deployed["mission"]["id"]])
    return schemathesis.graphql.from_url(server.url, timeout=15)


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


# --- 2. hand-written nasty values over HTTP ---


@pytest.mark.parametrize(
    ("budget", "problem"),
    [
        ("1e400", "outside"),
        ("99999999999999999999999999.99", "outside"),
        ("-0.01", "outside"),
        ("0.001", "two decimal places"),
        ("12.345", "two decimal places"),
        ("1e-7", "two decimal places"),
        ("NaN", "finite"),
        ("-NaN", "finite"),
        ("sNaN", "finite"),
        ("Infinity", "finite"),
        ("-Infinity", "finite"),
    ],
)
def test_nasty_money_is_invalid_config(server: Server, budget: str, problem: str) -> None:
    before = mission_count(server)
    result = deploy_result(server.post(DEPLOY, t="two_stage", config={"budget": budget}))
    assert result["__typename"] == "InvalidConfig", result
    assert [p["field"] for p in result["problems"]] == ["budget"]
    assert problem in result["problems"][0]["message"], result
    assert len(result["message"]) < 500
    assert mission_count(server) == before


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "9" * 300])
def test_nasty_money_as_raw_json_numbers(server: Server, number: str) -> None:
    """JSON numbers Python parses to inf/nan/huge floats (json.loads accepts NaN and Infinity)."""
    body = f'{{"query": {json.dumps(DEPLOY)}, "variables": {{"t": "two_stage", "config": {{"budget": {number}}}}}}}'
    result = graphql_body(server.post_raw(body))
    unmasked(result)
    if result.get("data"):
        assert result["data"]["deployMission"]["__typename"] == "InvalidConfig", result


@pytest.mark.parametrize("ttl", [2147483647, -(2**31), 2**40, -(2**40), 10**30])
def test_huge_ttl(server: Server, ttl: int) -> None:
    before = mission_count(server)
    response = server.post(DEPLOY, t="two_stage", config={"ttl": ttl})
    body = unmasked(graphql_body(response))
    if -(2**31) <= ttl < 2**31:  # an Int: the template's range refuses it
        result = body["data"]["deployMission"]
        assert result["__typename"] == "InvalidConfig" and result["problems"][0]["field"] == "ttl", result
    else:  # not a GraphQL Int at all
        assert body["data"] is None and "32-bit" in body["errors"][0]["message"], body
    literal = f'mutation {{ deployMission(templateId: "two_stage", config: {{ttl: {ttl}}}) {{ __typename }} }}'
    unmasked(graphql_body(server.post(literal)))
    assert mission_count(server) == before


@pytest.mark.parametrize(
    "text",
    ["🚀", "🧑‍🚀👩🏽‍🚀", "\u200b", "two_stage\u200b", "\u200f\u200e", "\u202etwo_stage", "مهمة سرية", "משימה", "\ufeff",
     "e\u0301", "ｔｗｏ_ｓｔａｇｅ", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǫ̗", "\u0000", "a\u0000b", "\u0007\u001b[31m", "\U0010ffff"],
)  # fmt: skip
def test_unicode_in_ids_sector_keys_and_inputs(server: Server, text: str) -> None:
    reads = unmasked(graphql_body(server.post(READS, id=text, sector=text)))
    assert reads["data"] == {
        "mission": None,
        "template": None,
        "departmentGraph": None,
        "templates": [],
        "missions": {"totalCount": 0},
    }, reads
    cancel = unmasked(graphql_body(server.post(CANCEL, id=text)))["data"]["cancelMission"]
    assert cancel["__typename"] == "MissionNotFound" and cancel["missionId"] == text, cancel
    # As an idempotency key and as an `inputs` key and value: stored and returned exactly.
    key = f"{text}-{uuid.uuid4().hex}"
    first = deploy_result(server.post(DEPLOY, t="two_stage", key=key, config={"inputs": {text: text}}))
    assert first["__typename"] == "MissionDeployed" and first["created"], first
    assert first["mission"]["config"]["inputs"] == {"greeting": "hello", text: text}
    again = deploy_result(server.post(DEPLOY, t="two_stage", key=key, config={"inputs": {text: text}}))
    assert again["__typename"] == "MissionDeployed" and not again["created"], again
    assert again["mission"]["id"] == first["mission"]["id"]
    # A template id that only looks like a real one is not found, and is not echoed raw.
    missing = deploy_result(server.post(DEPLOY, t=text))
    assert missing["__typename"] == "TemplateNotFound" and missing["templateId"] == text, missing


def test_100kb_ids(server: Server) -> None:
    big = "m" * 100_000
    reads = unmasked(graphql_body(server.post(READS, id=big, sector=big)))
    assert reads["data"]["mission"] is None and reads["data"]["templates"] == [], reads
    cancel = unmasked(graphql_body(server.post(CANCEL, id=big)))["data"]["cancelMission"]
    assert cancel["__typename"] == "MissionNotFound", cancel
    assert len(cancel["message"]) < 1000 and len(cancel["missionId"]) <= 200  # not echoed whole
    for inline in (
        f'mission(id: "{big}") {{ id }}',
        f'template(id: "{big}") {{ id }}',
        f'departmentGraph(templateId: "{big}") {{ stages }}',
    ):
        body = unmasked(graphql_body(server.post(f"{{ {inline} }}")))
        assert list(body["data"].values()) == [None], body
    cancelled = unmasked(graphql_body(server.post(f'mutation {{ cancelMission(id: "{big}") {{ __typename }} }}')))
    assert cancelled["data"] == {"cancelMission": {"__typename": "MissionNotFound"}}
    missing = deploy_result(server.post(DEPLOY, t=big))
    assert missing["__typename"] == "TemplateNotFound", missing
    assert len(missing["message"]) < 1000 and len(missing["templateId"]) <= 200  # not echoed whole
    key = deploy_result(server.post(DEPLOY, t="two_stage", key="k" * 100_000))
    assert key["__typename"] == "InvalidConfig" and key["problems"][0]["field"] == "idempotencyKey", key
    assert len(key["message"]) < 1000


def test_a_1mb_idempotency_key_is_refused_before_parsing(server: Server) -> None:
    before = mission_count(server)
    response = clean(server.post(DEPLOY, t="two_stage", key="k" * 1_000_000))
    assert response.status_code == 413, response.text[:300]
    assert f"larger than {MAX_REQUEST_BYTES} bytes" in response.json()["errors"][0]["message"]
    assert mission_count(server) == before


def test_null_bytes(server: Server) -> None:
    # In the document: a syntax error, not a crash.
    body = graphql_body(server.post("{ templates { id } }\u0000"))
    assert body["data"] is None and "U+0000" in body["errors"][0]["message"], body
    # Inside string values of the document and of variables: plain data.
    assert unmasked(graphql_body(server.post('{ template(id: "two\\u0000stage") { id } }')))["data"] == {
        "template": None
    }
    result = deploy_result(server.post(DEPLOY, t="two_stage\u0000", key="\u0000"))
    assert result["__typename"] == "TemplateNotFound", result
    # A raw NUL byte in the JSON text is not JSON.
    assert clean(server.post_raw(b'{"query": "{ __typename }\x00"}')).status_code == 400


@pytest.mark.parametrize("depth", [10, 100, 300, 1000, 5000])
def test_deep_inputs_are_accepted_or_refused_clearly(server: Server, depth: int) -> None:
    """Accepted within the depth limit, else InvalidConfig on `inputs`; past what the JSON decoder takes, a 400."""
    nested = "[" * depth + "1" + "]" * depth
    variables = f'{{"t": "two_stage", "config": {{"inputs": {{"x": {nested}}}}}}}'
    response = server.post_raw(f'{{"query": {json.dumps(DEPLOY)}, "variables": {variables}}}')
    clean(response)
    if response.status_code == 400:
        assert depth >= 900 and "Unable to parse request body" in response.text, response.text
        return
    result = deploy_result(response)
    if depth <= 10:
        assert result["__typename"] == "MissionDeployed", result
    else:
        assert result["__typename"] == "InvalidConfig", result
        assert [p["field"] for p in result["problems"]] == ["inputs"], result
        assert "nested deeper" in result["problems"][0]["message"], result


@pytest.mark.parametrize("depth", [300, 1000, 10_000])
def test_deep_inputs_in_the_document_are_a_syntax_error(server: Server, depth: int) -> None:
    for nested in ("[" * depth + "1" + "]" * depth, "{a: " * depth + "1" + "}" * depth):
        query = f'mutation {{ deployMission(templateId: "two_stage", config: {{inputs: {{x: {nested}}}}}) {{ __typename }} }}'  # noqa: E501
        body = graphql_body(server.post(query))
        assert body["data"] is None and "nested too deeply" in body["errors"][0]["message"], body


def test_wide_inputs(server: Server) -> None:
    wide = {f"k{i}": i for i in range(10_000)}
    result = deploy_result(server.post(DEPLOY, t="two_stage", config={"inputs": wide}))
    assert result["__typename"] == "InvalidConfig", result
    assert [p["field"] for p in result["problems"]] == ["inputs"] and "limit" in result["problems"][0]["message"]
    fits = {f"k{i}": 0 for i in range(3_000)}
    assert deploy_result(server.post(DEPLOY, t="two_stage", config={"inputs": fits}))["__typename"] == "MissionDeployed"


@pytest.mark.parametrize("depth", [13, 100, 1000, 10_000])
def test_deeply_nested_queries(server: Server, depth: int) -> None:
    query = "{" + "templates {" * depth + "id" + "}" * depth + "}"
    body = graphql_body(server.post(query))
    assert body["data"] is None, body
    message = body["errors"][0]["message"]
    assert "exceeds maximum operation depth" in message or "nested too deeply" in message, body
    # Fragments spreading into each other as deep as the token limit allows: refused, not a RecursionError.
    fragments = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(min(depth, 300)))
    query = f"{{ ...F0 }} {fragments} fragment F{min(depth, 300)} on Query {{ __typename }}"
    unmasked(graphql_body(server.post(query)))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ " + " ".join(f"a{i}: __typename" for i in range(1000)) + " }", "more than 2000 tokens"),
        ("{ " + " ".join(f'a{i}: template(id: "two_stage") {{ id }}' for i in range(31)) + " }", "aliases found"),
        ("{ " + " ".join(["templates { id squad { role } }"] * 1000) + " }", "more than 2000 tokens"),
        ("query(" + " ".join(f"$v{i}: Int" for i in range(1000)) + ") { __typename }", "more than 2000 tokens"),
        ('{ templates(sector: "' + "x" * 200_000 + '") { id } }', None),  # a long string is one token
    ],
)
def test_very_wide_queries(server: Server, query: str, expected: str | None) -> None:
    body = unmasked(graphql_body(server.post(query)))
    if expected is None:
        assert body == {"data": {"templates": []}}, str(body)[:300]
    else:
        assert body["data"] is None and expected in body["errors"][0]["message"], str(body)[:300]


def test_a_wide_query_of_repeated_fields_is_refused_before_validation(server: Server) -> None:
    """Validation compares sibling fields pairwise: a wide query would hold the server for seconds.
    The field count refuses it first (its message says so), and a query sent alongside is answered."""
    heavy = f"# {uuid.uuid4()}\n{{ " + " ".join(["templates { id }"] * 400) + " }"  # new text: no cache hit

    def ask(query: str) -> dict[str, Any]:
        return graphql_body(httpx.post(server.url, json={"query": query}, timeout=30))

    with ThreadPoolExecutor(2) as pool:
        wide, light = pool.submit(ask, heavy), pool.submit(ask, "{ __typename }")
        wide_body, light_body = wide.result(), light.result()
    assert wide_body == {"data": None, "errors": [{"message": "the query selects 800 fields; the limit is 200"}]}, str(
        wide_body
    )[:300]
    assert light_body == {"data": {"__typename": "Query"}}, light_body


def test_many_repeated_fields_get_an_answer(server: Server) -> None:
    """800 `__typename` (under the token limit) would overflow graphql-core's overlap rule: the field limit
    refuses them first, with a message that says why."""
    body = graphql_body(server.post("{ " + " ".join(["__typename"] * 800) + " }"))
    assert body["errors"][0]["message"] == "the query selects 800 fields; the limit is 200", body


def test_duplicated_operation_names(server: Server) -> None:
    before = mission_count(server)
    query = 'query A { __typename } mutation A { deployMission(templateId: "two_stage") { __typename } }'
    for operation_name, says in (("A", "only one operation named 'A'"), (None, "say which to run")):
        body = graphql_body(server.http.post(server.url, json={"query": query, "operationName": operation_name}))
        assert body["data"] is None and says in body["errors"][0]["message"], body
    two = "query A { __typename } query B { templates { id } }"
    for name in ("Z", 5, {"x": 1}, ""):
        response = clean(server.http.post(server.url, json={"query": two, "operationName": name}))
        assert response.status_code == 400, response.text
    assert mission_count(server) == before


def test_several_operations_without_a_name_are_refused(server: Server) -> None:
    before = mission_count(server)
    two = 'mutation M { deployMission(templateId: "two_stage") { __typename } } query Q { __typename }'
    body = graphql_body(server.http.post(server.url, json={"query": two}))
    assert mission_count(server) == before
    assert body["data"] is None and "operationName" in body["errors"][0]["message"], body


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'[{"query": "{ __typename }"}]',
        b'[{"query": "{ __typename }"}, {"query": "mutation { cancelMission(id: \\"x\\") { __typename } }"}]',
        json.dumps([{"query": "{ __typename }"}] * 1000).encode(),
    ],
)
def test_batched_requests_are_refused(server: Server, body: bytes) -> None:
    response = clean(server.post_raw(body))
    assert response.status_code == 400 and "Batching is not enabled" in response.text, response.text


def test_get_never_mutates(server: Server) -> None:
    before = mission_count(server)
    deploy = 'mutation { deployMission(templateId: "two_stage") { __typename } }'
    for params in (
        {"query": deploy},
        {"query": f"query Q {{ __typename }} {deploy.replace('mutation', 'mutation M', 1)}", "operationName": "M"},
        {"query": DEPLOY, "variables": json.dumps({"t": "two_stage"})},
        {"query": 'mutation { cancelMission(id: "x") { __typename } }'},
    ):
        response = clean(server.http.get(server.url, params=params))
        assert response.status_code in (400, 405), response.text
        assert "mutations are not allowed" in response.text
    # Queries over GET are fine.
    assert graphql_body(server.http.get(server.url, params={"query": "{ __typename }"}))["data"] == {
        "__typename": "Query"
    }
    assert mission_count(server) == before


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"query": "{ __typename }"}', "text/plain"),
        (b'{"query": "{ __typename }"}', ""),
        (b"{ __typename }", "application/graphql"),
        (b"query=%7B__typename%7D", "application/x-www-form-urlencoded"),
        (b'--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{"query": "{ __typename }"}\r\n--x--\r\n',
         "multipart/form-data; boundary=x"),
        (b"--x\r\n", "multipart/form-data"),
        (b"\x00\x01\x02", "application/octet-stream"),
        (b"", "application/json"),
        (b"   ", "application/json"),
        (b"{", "application/json"),
        (b'{"query": "{ __typename }"}garbage', "application/json"),
        (b'{"query": "mutation { cancelMission(id: \\"x\\") { __typename } }"}', "text/plain"),  # no CSRF by form
    ],
)  # fmt: skip
def test_wrong_content_types_and_empty_bodies(server: Server, body: bytes, content_type: str) -> None:
    response = clean(server.post_raw(body, content_type))
    assert response.status_code in (400, 415), (response.status_code, response.text)


@pytest.mark.parametrize("body", [b"\x80abc", b"\xc3\x28", b'{"query": "{ __typename }", "x": "\xff"}'])
def test_a_body_that_is_not_utf8_is_a_400(server: Server, body: bytes) -> None:
    """json.loads raises UnicodeDecodeError (not a JSONDecodeError) for these: a 500 until MissionGraphQL.parse_json."""
    response = clean(server.post_raw(body))
    assert response.status_code == 400, response.text


def raw_http(server: Server, request: bytes) -> bytes:
    """One request on a fresh socket, for framing httpx would not send; the whole answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_other_methods_and_framing(server: Server) -> None:
    for method in ("PUT", "DELETE", "PATCH"):
        response = clean(server.http.request(method, server.url, json={"query": "{ __typename }"}))
        assert response.status_code == 405
    # A declared length that is not a number, negative or absurd, and broken chunking: refused, not a 5xx.
    head = b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
    for framing in (
        b"Content-Length: abc\r\n\r\n{}",
        b"Content-Length: -5\r\n\r\n{}",
        b"Content-Length: 99999999999999999999\r\n\r\n{}",
        b"Transfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n",
    ):
        answer = raw_http(server, head + framing)
        status = int(answer.split(b" ", 2)[1])
        assert status in (400, 413), (framing, answer[:300])
        assert not any(leak.encode() in answer for leak in LEAKS), answer[:2000]


# --- websocket abuse, both protocols ---

ALLOWED_CLOSE_CODES = {1000, 1002, 1003, 1007, 1008, 1009, 4400, 4401, 4403, 4406, 4408, 4409, 4429}


@dataclass
class WsOutcome:
    messages: list[dict[str, Any]]
    close_code: int | None  # None while open; 1006 for a connection dropped without a close frame
    close_reason: str = ""


@contextlib.contextmanager
def ws_open(server: Server, protocol: str, init: bool = True) -> Iterator[ClientConnection]:
    with connect(server.ws_url, subprotocols=[protocol], max_size=None, open_timeout=10) as ws:  # type: ignore[list-item]
        if init:
            ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            ack = json.loads(ws.recv(timeout=10))
            assert ack["type"] == "connection_ack", ack
        yield ws


def ws_drain(
    ws: ClientConnection, quiet: float = 0.5, until: Callable[[list[dict[str, Any]]], bool] | None = None
) -> WsOutcome:
    """Messages until the server closes, ``until`` holds, or it stays quiet for ``quiet`` seconds."""
    messages: list[dict[str, Any]] = []
    while until is None or not until(messages):
        try:
            raw = ws.recv(timeout=quiet)
        except TimeoutError:
            break
        except ConnectionClosed as closed:
            frame = closed.rcvd
            return WsOutcome(messages, frame.code if frame else 1006, frame.reason if frame else "")
        message = json.loads(raw)
        if message.get("type") != "ka":
            messages.append(message)
    return WsOutcome(messages, None)


def ws_still_works(ws: ClientConnection, protocol: str) -> None:
    """The connection still serves a subscription: an unknown mission's events end with its error."""
    op_id = uuid.uuid4().hex
    kind = "subscribe" if protocol == TRANSPORT_WS else "start"
    ws.send(json.dumps({"id": op_id, "type": kind, "payload": {"query": NO_MISSION}}))
    outcome = ws_drain(ws, quiet=5, until=lambda ms: any(m.get("id") == op_id and m["type"] == "complete" for m in ms))
    mine = [m for m in outcome.messages if m.get("id") == op_id]
    assert mine and "no mission with id" in json.dumps(mine[0]["payload"]), outcome
    assert mine[-1]["type"] == "complete", outcome


def sub(protocol: str) -> str:
    return "subscribe" if protocol == TRANSPORT_WS else "start"


def frame(**fields: Any) -> str:
    return json.dumps(fields)


def _ws_cases() -> list[Any]:
    cases = []
    for p in (TRANSPORT_WS, LEGACY_WS):
        s = sub(p)
        ok = {"query": NO_MISSION}
        cases += [
            pytest.param(p, ["{not json"], id=f"{p}-invalid-json"),
            pytest.param(p, [b"\x00\x01\xff"], id=f"{p}-binary-frame"),
            pytest.param(p, [frame(type="bogus", id="1")], id=f"{p}-unknown-type"),
            pytest.param(p, [frame(type=5)], id=f"{p}-type-not-a-string"),
            pytest.param(p, [frame(type="connection_init")], id=f"{p}-init-twice"),
            pytest.param(p, [frame(type=s, id="1", payload=ok)] * 2, id=f"{p}-duplicate-id"),
            pytest.param(
                p, [frame(type="complete" if p == TRANSPORT_WS else "stop", id="nope")], id=f"{p}-stop-unknown"
            ),
            pytest.param(p, [frame(type=s, id="1", payload={"query": "subscription { nope }"})], id=f"{p}-invalid-doc"),
            pytest.param(p, [frame(type=s, id="1", payload={**ok, "variables": [1]})], id=f"{p}-variables-a-list"),
            pytest.param(p, [frame(type=s, id="1" * 10_000, payload=ok)], id=f"{p}-10kb-id"),
            pytest.param(p, ["[1, 2]"], id=f"{p}-array-frame"),
            pytest.param(p, ['"hello"'], id=f"{p}-string-frame"),
            pytest.param(
                p,
                [frame(type=s, id="1", payload="x")],
                id=f"{p}-payload-not-object",
            ),
            pytest.param(p, [frame(type=s, id={"a": 1}, payload=ok)], id=f"{p}-id-not-string"),
            pytest.param(
                p,
                [
                    f'{{"type": "{s}", "id": "1", "payload": {{"query": "{{ __typename }}", "variables": '
                    f'{{"x": {"[" * 5000}{"]" * 5000}}}}}}}'
                ],
                id=f"{p}-deeply-nested-frame",
            ),
        ]
        if p == TRANSPORT_WS:
            cases += [
                pytest.param(p, [frame(id="1")], id=f"{p}-no-type"),
                pytest.param(p, [frame(type=s, id="1")], id=f"{p}-no-payload"),
                pytest.param(p, [frame(type=s, payload=ok)], id=f"{p}-no-id"),
            ]
        else:
            cases += [
                pytest.param(p, [frame(id="1")], id=f"{p}-no-type"),
                pytest.param(p, [frame(type=s, id="1")], id=f"{p}-no-payload"),
                pytest.param(p, [frame(type=s, payload=ok)], id=f"{p}-no-id"),
            ]
    return cases


@pytest.mark.parametrize(("protocol", "frames"), _ws_cases())
def test_websocket_protocol_abuse(server: Server, protocol: str, frames: list[str | bytes]) -> None:
    """The server answers a bad frame with an error or a protocol close, never by dropping the connection;
    if it keeps the connection open, the connection still works."""
    with ws_open(server, protocol) as ws:
        for f in frames:
            ws.send(f)
        outcome = ws_drain(ws)
        for message in outcome.messages:
            for leak in LEAKS:
                assert leak not in json.dumps(message), message
            assert "Unexpected error" not in json.dumps(message), message
        if outcome.close_code is None:
            ws_still_works(ws, protocol)
        else:
            assert outcome.close_code in ALLOWED_CLOSE_CODES, outcome


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
def test_websocket_subscribe_before_init_is_refused(server: Server, protocol: str) -> None:
    with ws_open(server, protocol, init=False) as ws:
        ws.send(frame(type=sub(protocol), id="1", payload={"query": UPDATES}))
        outcome = ws_drain(ws, quiet=5)
    assert outcome.close_code == 4401 and not outcome.messages, outcome


def test_websocket_unknown_subprotocol_is_refused(server: Server) -> None:
    for protocols in (["bogus"], None):
        with (
            pytest.raises(ConnectionClosed) as refused,
            connect(server.ws_url, subprotocols=protocols, open_timeout=10) as ws,  # type: ignore[arg-type]
        ):
            ws.recv(timeout=5)
        assert refused.value.rcvd is not None and refused.value.rcvd.code == 4406


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
def test_websocket_huge_payloads(server: Server, protocol: str) -> None:
    # Over the frame limit (uvicorn's ws_max_size = max_request_bytes): closed with 1009, nothing parsed
    # (a frame far over it may be cut off while the client is still sending it).
    for size in (MAX_REQUEST_BYTES + 1024, 4 * 1024 * 1024):
        with ws_open(server, protocol) as ws:
            payload = {"query": UPDATES, "variables": {"pad": "x" * size}}
            try:
                ws.send(frame(type=sub(protocol), id="1", payload=payload))
                close_code = ws_drain(ws, quiet=5).close_code
            except (websockets.exceptions.ConnectionClosed, OSError) as exc:
                close_code = getattr(getattr(exc, "rcvd", None), "code", 1009)
        assert close_code == 1009, close_code
    # Just under it: a subscription like any other (unused variables are ignored); the connection lives on.
    with ws_open(server, protocol) as ws:
        payload = {"query": UPDATES, "variables": {"pad": "x" * (MAX_REQUEST_BYTES - 4096)}}
        ws.send(frame(type=sub(protocol), id="1", payload=payload))
        assert ws_drain(ws).close_code is None
        ws_still_works(ws, protocol)


UNPARSABLE = {
    "syntax-error": "subscription { missionUpdates { id }",
    "over-the-token-limit": "subscription { missionUpdates { " + "id " * 20_000 + "} }",
    "nested-too-deeply": "subscription { missionUpdates { " + "a { " * 1000 + "} " * 1000 + "} }",
    "nul-byte": "subscription { missionUpdates { id } }\u0000",
}


@pytest.mark.parametrize("query", list(UNPARSABLE.values()), ids=list(UNPARSABLE))
@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
def test_websocket_unparsable_documents_get_an_error(server: Server, protocol: str, query: str) -> None:
    """An `error` message naming the syntax error (or, graphql-transport-ws, a 4400 close saying it)."""
    with ws_open(server, protocol) as ws:
        ws.send(frame(type=sub(protocol), id="bad", payload={"query": query}))
        outcome = ws_drain(ws, quiet=1.5, until=lambda ms: any(m.get("id") == "bad" for m in ms))
        if outcome.close_code is not None:
            assert protocol == TRANSPORT_WS and outcome.close_code == 4400, outcome
            assert "Syntax Error" in outcome.close_reason, outcome
            return
        replies = [m for m in outcome.messages if m.get("id") == "bad"]
        assert replies and replies[0]["type"] == "error", outcome
        assert "Syntax Error" in json.dumps(replies[0]["payload"]), replies
        ws_still_works(ws, protocol)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
def test_websocket_1000_subscribes_on_one_connection(server: Server, protocol: str) -> None:
    with ws_open(server, protocol) as ws:
        for i in range(1000):
            ws.send(frame(type=sub(protocol), id=str(i), payload={"query": UPDATES}))
        refused = 1000 - MAX_SUBSCRIPTIONS
        outcome = ws_drain(ws, quiet=10, until=lambda ms: len(ms) >= refused)
        assert outcome.close_code is None, outcome
        assert len(outcome.messages) == refused, outcome.messages[:5]
        assert {m["type"] for m in outcome.messages} == {"error"}
        assert all("Subscription limit reached" in json.dumps(m["payload"]) for m in outcome.messages)
        assert {int(m["id"]) for m in outcome.messages} == set(range(MAX_SUBSCRIPTIONS, 1000))
        # Stopping one frees a slot, once it is live (a stop in the instant Redis confirms the subscription is
        # lost, see test_a_subscription_cancelled_as_redis_confirms_it_still_ends): a deploy's update shows it is.
        assert deploy_result(server.post(DEPLOY, t="two_stage"))["__typename"] == "MissionDeployed"
        data = "next" if protocol == TRANSPORT_WS else "data"
        live = ws_drain(ws, quiet=10, until=lambda ms: any(m.get("id") == "0" and m["type"] == data for m in ms))
        assert any(m.get("id") == "0" and m["type"] == data for m in live.messages), live
        ws.send(frame(type="complete" if protocol == TRANSPORT_WS else "stop", id="0"))
        ws_still_works(ws, protocol)


@pytest.mark.parametrize("query", ["{ templates { id } }", 'mutation { cancelMission(id: "x") { __typename } }'])
def test_legacy_ws_refuses_queries_and_mutations_clearly(server: Server, query: str) -> None:
    """graphql-ws runs subscriptions only: a refusal the client can read (it was a masked 'Unexpected error')."""
    with ws_open(server, LEGACY_WS) as ws:
        ws.send(frame(type="start", id="1", payload={"query": query}))
        outcome = ws_drain(ws, quiet=5, until=lambda ms: any(m.get("id") == "1" for m in ms))
    reply = next(m for m in outcome.messages if m.get("id") == "1")
    assert "Unexpected error" not in json.dumps(reply), reply
    assert "not allowed" in json.dumps(reply), reply


async def test_a_subscription_cancelled_as_redis_confirms_it_still_ends(service: MissionService) -> None:
    hub = PubSubHub(service.redis)  # not started: the test plays Redis's SUBSCRIBE confirmation itself
    channel = "fuzz:confirm-race"

    async def listen() -> None:
        async with hub.subscribe(channel) as sub:
            await sub.get()

    task = asyncio.create_task(listen())
    await eventually(lambda: hub.channel_count == 1)  # the listener waits for the confirmation
    hub._dispatch({"type": "subscribe", "channel": channel, "data": 1})  # Redis confirms...
    await asyncio.sleep(0)
    task.cancel()  # ...and the client stops the subscription in the same instant
    done, _ = await asyncio.wait({task}, timeout=2)
    if not done:  # let the leaked listener go, for the test's own sake
        hub._dispatch({"type": "message", "channel": channel, "data": "bye"})
        await asyncio.wait({task}, timeout=2)
    assert done, "the cancelled subscription is still running"
    assert hub.subscriber_count == 0


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
