"""Nasty input over real HTTP: never a 5xx, never a stack trace; clear messages, limits enforced,
and nothing stored by a refused deploy."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from config.settings import Settings
from mission.service import MissionService
from tests.conftest import REPO, RunningApi, serve_api
from tests.gql import DEPLOY, data, gql

pytestmark = pytest.mark.timeout(60)


def clean(response: httpx.Response) -> None:
    """No server error, and nothing of the server's insides in the body."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    for leak in ("Traceback", 'File "', "site-packages", str(REPO)):
        assert leak not in response.text, response.text[:2000]


async def post_raw(
    http: httpx.AsyncClient, api: RunningApi, body: bytes, content_type: str = "application/json"
) -> httpx.Response:
    response = await http.post(api.url, content=body, headers={"Content-Type": content_type})
    clean(response)
    return response


async def post_json_text(http: httpx.AsyncClient, api: RunningApi, query: str, variables: str) -> dict[str, Any]:
    """POST with variables written as raw JSON text (for NaN, 1e400 and friends Python would not send)."""
    body = f'{{"query": {json.dumps(query)}, "variables": {variables}}}'
    response = await post_raw(http, api, body.encode())
    assert response.status_code == 200, response.text[:500]
    result: dict[str, Any] = response.json()
    return result


async def post(http: httpx.AsyncClient, api: RunningApi, query: str, **variables: Any) -> dict[str, Any]:
    response = await http.post(api.url, json={"query": query, "variables": variables})
    clean(response)
    assert response.status_code == 200, response.text[:500]
    result: dict[str, Any] = response.json()
    return result


async def no_mission_stored(service: MissionService, settings: Settings) -> None:
    prefix = service.keys.prefix
    assert [k async for k in service.redis.scan_iter(match=f"{prefix}:m:*")] == []
    assert [k async for k in service.redis.scan_iter(match=f"{prefix}:idx:*")] == []
    assert [k async for k in service.redis.scan_iter(match=f"{prefix}:idem:*")] == []
    assert await service.redis.zcard(settings.queue) == 0


def graphql_error(body: dict[str, Any]) -> str:
    """The errors of a refused operation, joined; GraphQL's own or ours, never masked."""
    assert body.get("data") is None, body
    message = "\n".join(str(error["message"]) for error in body["errors"])
    assert message and "Unexpected error" not in message
    return message


# --- the HTTP layer ---


MALFORMED_BODIES = [
    b"",
    b"{not json",
    b'{"query": "{ templates { id } }"',
    b"\xff\xfe",
    b'{"query": 5}',
    b'{"variables": {}}',
    b'{"query": null}',
    b'{"query": "{ __typename }", "variables": "x"}',
    b'{"query": "{ __typename }", "variables": [1]}',
    b'{"query": "{ __typename }", "extensions": 7}',
    b"[]",
    b'[{"query": "{ __typename }"}]',
]


async def test_malformed_request_bodies_are_a_400(
    http: httpx.AsyncClient, api: RunningApi, subtests: pytest.Subtests
) -> None:
    for body in MALFORMED_BODIES:
        with subtests.test(body=body[:40]):
            response = await post_raw(http, api, body)
            assert response.status_code == 400, response.text


@pytest.mark.parametrize("body", [b'"a string"', b"5", b"null", b"true"])
async def test_json_body_that_is_not_an_object_is_a_400(http: httpx.AsyncClient, api: RunningApi, body: bytes) -> None:
    response = await http.post(api.url, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": "{ __typename }", "variables": {"x": 1' + b"0" * 5000 + b"}}",  # ValueError: int digits
        b'{"query": "{ __typename }", "variables": {"x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}",  # RecursionError
        b"\xff\xfe\x00",  # a UTF-16 byte order mark, then a truncated unit: UnicodeDecodeError
    ],
    ids=["4301-digit-number", "nested-50000", "utf16-truncated"],
)
async def test_json_the_decoder_cannot_take_is_a_400(http: httpx.AsyncClient, api: RunningApi, body: bytes) -> None:
    response = await http.post(api.url, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, (response.status_code, response.text[:200])


async def test_content_types_and_methods(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings
) -> None:
    query = b'{"query": "mutation { deployMission(templateId: \\"two_stage\\") { __typename } }"}'
    assert (await post_raw(http, api, query, "text/plain")).status_code == 400
    assert (await post_raw(http, api, b"query=1", "application/x-www-form-urlencoded")).status_code == 400
    assert (await post_raw(http, api, b"--x\r\n", "multipart/form-data; boundary=x")).status_code == 400
    put = await http.put(api.url, content=query, headers={"Content-Type": "application/json"})
    clean(put)
    assert put.status_code == 405
    # Queries may use GET; mutations may not (no state change from a link or an <img>).
    got = await http.get(api.url, params={"query": "{ templates { id } }"})
    assert got.status_code == 200 and len(got.json()["data"]["templates"]) > 0
    mutation = await http.get(
        api.url, params={"query": 'mutation { deployMission(templateId: "two_stage") { __typename } }'}
    )
    clean(mutation)
    assert mutation.status_code in (400, 405)
    await no_mission_stored(service, settings)


async def test_a_body_over_the_limit_is_a_413(http: httpx.AsyncClient, api: RunningApi, settings: Settings) -> None:
    padding = "x" * (settings.max_request_bytes + 1)
    declared = await http.post(api.url, json={"query": "{ __typename }", "variables": {"pad": padding}})
    clean(declared)
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        for _ in range(settings.max_request_bytes // 8192 + 2):
            yield b"x" * 8192
        yield b'"}}'

    streamed = await http.post(api.url, content=chunks(), headers={"Content-Type": "application/json"})
    clean(streamed)
    assert streamed.status_code == 413
    # Just under the limit is fine.
    fits = "x" * (settings.max_request_bytes - 200)
    assert (await data(http, api.url, "query($pad: String) { templates(sector: $pad) { id } }", pad=fits)) == {
        "templates": []
    }


# --- GraphQL documents ---


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


async def test_introspection_can_be_switched_off(http: httpx.AsyncClient, api: RunningApi, settings: Settings) -> None:
    query = "{ __schema { queryType { name } } }"
    assert await data(http, api.url, query) == {"__schema": {"queryType": {"name": "Query"}}}
    async with serve_api(settings.model_copy(update={"introspection": False})) as closed:
        assert "introspection has been disabled" in graphql_error(await post(http, closed, query))
        assert await data(http, closed.url, "{ templates { id } }")  # the rest still answers


async def test_a_subscription_over_plain_http_is_refused_clearly(http: httpx.AsyncClient, api: RunningApi) -> None:
    for query in ("subscription { missionUpdates { id } }", "subscription { nope }"):
        response = await http.post(api.url, json={"query": query})
        clean(response)
        assert response.status_code == 400
        assert response.text == "subscriptions are served over websockets at /graphql"


# --- ids ---


async def test_huge_ids_in_the_document_itself(http: httpx.AsyncClient, api: RunningApi) -> None:
    big = "m" * 100_000
    assert await data(http, api.url, f'{{ mission(id: "{big}") {{ id }} template(id: "{big}") {{ id }} }}') == {
        "mission": None,
        "template": None,
    }
    cancel = await data(http, api.url, f'mutation {{ cancelMission(id: "{big}") {{ __typename }} }}')
    assert cancel == {"cancelMission": {"__typename": "MissionNotFound"}}


async def test_template_not_found_does_not_echo_a_huge_id(http: httpx.AsyncClient, api: RunningApi) -> None:
    result = (await data(http, api.url, DEPLOY, t="t" * 100_000))["deployMission"]
    assert result["__typename"] == "TemplateNotFound"
    assert len(result["templateId"]) <= 200
    assert len(result["message"]) < 1000


# --- deploy config: numbers, strings, JSON ---


NASTY_BUDGETS: list[Any] = [
    "1e400", "-1e400", "-0.01", "NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "1e-400", "0", "0.001", "12.345",
    "1e5", "99999999999999999999999999999999999", "abc", "", " ", "1,000", "$5", True, [], {},
]  # fmt: skip


async def test_nasty_budgets_are_refused_cleanly(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings, subtests: pytest.Subtests
) -> None:
    for budget in NASTY_BUDGETS:
        with subtests.test(budget=budget):
            body = await post(http, api, DEPLOY, t="two_stage", config={"budget": budget})
            if body.get("data") is None:  # refused by the GraphQL input layer (not a Decimal)
                assert "budget" in graphql_error(body)
            else:
                result = body["data"]["deployMission"]
                assert result["__typename"] == "InvalidConfig", result
                assert [p["field"] for p in result["problems"]] == ["budget"]
            await no_mission_stored(service, settings)


async def test_nasty_budget_numbers_in_raw_json_and_literals(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings, subtests: pytest.Subtests
) -> None:
    for number in ("1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1e-400"):
        with subtests.test(number=number):
            raw = await post_json_text(http, api, DEPLOY, f'{{"t": "two_stage", "config": {{"budget": {number}}}}}')
            bodies = [raw]
            if number[-1].isdigit():  # a GraphQL float literal
                literal = (
                    f'mutation {{ deployMission(templateId: "two_stage", config: {{budget: {number}}}) '
                    "{ __typename } }"
                )
                bodies.append(await post(http, api, literal))
            for body in bodies:
                if body.get("data") is None:
                    graphql_error(body)
                else:
                    assert body["data"]["deployMission"]["__typename"] == "InvalidConfig", body
            await no_mission_stored(service, settings)


async def test_ttl_must_be_a_32_bit_int(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings, subtests: pytest.Subtests
) -> None:
    for ttl in ("1099511627776", "2147483648", "-2147483649", "1e400", "1.5", "NaN", '"60"'):
        with subtests.test(ttl=ttl):
            body = await post_json_text(http, api, DEPLOY, f'{{"t": "two_stage", "config": {{"ttl": {ttl}}}}}')
            message = graphql_error(body)
            assert "Int cannot represent" in message and "ttl" in message
            if ttl.lstrip("-").isdigit():  # as a literal in the document too
                literal = (
                    f'mutation {{ deployMission(templateId: "two_stage", config: {{ttl: {ttl}}}) {{ __typename }} }}'
                )
                assert "32-bit" in graphql_error(await post(http, api, literal))
            await no_mission_stored(service, settings)


async def test_ttl_in_range_of_int_but_not_of_the_template(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings, subtests: pytest.Subtests
) -> None:
    for ttl in (2**31 - 1, -(2**31), -1, 0):
        with subtests.test(ttl=ttl):
            result = (await data(http, api.url, DEPLOY, t="two_stage", config={"ttl": ttl}))["deployMission"]
            assert result["__typename"] == "InvalidConfig"
            assert [p["field"] for p in result["problems"]] == ["ttl"]
            await no_mission_stored(service, settings)


async def test_nasty_risk_is_a_graphql_input_error(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings, subtests: pytest.Subtests
) -> None:
    risks = [
        '{"maxDrawdown": NaN}',
        '{"maxDrawdown": 1e400}',
        '{"maxDrawdown": -Infinity}',
        '{"level": 5}',
        '{"nope": 1}',
    ]
    for risk in risks:
        with subtests.test(risk=risk):
            body = await post_json_text(http, api, DEPLOY, f'{{"t": "two_stage", "config": {{"risk": {risk}}}}}')
            assert "risk" in graphql_error(body)
            await no_mission_stored(service, settings)


async def test_nasty_risk_level_is_invalid_config(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings, subtests: pytest.Subtests
) -> None:
    for level in ("", "x" * 10_000, "LOW", "medium ", "🚀", "\u0000"):
        with subtests.test(level=level[:20]):
            config = {"risk": {"level": level}}
            result = (await data(http, api.url, DEPLOY, t="two_stage", config=config))["deployMission"]
            assert result["__typename"] == "InvalidConfig"
            assert [p["field"] for p in result["problems"]] == ["risk.level"]
            assert len(result["message"]) < 1000  # a 10 KB level is not echoed back whole
            await no_mission_stored(service, settings)


async def test_inputs_that_are_not_plain_json_are_invalid_config(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings, subtests: pytest.Subtests
) -> None:
    for value in ("NaN", "Infinity", "-Infinity", "1e400"):
        with subtests.test(value=value):
            variables = f'{{"t": "two_stage", "config": {{"inputs": {{"x": {value}}}}}}}'
            result = (await post_json_text(http, api, DEPLOY, variables))["data"]["deployMission"]
            assert result["__typename"] == "InvalidConfig"
            assert [p["field"] for p in result["problems"]] == ["inputs"]
            await no_mission_stored(service, settings)


async def test_odd_but_valid_inputs_are_kept_exactly(http: httpx.AsyncClient, api: RunningApi) -> None:
    inputs = {
        "\u0000": "\u0000",
        "ünïcødé 🚀": "右から左 \u202e",
        "nested": [[[[[[[[[[{"deep": True}]]]]]]]]]],
        "big": 2**53 + 1,
        "neg": -0.0,
        "empty": {},
    }
    result = (await data(http, api.url, DEPLOY, t="two_stage", config={"inputs": inputs}))["deployMission"]
    assert result["__typename"] == "MissionDeployed"
    expected = {"greeting": "hello", **inputs}
    assert result["mission"]["config"]["inputs"] == expected
    query = "query($id: ID!) { mission(id: $id) { config { inputs } } }"
    stored = await data(http, api.url, query, id=result["mission"]["id"])
    assert stored["mission"]["config"]["inputs"] == expected


async def test_deeply_nested_inputs_are_invalid_config(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings
) -> None:
    nested = "[" * 500 + "1" + "]" * 500
    body = await post_json_text(http, api, DEPLOY, f'{{"t": "two_stage", "config": {{"inputs": {{"x": {nested}}}}}}}')
    await no_mission_stored(service, settings)
    assert body.get("data") is not None, body
    result = body["data"]["deployMission"]
    assert result["__typename"] == "InvalidConfig"
    assert [p["field"] for p in result["problems"]] == ["inputs"]


async def test_lone_surrogate_in_inputs_is_invalid_config(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings
) -> None:
    body = await post_json_text(http, api, DEPLOY, '{"t": "two_stage", "config": {"inputs": {"x": "\\ud800"}}}')
    await no_mission_stored(service, settings)
    assert body.get("data") is not None, body
    result = body["data"]["deployMission"]
    assert result["__typename"] == "InvalidConfig"
    assert [p["field"] for p in result["problems"]] == ["inputs"]


async def test_lone_surrogate_in_idempotency_key_is_invalid_config(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings
) -> None:
    body = await post_json_text(http, api, DEPLOY, '{"t": "two_stage", "key": "\\ud800"}')
    await no_mission_stored(service, settings)
    assert body.get("data") is not None, body
    result = body["data"]["deployMission"]
    assert result["__typename"] == "InvalidConfig"
    assert [p["field"] for p in result["problems"]] == ["idempotencyKey"]


# --- reads with nasty filters ---


async def test_nasty_ids_never_error(http: httpx.AsyncClient, api: RunningApi) -> None:
    query = """query($id: ID!, $s: String) {
      mission(id: $id) { id } template(id: $id) { id } departmentGraph(templateId: $id) { stages }
      templates(sector: $s) { id }
    }"""
    for raw_id in ('"\\ud800"', '"\\udfff\\ud800"', '"mssn_\\u0000"', '"' + "é" * 50_000 + '"'):
        body = await post_json_text(http, api, query, f'{{"id": {raw_id}, "s": {raw_id}}}')
        assert body == {"data": {"mission": None, "template": None, "departmentGraph": None, "templates": []}}


async def test_missions_with_an_unencodable_template_id_matches_nothing(
    http: httpx.AsyncClient, api: RunningApi
) -> None:
    query = "query($t: ID) { missions(templateId: $t) { totalCount edges { cursor } } }"
    body = await post_json_text(http, api, query, '{"t": "\\ud800"}')
    if body.get("errors"):  # refusing it is fine too, if the error names the right argument
        message = graphql_error(body)
        assert "templateId" in message and "after" not in message, message
    else:
        assert body == {"data": {"missions": {"totalCount": 0, "edges": []}}}, body


async def test_missions_with_odd_template_ids_match_nothing(http: httpx.AsyncClient, api: RunningApi) -> None:
    await data(http, api.url, DEPLOY, t="two_stage")
    query = "query($t: ID) { missions(templateId: $t) { totalCount edges { cursor } } }"
    for template_id in ("*", "two_stage:*", "t:two_stage", "TWO_STAGE", "x" * 100_000, "🚀", "\u0000"):
        body = await gql(http, api.url, query, t=template_id)
        assert body == {"data": {"missions": {"totalCount": 0, "edges": []}}}, (template_id[:20], body)


async def test_ids_that_are_not_text_are_answered_not_crashed_on(http: httpx.AsyncClient, api: RunningApi) -> None:
    """A lone surrogate (valid in a GraphQL string, not encodable as UTF-8) echoed back in a result."""
    deploy = "mutation($t: ID!) { deployMission(templateId: $t) { ... on TemplateNotFound { templateId message } } }"
    cancel = "mutation($id: ID!) { cancelMission(id: $id) { ... on MissionNotFound { missionId message } } }"
    for query, name, key in ((deploy, "t", "deployMission"), (cancel, "id", "cancelMission")):
        body = json.dumps({"query": query, "variables": {name: "x\ud800y"}})  # ASCII: "\\ud800"
        response = await http.post(api.url, content=body, headers={"content-type": "application/json"})
        clean(response)
        assert response.status_code == 200, response.text
        assert response.json()["data"][key]["message"].startswith("no ")


async def test_a_cursor_with_non_ascii_digits_is_a_clear_error(http: httpx.AsyncClient, api: RunningApi) -> None:
    import base64

    cursor = base64.urlsafe_b64encode("n:²".encode()).decode()
    message = graphql_error(await post(http, api, f'{{ missions(after: "{cursor}") {{ totalCount }} }}'))
    assert message == "after: not a cursor from this service"
