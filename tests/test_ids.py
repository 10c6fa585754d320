"""Nasty ids, sectors and keys over the API: huge, unicode, NUL bytes and lone surrogates are answered
(not found, not echoed whole), never crashed on."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.conftest import RunningApi
from tests.gql import DEPLOY, clean, data, deploy_result, graphql_body, post_json_text, unmasked
from tests.processes import Server

pytestmark = pytest.mark.timeout(60)


READS = """
query($id: ID!, $sector: String) {
  mission(id: $id) { id }
  template(id: $id) { id }
  departmentGraph(templateId: $id) { stages }
  templates(sector: $sector) { id }
  missions(templateId: $id) { totalCount }
}"""

CANCEL = "mutation($id: ID!) { cancelMission(id: $id) { __typename ... on MissionNotFound { message missionId } } }"


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


async def test_nasty_ids_never_error(http: httpx.AsyncClient, api: RunningApi) -> None:
    query = """query($id: ID!, $s: String) {
      mission(id: $id) { id } template(id: $id) { id } departmentGraph(templateId: $id) { stages }
      templates(sector: $s) { id }
    }"""
    for raw_id in ('"\\ud800"', '"\\udfff\\ud800"', '"mssn_\\u0000"', '"' + "é" * 50_000 + '"'):
        body = await post_json_text(http, api, query, f'{{"id": {raw_id}, "s": {raw_id}}}')
        assert body == {"data": {"mission": None, "template": None, "departmentGraph": None, "templates": []}}


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
