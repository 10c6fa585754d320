"""What Mission Control needs from the service, over real HTTP: the page at `/` with its assets,
a dry-run plan that is exactly what the deploy makes, and the caller's role."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from config.settings import ApiKeyGrant, Settings
from tests.conftest import RunningApi, serve_api
from tests.gql import data

PLAN = """query ($t: ID!, $config: MissionConfigInput) {
  planMission(templateId: $t, config: $config) {
    __typename
    ... on MissionPlan { templateId budget ttl risk { level maxDrawdown } stages
                         agents { role department agent stage allocated dependsOn maxTries } }
    ... on InvalidConfig { message problems { field message } }
    ... on TemplateNotFound { message templateId }
  }
}"""
DEPLOY = """mutation ($t: ID!, $config: MissionConfigInput) {
  deployMission(templateId: $t, config: $config) {
    __typename
    ... on MissionDeployed { mission { jobs { role department budget { allocated } } } }
  }
}"""
COUNT = "{ missions { totalCount } }"
VIEWER = "{ viewer { tenant role canOperate } }"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15) as client:
        yield client


def base(api: RunningApi) -> str:
    return api.url.removesuffix("/graphql")


async def test_root_serves_the_page_and_its_assets(api: RunningApi, http: httpx.AsyncClient) -> None:
    page = await http.get(f"{base(api)}/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<title>Mission Control</title>" in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assets = re.findall(r'(?:src|href)="(/ui/assets/[^"]+)"', page.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets), page.text
    for asset in assets:
        response = await http.get(f"{base(api)}{asset}")
        assert response.status_code == 200, asset
        assert response.headers["content-type"].split(";")[0] in {"text/javascript", "text/css"}, asset
    assert (await http.get(f"{base(api)}/ui/assets/nothing-here.js")).status_code == 404


async def test_plan_is_what_the_deploy_makes_and_stores_nothing(api: RunningApi, http: httpx.AsyncClient) -> None:
    config = {"budget": "250.55", "ttl": 120, "risk": {"level": "low"}}
    plan = (await data(http, api.url, PLAN, t="two_stage", config=config))["planMission"]
    assert plan["__typename"] == "MissionPlan", plan
    assert (plan["budget"], plan["ttl"], plan["risk"]["level"]) == ("250.55", 120, "low")
    assert plan["stages"] == [["Up"], ["Down"]]
    by_role = {a["role"]: a for a in plan["agents"]}
    assert by_role["join"]["dependsOn"] == ["left", "right"] and by_role["join"]["stage"] == 1
    assert sum(Decimal(a["allocated"]) for a in plan["agents"]) == Decimal("250.55")
    assert (await data(http, api.url, COUNT))["missions"]["totalCount"] == 0  # a dry run writes nothing

    deployed = (await data(http, api.url, DEPLOY, t="two_stage", config=config))["deployMission"]
    jobs = {j["role"]: (j["department"], j["budget"]["allocated"]) for j in deployed["mission"]["jobs"]}
    assert jobs == {a["role"]: (a["department"], a["allocated"]) for a in plan["agents"]}


async def test_plan_answers_problems_like_the_deploy(api: RunningApi, http: httpx.AsyncClient) -> None:
    bad = {"budget": "99999999", "risk": {"maxDrawdown": 2}}
    plan = (await data(http, api.url, PLAN, t="two_stage", config=bad))["planMission"]
    assert plan["__typename"] == "InvalidConfig"
    fields = {p["field"]: p["message"] for p in plan["problems"]}
    assert set(fields) == {"budget", "risk.maxDrawdown"}, fields
    assert "outside this template's range" in fields["budget"]
    missing = (await data(http, api.url, PLAN, t="no_such_template"))["planMission"]
    assert missing == {
        "__typename": "TemplateNotFound",
        "message": missing["message"],
        "templateId": "no_such_template",
    }


async def test_viewer_tells_the_callers_role(settings: Settings, http: httpx.AsyncClient) -> None:
    keys = {
        "ui-viewer-key": ApiKeyGrant(tenant="acme", role="viewer"),
        "ui-operator-key": ApiKeyGrant(tenant="acme", role="operator"),
    }
    async with serve_api(settings.model_copy(update={"api_keys": keys})) as api:
        for key, role, can in (("ui-viewer-key", "viewer", False), ("ui-operator-key", "operator", True)):
            response = await http.post(api.url, json={"query": VIEWER}, headers={"Authorization": f"Bearer {key}"})
            assert response.json() == {"data": {"viewer": {"tenant": "acme", "role": role, "canOperate": can}}}
        refused = await http.post(api.url, json={"query": VIEWER})
        assert refused.status_code == 401
        # the page itself loads without a key (it asks for one)
        assert (await http.get(f"{base(api)}/")).status_code == 200


async def test_viewer_in_open_mode_is_the_default_admin(api: RunningApi, http: httpx.AsyncClient) -> None:
    assert (await data(http, api.url, VIEWER))["viewer"] == {"tenant": "default", "role": "admin", "canOperate": True}
