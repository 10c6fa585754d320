"""Finished missions leave Redis after ``summary_retention_seconds``: their keys, their jobs, their
idempotency keys and their ids in every index. Real workers, a real Redis."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from redis.asyncio import Redis

from config.settings import Settings
from mission.events import PubSubHub
from mission.models import MissionStatus
from mission.service import MissionService
from tests.conftest import StartWorker, eventually, run_to_end
from workers.jobs import sweep_finished
from workers.runtime import WorkerRuntime

pytestmark = pytest.mark.timeout(90)

TENANTS = ("acme", "globex")


async def prefixed_keys(redis: Redis, prefix: str) -> set[str]:
    return {str(key) async for key in redis.scan_iter(match=f"{prefix}:*", count=1000)}


async def redis_now_ms(redis: Redis) -> int:
    """Redis's clock, the one finish times are stamped with."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def holders(redis: Redis, mission_ids: set[str]) -> list[str]:
    """Every key, of any prefix, named after one of the missions or holding one as a set member
    or as its value."""
    found = []
    async for key in redis.scan_iter(count=1000):
        kind = await redis.type(key)
        for mission_id in mission_ids:
            if mission_id in key:
                found.append(f"{key} (named after {mission_id})")
            elif kind == "zset" and await redis.zscore(key, mission_id) is not None:
                found.append(f"{key} holds {mission_id}")
            elif kind == "string" and await redis.get(key) == mission_id:
                found.append(f"{key} = {mission_id}")
    return found


async def test_finished_missions_are_removed_with_their_index_entries(
    settings: Settings, start_worker: StartWorker, service: MissionService, hub: PubSubHub
) -> None:
    redis, keys, prefix = service.redis, service.keys, settings.key_prefix
    keeper = await start_worker()  # the default retention (90 days): it runs the missions, sweeps none

    # The baseline: what stays once a mission of each tenant has come and gone (the deploy
    # counters, the cluster-wide stats).
    for tenant in TENANTS:
        warm_up = (await service.deploy_mission("two_stage", tenant=tenant))["mission_id"]
        await run_to_end(service, hub, warm_up)
    assert await service.store.sweep_finished(await redis_now_ms(redis)) == len(TENANTS)
    baseline = await prefixed_keys(redis, prefix)
    assert {keys.counter, keys.stats} <= baseline

    batch: dict[str, tuple[str, str, MissionStatus]] = {}  # mission id -> (tenant, template, how it must end)
    idempotency: dict[str, str] = {}  # mission id -> its Redis idempotency key
    for tenant in TENANTS:
        for template, config, key, ending in [
            ("two_stage", None, f"{tenant}-ok", MissionStatus.SUCCEEDED),
            ("fail_upstream", None, None, MissionStatus.FAILED),
            ("hang", None, f"{tenant}-cancel", MissionStatus.CANCELLED),
            ("hang", {"ttl": 1}, None, MissionStatus.EXPIRED),
        ]:
            deployed = await service.deploy_mission(template, config, tenant=tenant, idempotency_key=key)
            batch[deployed["mission_id"]] = (tenant, template, ending)
            if key is not None:
                idempotency[deployed["mission_id"]] = keys.idempotency(tenant, key)
    ends = [asyncio.create_task(run_to_end(service, hub, mission_id, timeout=30)) for mission_id in batch]
    for mission_id, (_, _, ending) in batch.items():
        if ending is MissionStatus.CANCELLED:
            await service.cancel_mission(mission_id)
    for mission_id, events in zip(batch, await asyncio.gather(*ends), strict=True):
        assert events[-1].status == batch[mission_id][2].value, (mission_id, events[-1])

    # Finished and kept: stored, indexed, in the finished set (so the check below is not vacuous).
    kept = await prefixed_keys(redis, prefix)
    for mission_id, (tenant, template, ending) in batch.items():
        assert keys.mission(mission_id) in kept
        for scope in (tenant, "*"):
            for index in (keys.index(scope), keys.index(scope, ending.value, template)):
                assert await redis.zscore(index, mission_id) is not None, index
        assert await redis.zscore(keys.finished, mission_id) is not None
    for mission_id, idem in idempotency.items():
        assert await redis.get(idem) == mission_id

    await keeper.close()
    await start_worker(ctx={"settings": settings.model_copy(update={"summary_retention_seconds": 1})})

    async def back_to_baseline() -> bool:
        return await prefixed_keys(redis, prefix) == baseline

    with contextlib.suppress(TimeoutError):  # the asserts below say what is left over
        await eventually(back_to_baseline, timeout=20)
    assert await prefixed_keys(redis, prefix) ^ baseline == set()
    assert await holders(redis, set(batch)) == []
    assert await redis.zcard(keys.finished) == 0
    for mission_id in batch:
        assert await service.get_mission(mission_id) is None
    # The idempotency keys went with their missions: the same key deploys a new mission.
    again = await service.deploy_mission("two_stage", tenant="acme", idempotency_key="acme-ok")
    assert again["created"] and again["mission_id"] not in batch


async def test_the_sweep_spares_missions_within_retention(
    settings: Settings, start_worker: StartWorker, service: MissionService, hub: PubSubHub
) -> None:
    await start_worker()  # the default retention: 90 days
    mission_id = (await service.deploy_mission("two_stage", idempotency_key="k"))["mission_id"]
    await run_to_end(service, hub, mission_id)
    record = await service.get_mission(mission_id)
    assert record is not None and record.finished_at is not None
    finished_ms = int(record.finished_at.timestamp() * 1000)
    before = await prefixed_keys(service.redis, settings.key_prefix)

    assert await service.store.sweep_finished(finished_ms - 1) == 0  # finished after the cutoff
    for keep in (0, 3600):  # 0 keeps every mission; an hour keeps this one
        runtime = WorkerRuntime(settings.model_copy(update={"summary_retention_seconds": keep}))
        try:
            assert await sweep_finished({"runtime": runtime}) == 0
        finally:
            await runtime.close()
    assert await prefixed_keys(service.redis, settings.key_prefix) == before

    assert await service.store.sweep_finished(finished_ms) == 1
    assert await service.get_mission(mission_id) is None
    assert await holders(service.redis, {mission_id}) == []
