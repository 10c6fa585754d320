"""What an agent can reach from its context: its own mission, limits and the service's public
surface, never an API key, a credential or the store."""

from __future__ import annotations

import asyncio
from typing import Any

import redis

from config.settings import Settings
from mission.models import MissionStatus
from mission.service import MissionService
from server.redis_local import LocalRedis
from tests.conftest import TEST_SETTINGS, eventually
from workers.settings import create_worker

REDIS_PASSWORD = "Redis-Pa55word-not-for-agents"
API_KEY = "operator-key-not-for-agents-0123456789"
PROVIDER_KEY = "sk-model-provider-key-not-for-agents-0123"


async def test_an_agent_reaches_no_key_no_password_and_no_store() -> None:
    with LocalRedis() as local:
        admin = redis.Redis.from_url(local.url)
        admin.config_set("requirepass", REDIS_PASSWORD)
        admin.close()
        settings = Settings(
            **{
                **TEST_SETTINGS,
                "redis_url": f"redis://:{REDIS_PASSWORD}@127.0.0.1:{local.port}/0",
                "api_keys": {API_KEY: {"tenant": "acme", "role": "operator"}},
                # a model provider configured with a key: agents call it (ctx.llm), never see it
                "llm_base_url": "http://127.0.0.1:9/v1",
                "llm_api_key": PROVIDER_KEY,
            }
        )
        service = MissionService(settings)
        worker = create_worker(settings, handle_signals=False)
        run = asyncio.create_task(worker.async_run())
        try:
            await asyncio.wait_for(worker.ready.wait(), 15)
            record, _ = await service.deploy("introspect", tenant="acme")

            async def ended() -> bool:
                mission = await service.store.read_one(record.id)
                return mission is not None and mission.status.terminal

            await eventually(ended, timeout=20)
            mission = await service.store.read_one(record.id, outputs=True)
            assert mission is not None and mission.status is MissionStatus.SUCCEEDED, mission
            output: dict[str, Any] = mission.jobs[0].output
        finally:
            await worker.close()
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
            await service.close()
    seen = output["seen"]
    assert output["count"] > 50  # the walk did reach into the context…
    assert record.id in seen and "'redis':" in seen and "***" in seen  # …its mission, and the masked surface
    assert REDIS_PASSWORD not in seen
    assert API_KEY not in seen
    assert "ModelCalls()" in seen and PROVIDER_KEY not in seen and "Bearer" not in seen
    assert "MissionStore" not in seen and "ConnectionPool" not in seen
