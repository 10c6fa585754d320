"""Unexpected errors are masked for the caller and logged with their id and traceback; Redis down is
masked as "store unavailable"."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from config.settings import Settings
from mission.logs import JsonFormatter
from mission.service import MissionService
from server.redis_local import free_port
from tests.conftest import RunningApi, serve_api
from tests.gql import MISSION, no_traceback

pytestmark = pytest.mark.timeout(30)


def unexpected_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "mission.api" and r.levelno == logging.ERROR]


async def test_an_unexpected_error_is_masked_and_logged_with_its_id(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="mission.api")
    record, _ = await service.deploy("two_stage")
    await service.redis.hset(service.keys.mission(record.id), "config", "{corrupted")  # type: ignore[misc]

    response = await http.post(api.url, json={"query": MISSION, "variables": {"id": record.id}})
    assert response.status_code == 200
    body = response.json()
    [error] = body["errors"]
    error_id = error["extensions"]["errorId"]
    assert body == {
        "data": {"mission": None},
        "errors": [
            {
                "message": f"Unexpected error (id {error_id}); it has been logged.",
                "locations": [{"line": 1, "column": 19}],
                "path": ["mission"],
                "extensions": {"errorId": error_id},
            }
        ],
    }
    no_traceback(response.text)
    assert "corrupted" not in response.text and "JSONDecode" not in response.text

    [logged] = unexpected_records(caplog)
    assert logged.error_id == error_id  # type: ignore[attr-defined]
    assert error_id in logged.getMessage()
    line = json.loads(JsonFormatter().format(logged))
    assert line["error_id"] == error_id and line["level"] == "error"
    assert "Traceback" in line["traceback"] and "JSONDecodeError" in line["traceback"]

    # Each occurrence gets its own id; the list of missions is masked the same way.
    listed = (await http.post(api.url, json={"query": "{ missions { nodes { id config { budget } } } }"})).json()
    other_id = listed["errors"][0]["extensions"]["errorId"]
    assert other_id != error_id
    assert listed["errors"][0]["message"] == f"Unexpected error (id {other_id}); it has been logged."
    assert {r.error_id for r in unexpected_records(caplog)} == {error_id, other_id}  # type: ignore[attr-defined]


async def test_redis_down_is_masked_as_store_unavailable(
    http: httpx.AsyncClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="mission.api")
    nowhere = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    async with serve_api(nowhere) as api:
        response = await http.post(api.url, json={"query": MISSION, "variables": {"id": "mssn_" + "0" * 32}})
    assert response.status_code == 200
    [error] = response.json()["errors"]
    error_id = error["extensions"]["errorId"]
    assert error["message"] == f"The mission store is unavailable; retry shortly (error id {error_id})."
    no_traceback(response.text)
    assert error_id in {getattr(r, "error_id", None) for r in unexpected_records(caplog)}
