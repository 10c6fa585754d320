"""The HTTP layer of /graphql: malformed and non-UTF-8 bodies, content types, methods (no mutation over
GET), batching, operation selection, framing, and the request body limit. Never a 5xx, never a stack trace."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from config.settings import ApiKeyGrant, Settings
from mission.service import MissionService
from tests.conftest import RunningApi, missions_stored, no_mission_stored, serve_api
from tests.gql import (
    DEPLOY,
    LEAKS,
    MAX_REQUEST_BYTES,
    OPERATOR,
    clean,
    data,
    graphql_body,
    mission_count,
    no_traceback,
    post_raw,
)
from tests.processes import Server

pytestmark = pytest.mark.timeout(60)


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


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"query": "{ __typename }"',
        b"{'query': '{ __typename }'}",
        b"",
        b'{"query": }',
        b"\x00",
        b"nan",
        b"\xff\xfe{",  # not UTF-8 (a UTF-16 byte-order mark)
        b'{"query": "\xff"}',  # an invalid UTF-8 byte inside a string
        b'{"query": "{ __typename }", "x": "\xc3"}',  # a truncated UTF-8 sequence
    ],
)
async def test_malformed_json_is_a_4xx(http: httpx.AsyncClient, api: RunningApi, body: bytes) -> None:
    response = await http.post(api.url, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.status_code
    no_traceback(response.text)


@pytest.mark.parametrize("body", [b"\x80abc", b"\xc3\x28", b'{"query": "{ __typename }", "x": "\xff"}'])
def test_a_body_that_is_not_utf8_is_a_400(server: Server, body: bytes) -> None:
    """json.loads raises UnicodeDecodeError (not a JSONDecodeError) for these: a 500 until MissionGraphQL.parse_json."""
    response = clean(server.post_raw(body))
    assert response.status_code == 400, response.text


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


async def test_a_subscription_over_plain_http_is_refused_clearly(http: httpx.AsyncClient, api: RunningApi) -> None:
    for query in ("subscription { missionUpdates { id } }", "subscription { nope }"):
        response = await http.post(api.url, json={"query": query})
        clean(response)
        assert response.status_code == 400
        assert response.text == "subscriptions are served over websockets at /graphql"


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


async def test_a_body_over_max_request_bytes_is_413(
    http: httpx.AsyncClient, settings: Settings, service: MissionService
) -> None:
    limit = 2048
    async with serve_api(settings.model_copy(update={"max_request_bytes": limit})) as api:
        # A declared Content-Length over the limit: refused before the body is read.
        inputs = {"pad": "x" * limit}
        declared = await http.post(
            api.url, json={"query": DEPLOY, "variables": {"t": "two_stage", "config": {"inputs": inputs}}}
        )
        assert declared.status_code == 413
        assert declared.json() == {"errors": [{"message": f"request body larger than {limit} bytes"}]}

        # No Content-Length (chunked): counted as it streams.
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"query": "{ __typename }", "variables": {"pad": "'
            for _ in range(limit // 256 + 2):
                yield b"x" * 256
            yield b'"}}'

        streamed = await http.post(api.url, content=chunks(), headers={"Content-Type": "application/json"})
        assert "content-length" not in streamed.request.headers
        assert streamed.request.headers["transfer-encoding"] == "chunked"
        assert streamed.status_code == 413
        assert streamed.json() == {"errors": [{"message": f"request body larger than {limit} bytes"}]}

        # Just under the limit passes, and nothing refused was stored.
        fits = {"query": "query($pad: ID!) { template(id: $pad) { id } }", "variables": {"pad": "x" * (limit - 100)}}
        assert len(json.dumps(fits)) <= limit
        ok = await http.post(api.url, json=fits)
        assert ok.status_code == 200 and ok.json() == {"data": {"template": None}}
        assert await missions_stored(service) == 0


async def test_the_body_limit_applies_before_authentication(http: httpx.AsyncClient, settings: Settings) -> None:
    keyed = settings.model_copy(
        update={"max_request_bytes": 1024, "api_keys": {OPERATOR: ApiKeyGrant(tenant="t", role="operator")}}
    )
    async with serve_api(keyed) as api:
        big = await http.post(api.url, json={"query": "{ __typename }", "variables": {"pad": "x" * 2000}})
        assert big.status_code == 413
        small = await http.post(api.url, json={"query": "{ __typename }"})
        assert small.status_code == 401


def test_a_1mb_idempotency_key_is_refused_before_parsing(server: Server) -> None:
    before = mission_count(server)
    response = clean(server.post(DEPLOY, t="two_stage", key="k" * 1_000_000))
    assert response.status_code == 413, response.text[:300]
    assert f"larger than {MAX_REQUEST_BYTES} bytes" in response.json()["errors"][0]["message"]
    assert mission_count(server) == before
