"""GraphQL over HTTP media types: `application/graphql-response+json` when the client asks for it (a 400 with
no `data` entry for a request that never reached execution), `application/json` as before otherwise, and a
406 when the client accepts neither. The negotiation itself is pure logic, tested directly; the rest over
real HTTP against the real server. tests/test_http_audit.py runs the reference audit suite on top."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import GraphQLError
from strawberry.types import ExecutionResult

from config.settings import ApiKeyGrant, Settings
from mission.service import MissionService
from server.media import GRAPHQL_RESPONSE, JSON, negotiate, request_error_status
from tests.conftest import RunningApi, serve_api

pytestmark = pytest.mark.timeout(60)

MISSION = "query($id: ID!) { mission(id: $id) { id config { inputs } } }"
TOO_MANY_ALIASES = "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"  # the limit is 30

# Requests that fail before execution: with graphql-response+json a 400 without `data`.
REQUEST_ERRORS: dict[str, dict[str, Any]] = {
    "parse": {"query": "{"},
    "validation": {"query": "{ noSuchField }"},
    "variable coercion": {"query": MISSION, "variables": {"id": None}},
    "unknown operation": {"query": "query A { __typename }", "operationName": "B"},
    "query limit": {"query": TOO_MANY_ALIASES},
}


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


# --- negotiation (pure) ---


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/json", JSON),
        ("application/graphql-response+json", GRAPHQL_RESPONSE),
        ("application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE),  # the spec's advice
        ("application/json, application/graphql-response+json", JSON),  # same quality: the first listed
        ("application/graphql-response+json, application/json", GRAPHQL_RESPONSE),
        ("application/json;q=0.5, application/graphql-response+json", GRAPHQL_RESPONSE),
        ("application/graphql-response+json;q=0.1, */*", JSON),  # `*/*` carries q=1 for application/json
        ("application/json;q=0, */*", GRAPHQL_RESPONSE),  # refused explicitly, the wildcard does not win it back
        ("APPLICATION/GRAPHQL-RESPONSE+JSON ; charset=utf-8", GRAPHQL_RESPONSE),
        ("application/json, multipart/mixed", JSON),  # GraphiQL's
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", JSON),  # a browser's
        ("text/html", None),
        ("multipart/mixed", None),
        ("application/json;q=0", None),
        ("application/json;q=oops", None),
    ],
)
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


def test_request_error_status() -> None:
    parse = GraphQLError("Syntax Error: Expected Name, found <EOF>.")
    field = GraphQLError("boom", path=["templates"])
    masked = GraphQLError("Unexpected error (id 1); it has been logged.", extensions={"errorId": "1"})
    assert request_error_status(ExecutionResult(data=None, errors=[parse])) == 400
    assert request_error_status(ExecutionResult(data=None, errors=[masked])) == 500
    assert request_error_status(ExecutionResult(data=None, errors=[field])) is None  # null spread up to data
    assert request_error_status(ExecutionResult(data={"mission": None}, errors=[field])) is None
    assert request_error_status(ExecutionResult(data={"__typename": "Query"}, errors=None)) is None


# --- over HTTP ---


async def test_graphql_response_json_when_asked(http: httpx.AsyncClient, api: RunningApi) -> None:
    response = await http.post(api.url, json={"query": "{ __typename }"}, headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == 200
    assert media_type(response) == GRAPHQL_RESPONSE
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("accept", [None, "*/*", JSON, "application/json, multipart/mixed"])
async def test_application_json_otherwise(http: httpx.AsyncClient, api: RunningApi, accept: str | None) -> None:
    request = http.build_request("POST", api.url, json={"query": "{ __typename }"})
    if accept is None:
        del request.headers["accept"]  # httpx sends `*/*` unless told otherwise
    else:
        request.headers["accept"] = accept
    response = await http.send(request)
    assert response.status_code == 200
    assert media_type(response) == JSON
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("case", list(REQUEST_ERRORS))
async def test_a_request_error_is_a_400_without_data(http: httpx.AsyncClient, api: RunningApi, case: str) -> None:
    response = await http.post(api.url, json=REQUEST_ERRORS[case], headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == 400, response.text
    assert media_type(response) == GRAPHQL_RESPONSE
    body = response.json()
    assert "data" not in body, body
    assert body["errors"] and all(e["message"] for e in body["errors"]), body


# (an unknown operation name was, and stays, a 400 with a plain-text reason for application/json)
@pytest.mark.parametrize("case", [case for case in REQUEST_ERRORS if case != "unknown operation"])
async def test_a_request_error_stays_a_200_with_null_data_for_json(
    http: httpx.AsyncClient, api: RunningApi, case: str
) -> None:
    response = await http.post(api.url, json=REQUEST_ERRORS[case], headers={"Accept": JSON})
    assert response.status_code == 200, response.text
    assert media_type(response) == JSON
    body = response.json()
    assert body["data"] is None and body["errors"], body


async def test_once_execution_began_it_is_a_200_with_data(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService
) -> None:
    record, _ = await service.deploy("two_stage")
    await service.redis.hset(service.keys.mission(record.id), "config", "{corrupted")  # type: ignore[misc]
    response = await http.post(
        api.url, json={"query": MISSION, "variables": {"id": record.id}}, headers={"Accept": GRAPHQL_RESPONSE}
    )
    assert response.status_code == 200, response.text
    assert media_type(response) == GRAPHQL_RESPONSE
    body = response.json()
    assert body["data"] == {"mission": None}
    [error] = body["errors"]
    assert error["path"] == ["mission"] and "errorId" in error["extensions"], error


async def test_refusals_before_graphql_answer_in_the_negotiated_type(http: httpx.AsyncClient, api: RunningApi) -> None:
    asks = {"Accept": GRAPHQL_RESPONSE, "Content-Type": "application/json"}
    bad_json = await http.post(api.url, content=b'{ "not a JSON', headers=asks)
    assert bad_json.status_code == 400
    assert media_type(bad_json) == GRAPHQL_RESPONSE
    assert bad_json.json() == {"errors": [{"message": "Unable to parse request body as JSON"}]}

    get_mutation = await http.get(api.url, params={"query": "mutation { __typename }"}, headers=asks)
    assert 400 <= get_mutation.status_code < 500
    assert media_type(get_mutation) == GRAPHQL_RESPONSE
    assert "data" not in get_mutation.json() and get_mutation.json()["errors"], get_mutation.text

    subscription = await http.post(api.url, json={"query": "subscription { missionUpdates { id } }"}, headers=asks)
    assert subscription.status_code == 400
    assert subscription.json() == {"errors": [{"message": "subscriptions are served over websockets at /graphql"}]}

    # application/json clients keep the plain-text reason they always had
    plain = await http.post(api.url, content=b'{ "not a JSON', headers={"Content-Type": "application/json"})
    assert plain.status_code == 400
    assert plain.text == "Unable to parse request body as JSON"


async def test_no_acceptable_media_type_is_a_406(http: httpx.AsyncClient, api: RunningApi) -> None:
    for accept in ("text/html", "multipart/mixed", "application/json;q=0"):
        post = await http.post(api.url, json={"query": "{ __typename }"}, headers={"Accept": accept})
        assert post.status_code == 406, (accept, post.text)
        assert media_type(post) == JSON
        [error] = post.json()["errors"]
        assert GRAPHQL_RESPONSE in error["message"] and error["extensions"]["code"] == "NOT_ACCEPTABLE"
    get = await http.get(api.url, params={"query": "{ __typename }"}, headers={"Accept": "text/html"})
    assert get.status_code == 406


async def test_401_answers_in_the_negotiated_type(http: httpx.AsyncClient, settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_keys": {"k" * 32: ApiKeyGrant(tenant="acme", role="viewer")}})
    async with serve_api(keyed) as api:
        for accept, expected in ((GRAPHQL_RESPONSE, GRAPHQL_RESPONSE), (JSON, JSON), ("text/html", JSON)):
            response = await http.post(api.url, json={"query": "{ __typename }"}, headers={"Accept": accept})
            assert response.status_code == 401
            assert media_type(response) == expected
            assert "data" not in response.json() and response.json()["errors"][0]["extensions"]["code"] == (
                "UNAUTHENTICATED"
            )
