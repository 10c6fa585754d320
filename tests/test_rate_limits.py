"""The per-key deploy rate limit: counted per key in Redis (under a hash, never the key), refusing with
RateLimited; it limits deploys only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from config.settings import ApiKeyGrant, Settings
from mission.models import MissionStatus
from mission.service import MissionService
from tests.conftest import missions_stored, serve_api
from tests.gql import DEPLOY, OPERATOR, OTHER_OPERATOR, VIEWER, bearer

pytestmark = pytest.mark.timeout(30)


async def test_deploys_are_rate_limited_per_key(
    http: httpx.AsyncClient, settings: Settings, service: MissionService
) -> None:
    keys = {
        OPERATOR: ApiKeyGrant(tenant="acme", role="operator"),
        OTHER_OPERATOR: ApiKeyGrant(tenant="acme", role="operator"),  # the same tenant: the limit is per key
        VIEWER: ApiKeyGrant(tenant="acme", role="viewer"),
    }
    limited = settings.model_copy(update={"api_keys": keys, "deploy_rate_limit": 3, "deploy_rate_window_seconds": 60})

    async def deploy(key: str) -> dict[str, Any]:
        response = await http.post(
            api.url, json={"query": DEPLOY, "variables": {"t": "two_stage"}}, headers=bearer(key)
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async with serve_api(limited) as api:
        for _ in range(3):  # a viewer's refused deploys use none of anybody's quota
            assert (await deploy(VIEWER))["errors"][0]["message"].startswith("forbidden")
        accepted = [(await deploy(OPERATOR))["data"]["deployMission"] for _ in range(3)]
        assert [d["__typename"] for d in accepted] == ["MissionDeployed"] * 3
        assert await missions_stored(service) == 3
        queue_before = await service.redis.zcard(service.keys.queue)

        for _ in range(2):
            refused = (await deploy(OPERATOR))["data"]["deployMission"]
            assert refused["__typename"] == "RateLimited"
            assert 0 < refused["retryAfter"] <= 60
            assert refused["message"] == f"too many deploys: at most 3 per 60 s; retry in {refused['retryAfter']:.1f} s"
        assert await missions_stored(service) == 3  # nothing stored for the refused ones
        assert await service.redis.zcard(service.keys.queue) == queue_before  # nor queued

        other = (await deploy(OTHER_OPERATOR))["data"]["deployMission"]
        assert other["__typename"] == "MissionDeployed"
        assert await missions_stored(service) == 4

    # The count lives in Redis under a hash of the key, never the key itself.
    names = [str(name) for name in await service.redis.keys("*")]
    rate_keys = [name for name in names if ":rate:" in name]
    assert len(rate_keys) == 2
    assert not [name for name in names if OPERATOR in name or OTHER_OPERATOR in name]


async def test_missions_of_a_rate_limited_key_can_still_be_cancelled(
    http: httpx.AsyncClient, settings: Settings, service: MissionService
) -> None:
    """The deploy limit is about deploys only: reads and cancels of a limited key keep working."""
    keyed = settings.model_copy(
        update={"api_keys": {OPERATOR: ApiKeyGrant(tenant="acme", role="operator")}, "deploy_rate_limit": 1}
    )
    async with serve_api(keyed) as api:
        first = await http.post(api.url, json={"query": DEPLOY, "variables": {"t": "hang"}}, headers=bearer(OPERATOR))
        mission_id = first.json()["data"]["deployMission"]["mission"]["id"]
        second = await http.post(api.url, json={"query": DEPLOY, "variables": {"t": "hang"}}, headers=bearer(OPERATOR))
        assert second.json()["data"]["deployMission"]["__typename"] == "RateLimited"
        cancel = "mutation($id: ID!) { cancelMission(id: $id) { __typename } }"
        cancelled = await http.post(
            api.url, json={"query": cancel, "variables": {"id": mission_id}}, headers=bearer(OPERATOR)
        )
        assert cancelled.json() == {"data": {"cancelMission": {"__typename": "MissionCancelled"}}}
    assert await service.store.status(mission_id) == MissionStatus.CANCELLED
