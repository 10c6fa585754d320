"""The original spec's two usage examples, run verbatim against a real Redis and worker."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
from arq.connections import RedisSettings, create_pool

from config.settings import DEFAULT_TEMPLATES, Settings
from mission.events import PubSubHub
from mission.models import MissionStatus
from mission.service import MissionService, get_mission_service
from tests.conftest import StartWorker

LIST_SECURITY_MISSIONS = """
from services.mission_service import get_mission_service

svc = get_mission_service()

# specific templates for 'Security' sector missions
security_missions = svc.get_all_templates(sector="Security")

for m in security_missions:
    print(f"ID: {m['id']} | Name: {m['name']}")
    print(f"Goal: {m['goal']}")
"""

DEPLOY_CRASH_PROTOCOL = """
from services.mission_service import get_mission_service

svc = get_mission_service()

# Deploy emergency liquidation with elevated budget
result = await svc.deploy_mission(
    template_id="mission_002", # Crash Protocol
    config={
        "budget": 5000, # Override default $1000
        "ttl": 300 # 5 minutes max execution time
    },
    arq_pool=redis_pool_connection
)

print(f"Mission Launched: {result['mission_id']}")
print(f"Active Jobs: {len(result['jobs'])}")
"""


@pytest.fixture
def seed_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`get_mission_service()` reads the environment: point it at the test Redis and real templates."""
    monkeypatch.setenv("MISSION_REDIS_URL", settings.redis_url)
    monkeypatch.setenv("MISSION_TEMPLATES_PATH", str(DEFAULT_TEMPLATES))
    get_mission_service.cache_clear()
    yield
    get_mission_service.cache_clear()


async def run_snippet(source: str, namespace: dict[str, Any]) -> str:
    code = compile(source, "<seed example>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = eval(code, namespace)
        if result is not None:
            await result
    return out.getvalue()


async def test_listing_security_missions(seed_env: None) -> None:
    printed = await run_snippet(LIST_SECURITY_MISSIONS, {})
    assert "ID: mission_003 | Name: Shadow Mirror" in printed
    assert "Goal: " in printed
    await get_mission_service().close()


@pytest.mark.timeout(60)
async def test_deploying_crash_protocol(seed_env: None, settings: Settings, start_worker: StartWorker) -> None:
    pool = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    namespace: dict[str, Any] = {"redis_pool_connection": pool}
    await start_worker()
    try:
        printed = await run_snippet(DEPLOY_CRASH_PROTOCOL, namespace)
        result = namespace["result"]
        assert printed.splitlines() == [
            f"Mission Launched: {result['mission_id']}",
            f"Active Jobs: {len(result['jobs'])}",
        ]
        assert result["config"]["budget"] == "5000.00" and result["config"]["ttl"] == 300
        assert {job["department"] for job in result["jobs"]} == {"Security", "Finance"}

        svc: MissionService = namespace["svc"]
        hub = PubSubHub(svc.redis)
        await hub.start()
        try:
            # a budget above the default gates its Finance stage: someone else approves it
            events = []
            async with asyncio.timeout(30):
                async for event in svc.events(hub, result["mission_id"]):
                    events.append(event)
                    if event.type == "approval.requested":
                        await svc.approve_mission(result["mission_id"], by="second-pair-of-eyes")
        finally:
            await hub.close()
        assert [e.type for e in events if e.type.startswith("approval.")] == ["approval.requested", "approval.granted"]
        assert events[-1].type == "mission.succeeded"
        record = await svc.get_mission(result["mission_id"])
        assert record is not None and record.status is MissionStatus.SUCCEEDED
        assert 0 < record.budget.spent_cents <= 500_000
    finally:
        await pool.aclose()
        await get_mission_service().close()
