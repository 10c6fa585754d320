"""Deploy config validation over the API: budget (money), ttl and risk. A bad value is InvalidConfig naming
the field, or a GraphQL input error; never a 5xx, and nothing stored."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from config.settings import Settings
from mission.service import MissionService
from tests.conftest import RunningApi, no_mission_stored, nothing_stored
from tests.gql import (
    DEPLOY,
    data,
    deploy,
    deploy_result,
    graphql_body,
    graphql_error,
    mission_count,
    missions,
    post,
    post_json_text,
    unmasked,
)
from tests.processes import Server

pytestmark = pytest.mark.timeout(60)


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
