"""Agent attempts run without ARQ's bookkeeping around them (workers/settings.py `run_job`): what to
run comes from the job id, and a finished attempt leaves nothing of ARQ's behind."""

from __future__ import annotations

import asyncio

from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix

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
