"""Crash recovery: leases, the reaper, fencing of stale attempts."""

from __future__ import annotations

import asyncio

import pytest

from mission.events import PubSubHub, mission_events
from mission.models import JobStatus, MissionStatus
from mission.service import MissionService
from tests.conftest import StartWorker, run_to_end
from tests.processes import Processes

pytestmark = pytest.mark.timeout(90)


async def test_sigkilled_worker_job_is_rerun_by_another_worker_within_the_lease(
    service: MissionService,
    hub: PubSubHub,
    start_worker: StartWorker,
    procs: Processes,
) -> None:
    doomed = procs.worker(service.settings.redis_url)
    mission_id = (await service.deploy_mission("slow_chain", {"inputs": {"seconds": 2}}))["mission_id"]
    middle = f"{mission_id}:middle"

    async def until_middle_starts() -> None:
        async for event in mission_events(hub, service.store, mission_id):
            if event.type == "job.progress" and event.job_id == middle:
                return

    await asyncio.wait_for(until_middle_starts(), 30)  # the child process has the job, mid-run
    doomed.kill()
    await start_worker()

    events = await run_to_end(service, hub, mission_id, timeout=30)
    record = await service.get_mission(mission_id)
    assert record is not None and record.status is MissionStatus.SUCCEEDED
    jobs = {job.role: job for job in record.jobs}
    assert jobs["middle"].attempt == 2
    assert jobs["last"].status is JobStatus.SUCCEEDED
    requeued = [e for e in events if e.type == "job.requeued"]
    assert [e.job_id for e in requeued] == [middle]
    assert requeued[0].message == "worker lost (lease lapsed); running again"
    assert requeued[0].data is not None and requeued[0].data["attempt"] == 2
    # the reaper ran it again (ARQ re-running the dead worker's job would find it stale, and count no reap)
    assert await service.redis.hget(service.keys.stats, "lease_reaps") == "1"
    # nothing of the dead attempt is left in ARQ's queue or in the leases
    assert await service.redis.zscore(service.keys.queue, f"{middle}:1") is None
    assert await service.redis.zcard(service.keys.leases) == 0


async def redis_now_ms(service: MissionService) -> int:
    """Redis's clock, the one leases are stamped with."""
    seconds, micros = await service.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def test_a_late_finish_of_an_old_attempt_changes_nothing(service: MissionService) -> None:
    store = service.store
    mission_id = (await service.deploy_mission("flaky"))["mission_id"]
    started = await store.start_job(mission_id, "flake", 1, lease_ms=0, worker="w1")  # lapsed at once
    assert not isinstance(started, str)
    assert await store.lapsed_leases(await redis_now_ms(service)) == [(mission_id, "flake", 1)]
    assert (await store.finish_job(mission_id, "flake", 1, "lost", "", lease_losses=3))[0] == "ok"
    # the old attempt can neither start, spend, report, nor finish any more
    assert await store.start_job(mission_id, "flake", 1, lease_ms=1000, worker="w1") == "stale"
    assert (await store.spend(mission_id, "flake", 1, 100, "late", 1))[0] == "stale"
    assert not await store.progress(mission_id, "flake", 1, 0.5, "late", 1)
    assert (await store.finish_job(mission_id, "flake", 1, "ok", '{"old": true}'))[0] == "stale"
    second = await store.start_job(mission_id, "flake", 2, lease_ms=10_000, worker="w2")
    assert not isinstance(second, str)
    assert (await store.finish_job(mission_id, "flake", 1, "ok", '{"old": true}'))[0] == "stale"
    assert (await store.finish_job(mission_id, "flake", 2, "ok", '{"new": true}'))[0] == "ok"
    record = await service.get_mission(mission_id, outputs=True)
    assert record is not None and record.status is MissionStatus.SUCCEEDED
    assert record.jobs[0].output == {"new": True}
    assert record.jobs[0].attempt == 2


async def test_a_job_lost_too_often_fails(service: MissionService) -> None:
    store = service.store
    mission_id = (await service.deploy_mission("flaky"))["mission_id"]
    for attempt in (1, 2):
        assert not isinstance(await store.start_job(mission_id, "flake", attempt, 0, "w"), str)  # lapsed at once
        result = await store.finish_job(mission_id, "flake", attempt, "lost", "", lease_losses=1)
        assert result[0] == "ok"
    record = await service.get_mission(mission_id)
    assert record is not None and record.status is MissionStatus.FAILED
    assert "lease" in (record.jobs[0].error or "")


async def test_a_renewed_lease_is_not_reaped(service: MissionService) -> None:
    store = service.store
    mission_id = (await service.deploy_mission("flaky"))["mission_id"]
    assert not isinstance(await store.start_job(mission_id, "flake", 1, 1, "w"), str)
    assert await store.heartbeat([(mission_id, "flake", 1)], lease_ms=10_000) == []
    assert (await store.finish_job(mission_id, "flake", 1, "lost", "", lease_losses=3))[0] == "renewed"
    record = await service.get_mission(mission_id)
    assert record is not None and record.jobs[0].status is JobStatus.RUNNING
