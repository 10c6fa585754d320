"""What a document may ask for: invalid documents get a clear error; depth, token, alias and field-count
limits refuse over HTTP and over websockets, with a clear, unmasked message."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from config.settings import Settings
from tests.conftest import RunningApi, serve_api
from tests.gql import (
    LEGACY_WS,
    TRANSPORT_WS,
    WsClient,
    data,
    gql,
    graphql_body,
    graphql_error,
    no_traceback,
    post,
    unmasked,
)
from tests.processes import Server

pytestmark = pytest.mark.timeout(60)


INVALID_DOCUMENTS = [
    ("{ templates { ", "Syntax Error"),
    ("{ templates { id } } }", "Syntax Error"),
    ("not graphql at all", "Syntax Error"),
    ("\u0000\u0001", "Syntax Error"),
    ("{ nope }", "Cannot query field 'nope' on type 'Query'"),
    ("{ templates { id nope } }", "Cannot query field 'nope' on type 'MissionTemplate'"),
    ("{ template { id } }", "'ID!' is required"),
    ('{ missions(first: "x") { totalCount } }', "Int cannot represent"),
    ("{ missions(status: BOGUS) { totalCount } }", "'BOGUS' does not exist in 'MissionStatus'"),
    ("{ missions(nope: 1) { totalCount } }", "Unknown argument 'nope'"),
    ("query($x: Nope) { __typename }", "Unknown type 'Nope'"),
    ("{ templates }", "must have a selection of subfields"),
    ('mutation { deployMission(templateId: "two_stage") }', "must have a selection of subfields"),
    ("fragment F on Query { ...F } { ...F }", "Cannot spread fragment 'F' within itself"),
]


async def test_invalid_documents_get_a_clear_error(
    http: httpx.AsyncClient, api: RunningApi, subtests: pytest.Subtests
) -> None:
    for query, expected in INVALID_DOCUMENTS:
        with subtests.test(query=query):
            assert expected in graphql_error(await post(http, api, query))


async def test_query_depth_limit(http: httpx.AsyncClient, api: RunningApi, settings: Settings) -> None:
    # The deepest query the schema allows passes the default limit...
    deepest = "{ missions { edges { node { template { dependencyGraph { nodes { department } } } } } } }"
    assert await data(http, api.url, deepest) == {"missions": {"edges": []}}
    # ...and a tighter limit refuses anything deeper than it.
    async with serve_api(settings.model_copy(update={"max_query_depth": 3})) as shallow:
        assert await data(http, shallow.url, "{ missions { edges { node { id } } } }") == {"missions": {"edges": []}}
        message = graphql_error(await post(http, shallow, "{ missions { edges { node { budget { spent } } } } }"))
        assert message == "'anonymous' exceeds maximum operation depth of 3"
        named = 'query Deep { mission(id: "x") { template { dependencyGraph { nodes { department } } } } }'
        assert graphql_error(await post(http, shallow, named)) == "'Deep' exceeds maximum operation depth of 3"


async def test_alias_limit(http: httpx.AsyncClient, api: RunningApi, settings: Settings) -> None:
    limit = settings.max_query_aliases

    def aliased(n: int) -> str:
        return "{ " + " ".join(f'a{i}: template(id: "two_stage") {{ id }}' for i in range(n)) + " }"

    allowed = await data(http, api.url, aliased(limit))
    assert len(allowed) == limit and allowed["a0"] == {"id": "two_stage"}
    message = graphql_error(await post(http, api, aliased(limit + 1)))
    assert message == f"{limit + 1} aliases found. Allowed: {limit}"
    many = "{ " + " ".join(f"a{i}: __typename" for i in range(500)) + " }"  # refused before validation
    assert graphql_error(await post(http, api, many)) == "the query selects 500 fields; the limit is 200"


async def test_token_limit(http: httpx.AsyncClient, api: RunningApi, settings: Settings) -> None:
    query = "{ " + "__typename " * (settings.max_query_tokens + 1) + "}"
    message = graphql_error(await post(http, api, query))
    assert f"more than {settings.max_query_tokens} tokens" in message


TIGHT = {"max_query_depth": 3, "max_query_tokens": 40, "max_query_aliases": 2}


@pytest.fixture
async def tight(settings: Settings) -> AsyncIterator[RunningApi]:
    async with serve_api(settings.model_copy(update=TIGHT)) as api:
        yield api


def only_error(body: dict[str, Any]) -> str:
    """The one error of a refused document: clear, not masked, no traceback."""
    assert body.get("data") is None, body
    [error] = body["errors"]
    assert "errorId" not in (error.get("extensions") or {}), error
    assert not error["message"].startswith("Unexpected error"), error
    no_traceback(json.dumps(body))
    message: str = error["message"]
    return message


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("{ missions { edges { node { id } } } }", None),  # depth 3: allowed
        ("{ missions { edges { node { budget { spent } } } } }", "'anonymous' exceeds maximum operation depth of 3"),
        (
            "query Deep { missions { nodes { jobs { budget { spent } } } } }",
            "'Deep' exceeds maximum operation depth of 3",
        ),
        (
            "fragment F on Mission { jobs { budget { spent } } } { missions { nodes { ...F } } }",
            "'anonymous' exceeds maximum operation depth of 3",
        ),
        ('{ a: template(id: "two_stage") { id } b: template(id: "hang") { id } }', None),  # 2 aliases: allowed
        (
            '{ a: template(id: "x") { id } b: template(id: "y") { id } c: template(id: "z") { id } }',
            "3 aliases found. Allowed: 2",
        ),
        ("{ " + "__typename " * 38 + "}", None),  # 40 tokens with the braces: allowed
        ("{ " + "__typename " * 39 + "}", "Syntax Error: Document contains more than 40 tokens. Parsing aborted."),
        ("{ " + "__typename " * 20_000 + "}", "Syntax Error: Document contains more than 40 tokens. Parsing aborted."),
    ],
)
async def test_depth_token_and_alias_limits_refuse_with_a_clear_error(
    http: httpx.AsyncClient, tight: RunningApi, caplog: pytest.LogCaptureFixture, query: str, expected: str | None
) -> None:
    caplog.set_level(logging.ERROR, logger="mission.api")
    body = await gql(http, tight.url, query)
    if expected is None:
        assert "errors" not in body, body
    else:
        assert only_error(body) == expected
    assert not [r for r in caplog.records if r.name == "mission.api"]  # nothing "unexpected" was logged


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_limits_apply_to_subscriptions_too(tight: RunningApi, protocol: str) -> None:
    ws = await WsClient.connect(tight.ws_url, protocol)
    try:
        op = await ws.subscribe(
            "subscription { missionUpdates { template { dependencyGraph { nodes { department } } } } }"
        )
        message = await ws.receive_type()
    finally:
        await ws.close()
    assert message["id"] == op and message["type"] == "error", message
    errors = message["payload"] if isinstance(message["payload"], list) else [message["payload"]]
    assert [e["message"] for e in errors] == ["'anonymous' exceeds maximum operation depth of 3"]


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
