"""/healthz and /readyz; without Redis the server starts, is not ready, and masks what needs Redis."""

from __future__ import annotations

import httpx
import pytest

from config.settings import Settings
from server.redis_local import free_port
from tests.conftest import TEST_TEMPLATE_IDS, TEST_TEMPLATES, RunningApi, base_url, serve_api
from tests.gql import data

pytestmark = pytest.mark.timeout(60)


async def test_healthz_and_readyz(http: httpx.AsyncClient, api: RunningApi) -> None:
    health = await http.get(base_url(api) + "/healthz")
    assert health.status_code == 200
    ready = await http.get(base_url(api) + "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "redis": True, "templates": len(TEST_TEMPLATE_IDS), "down": []}


async def test_without_redis_the_server_starts_but_is_not_ready(http: httpx.AsyncClient) -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0", templates_path=TEST_TEMPLATES)
    async with serve_api(settings) as down:
        assert (await http.get(base_url(down) + "/healthz")).status_code == 200
        ready = await http.get(base_url(down) + "/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"ready": False, "redis": False, "templates": len(TEST_TEMPLATE_IDS), "down": []}
        # What needs no Redis still answers; what does fails masked, with an id to find it in the log.
        templates = await data(http, down.url, "{ templates { id } }")
        assert len(templates["templates"]) == len(TEST_TEMPLATE_IDS)
        for query in (
            "{ missions { totalCount } }",
            '{ mission(id: "mssn_00000000000000000000000000000000") { id } }',
            'mutation { deployMission(templateId: "two_stage") { __typename } }',
            'mutation { cancelMission(id: "mssn_00000000000000000000000000000000") { __typename } }',
        ):
            response = await http.post(down.url, json={"query": query})
            assert response.status_code == 200
            error = response.json()["errors"][0]
            assert "unavailable" in error["message"]  # says what is wrong, not how
            assert error["extensions"]["errorId"] in error["message"]
            assert "Traceback" not in response.text and "Connection" not in response.text
