"""The introspection and GraphiQL switches: both on by default; off, the rest of the API still answers."""

from __future__ import annotations

import json

import httpx
import pytest

from config.settings import Settings
from tests.conftest import TEST_TEMPLATE_IDS, RunningApi, base_url, serve_api
from tests.gql import data, gql, graphql_error, no_traceback, post

pytestmark = pytest.mark.timeout(60)


async def test_introspection_on_by_default(http: httpx.AsyncClient, api: RunningApi) -> None:
    result = await data(http, api.url, "{ __schema { queryType { name } } }")
    assert result == {"__schema": {"queryType": {"name": "Query"}}}


async def test_introspection_off_refuses_schema_and_type_queries(http: httpx.AsyncClient, settings: Settings) -> None:
    async with serve_api(settings.model_copy(update={"introspection": False})) as api:
        for query, field in (
            ("{ __schema { queryType { name } } }", "__schema"),
            ('{ __type(name: "Mission") { name } }', "__type"),
            ("query { templates { id } __schema { types { name } } }", "__schema"),
        ):
            body = await gql(http, api.url, query)
            assert body["data"] is None
            no_traceback(json.dumps(body))
            messages = [e["message"] for e in body["errors"]]
            assert messages[0] == (
                f"GraphQL introspection has been disabled, but the requested query contained the field '{field}'."
            )
            assert all(m.startswith("GraphQL introspection has been disabled") for m in messages)
            assert not [e for e in body["errors"] if "errorId" in (e.get("extensions") or {})]
        assert await data(http, api.url, "{ __typename templates { id } }")  # the rest still answers


async def test_introspection_can_be_switched_off(http: httpx.AsyncClient, api: RunningApi, settings: Settings) -> None:
    query = "{ __schema { queryType { name } } }"
    assert await data(http, api.url, query) == {"__schema": {"queryType": {"name": "Query"}}}
    async with serve_api(settings.model_copy(update={"introspection": False})) as closed:
        assert "introspection has been disabled" in graphql_error(await post(http, closed, query))
        assert await data(http, closed.url, "{ templates { id } }")  # the rest still answers


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


async def test_graphiql_off_does_not_serve_the_page(http: httpx.AsyncClient, settings: Settings) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    async with serve_api(settings.model_copy(update={"graphiql": False})) as api:
        page = await http.get(api.url, headers=browser)
        assert page.status_code == 404
        assert "<html" not in page.text.lower() and "graphiql" not in page.text.lower()
        static = await http.get(api.url.replace("/graphql", "/static/graphiql.html"))
        assert static.status_code == 404
        assert await data(http, api.url, "{ __typename }") == {"__typename": "Query"}  # the API still answers
    async with serve_api(settings) as api:  # on by default
        page = await http.get(api.url, headers=browser)
        assert page.status_code == 200 and "graphiql" in page.text.lower()
