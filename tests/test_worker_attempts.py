"""Agent attempts run without ARQ's bookkeeping around them (workers/settings.py `run_job`): what to
run comes from the job id, and a finished attempt leaves nothing of ARQ's behind."""

from __future__ import annotations

import asyncio

from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix

from config.settings import Settings
from mission.events import PubSubHub
from mission.keys import Keys
from mission.service import MissionService
from tests.conftest import StartWorker, eventually, run_to_end


def test_an_attempts_job_id_names_what_to_run() -> None:
    mission = "mssn_" + "a" * 32
    assert Keys.parse_arq_job_id(Keys.arq_job_id(mission, "liquidator", 3)) == (mission, "liquidator", 3)
    assert Keys.parse_arq_job_id(Keys.arq_job_id(mission, "a:b", 1)) == (mission, "a:b", 1)
    assert Keys.parse_arq_job_id(Keys.deadline_job_id(mission)) is None
    assert Keys.parse_arq_job_id("cron:reap_leases:1700000000000") is None
    assert Keys.parse_arq_job_id(f"{mission}:role:x") is None


async def test_finished_attempts_leave_no_arq_keys_and_leave_the_queue(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    await start_worker()
    records = [(await service.deploy("two_stage"))[0] for _ in range(3)]
    for record in records:
        events = await run_to_end(service, hub, record.id)
        assert events[-1].type == "mission.succeeded"
    attempts = [Keys.arq_job_id(r.id, job.role, 1) for r in records for job in r.jobs]

    async def cleaned() -> bool:
        queued = set(await service.redis.zrange(service.keys.queue, 0, -1))
        left = [
            k
            for a in attempts
            for k in (job_key_prefix + a, in_progress_key_prefix + a, retry_key_prefix + a)
            if await service.redis.exists(k)
        ]
        return not left and not queued & {a.encode() for a in attempts} and not queued & set(attempts)

    await eventually(cleaned, timeout=10)


async def test_an_attempt_cancelled_by_a_worker_shutdown_runs_again_elsewhere(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    from tests import agents

    first = await start_worker()
    record, _ = await service.deploy("hang")
    job_id = f"{record.id}:hanger"
    await asyncio.wait_for(agents.started(job_id).wait(), 10)
    await first.close()  # stops the running attempt, which is handed back
    agents.started(job_id).clear()
    await start_worker()
    await asyncio.wait_for(agents.started(job_id).wait(), 10)  # another worker runs it again
    await service.cancel_mission(record.id)
    events = await run_to_end(service, hub, record.id)
    assert events[-1].type == "mission.cancelled"


async def test_a_running_attempts_job_waits_behind_the_due_jobs_until_its_lease_ends(
    service: MissionService, settings: Settings, start_worker: StartWorker
) -> None:
    """ARQ keeps a running job in its queue; a running attempt's is parked until its lease ends, so
    a claim never walks past the running ones, and a dead worker's job is due again as its lease
    (and its in-progress key) lapses."""
    from tests import agents

    await start_worker()
    record, _ = await service.deploy("hang")
    attempt = Keys.arq_job_id(record.id, "hanger", 1)
    await asyncio.wait_for(agents.started(f"{record.id}:hanger").wait(), 10)
    seconds, micros = await service.redis.time()  # Redis's clock, the one the scores are on
    now_ms = seconds * 1000 + micros // 1000
    score = await service.redis.zscore(service.keys.queue, attempt)
    lease_ms = settings.lease_seconds * 1000
    assert score is not None and score > now_ms + lease_ms / 2, "the running attempt's job is not parked"
    assert await service.redis.exists(in_progress_key_prefix + attempt)
    assert await service.store.claim(10, now_ms, int(lease_ms)) == []  # nothing due: none walked, none claimed
    await service.cancel_mission(record.id)
    await asyncio.wait_for(agents.cancelled(f"{record.id}:hanger").wait(), 10)


async def test_a_freed_slot_takes_a_queued_job_without_waiting_for_the_timed_poll(
    service: MissionService, start_worker: StartWorker
) -> None:
    """A full worker polls again once a tenth of its slots are free, or very soon after any slot
    frees: one freed slot of twenty must not wait for the next timed poll (a minute here)."""
    from tests import agents

    await start_worker(max_jobs=20, poll_delay=60)
    running = [(await service.deploy("hang"))[0] for _ in range(20)]
    for record in running:
        await asyncio.wait_for(agents.started(f"{record.id}:hanger").wait(), 10)
    waiting, _ = await service.deploy("hang")  # queued: every slot is taken
    await service.cancel_mission(running[0].id)  # frees one slot
    await asyncio.wait_for(agents.started(f"{waiting.id}:hanger").wait(), 10)
    for record in [*running, waiting]:
        await service.cancel_mission(record.id)
