"""Deploy `inputs` and idempotency keys over the API: the size and depth limits, values that are not plain
JSON, odd but valid inputs kept exactly, and the idempotency key's bounds."""

from __future__ import annotations

import json

import httpx
import pytest

from config.settings import Settings
from mission.service import MissionService
from tests.conftest import RunningApi, missions_stored, no_mission_stored, nothing_stored, serve_api
from tests.gql import DEPLOY, clean, data, deploy, deploy_result, graphql_body, post_json_text
from tests.processes import Server

pytestmark = pytest.mark.timeout(60)


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


async def test_inputs_above_max_inputs_bytes_are_invalid_config_naming_inputs(
    http: httpx.AsyncClient, settings: Settings, service: MissionService
) -> None:
    limit = 1024
    async with serve_api(settings.model_copy(update={"max_inputs_bytes": limit})) as api:
        # two_stage's default inputs ({"greeting":"hello"}) are merged under the given ones.
        merged = {"greeting": "hello", "pad": ""}
        room = limit - len(json.dumps(merged, separators=(",", ":")))
        fits = await data(http, api.url, DEPLOY, t="two_stage", config={"inputs": {"pad": "x" * room}})
        assert fits["deployMission"]["__typename"] == "MissionDeployed"
        over = await data(http, api.url, DEPLOY, t="two_stage", config={"inputs": {"pad": "x" * (room + 1)}})
        assert over["deployMission"] == {
            "__typename": "InvalidConfig",
            "message": f"invalid mission config: inputs: {limit + 1} bytes of JSON is above the limit of {limit}",
            "problems": [{"field": "inputs", "message": f"{limit + 1} bytes of JSON is above the limit of {limit}"}],
        }
        # Multi-byte characters count as the JSON text the service measures, never less.
        wide = await data(http, api.url, DEPLOY, t="two_stage", config={"inputs": {"pad": "€" * limit}})
        assert wide["deployMission"]["__typename"] == "InvalidConfig"
        assert [p["field"] for p in wide["deployMission"]["problems"]] == ["inputs"]
    assert await missions_stored(service) == 1


def test_wide_inputs(server: Server) -> None:
    wide = {f"k{i}": i for i in range(10_000)}
    result = deploy_result(server.post(DEPLOY, t="two_stage", config={"inputs": wide}))
    assert result["__typename"] == "InvalidConfig", result
    assert [p["field"] for p in result["problems"]] == ["inputs"] and "limit" in result["problems"][0]["message"]
    fits = {f"k{i}": 0 for i in range(3_000)}
    assert deploy_result(server.post(DEPLOY, t="two_stage", config={"inputs": fits}))["__typename"] == "MissionDeployed"


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


async def test_lone_surrogate_in_inputs_is_invalid_config(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings
) -> None:
    body = await post_json_text(http, api, DEPLOY, '{"t": "two_stage", "config": {"inputs": {"x": "\\ud800"}}}')
    await no_mission_stored(service, settings)
    assert body.get("data") is not None, body
    result = body["data"]["deployMission"]
    assert result["__typename"] == "InvalidConfig"
    assert [p["field"] for p in result["problems"]] == ["inputs"]


async def test_deploy_idempotency_key_bounds(http: httpx.AsyncClient, api: RunningApi, service: MissionService) -> None:
    for key in ("", "k" * 201):
        result = await deploy(http, api, "two_stage", key=key)
        assert result["__typename"] == "InvalidConfig"
        assert [p["field"] for p in result["problems"]] == ["idempotencyKey"]
    await nothing_stored(service)
    assert (await deploy(http, api, "two_stage", key="k" * 200))["created"] is True


async def test_lone_surrogate_in_idempotency_key_is_invalid_config(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, settings: Settings
) -> None:
    body = await post_json_text(http, api, DEPLOY, '{"t": "two_stage", "key": "\\ud800"}')
    await no_mission_stored(service, settings)
    assert body.get("data") is not None, body
    result = body["data"]["deployMission"]
    assert result["__typename"] == "InvalidConfig"
    assert [p["field"] for p in result["problems"]] == ["idempotencyKey"]
