"""The ARQ functions: thin wrappers over the runner and `mission/`."""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.exceptions import RedisError

from mission.models import MissionStatus
from workers.runner import expire_when_due, run_attempt
from workers.runtime import WorkerRuntime

log = logging.getLogger("mission.worker")


def _runtime(ctx: dict[str, Any]) -> WorkerRuntime:
    runtime: WorkerRuntime = ctx["runtime"]
    return runtime


async def run_agent_logic(ctx: dict[str, Any], mission_id: str, job_id: str, attempt: int = 1) -> dict[str, Any]:
    """Run one attempt of the agent job ``job_id`` (``<mission id>:<role>``)."""
    role = job_id.rpartition(":")[2]
    return await run_attempt(_runtime(ctx), mission_id, role, attempt)


async def expire_mission(ctx: dict[str, Any], mission_id: str) -> str:
    """The deadline job, deferred to the mission's deadline: expire it unless it has ended."""
    runtime = _runtime(ctx)
    # ARQ may start the job a few ms before Redis's clock says it is due: expire_when_due waits
    return await expire_when_due(runtime.store, mission_id, runtime.settings.lease_seconds * 3)


async def reap_leases(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron: run again the attempts whose worker stopped renewing the lease; expire overdue missions."""
    runtime = _runtime(ctx)
    counts = {"requeued": 0, "expired": 0}
    if runtime.may_reap:  # else Redis just came back: live workers renew first
        # ARQ's cron starts it every MISSION_REAP_EVERY_SECONDS; a crash counts as a supervised task's
        async with runtime.supervisor.run_once("reaper"):
            counts = await _reap(runtime)
    return counts


async def _reap(runtime: WorkerRuntime) -> dict[str, int]:
    store = runtime.store
    now_ms = int(time.time() * 1000)
    requeued = 0
    for mission_id, role, attempt in await store.lapsed_leases(now_ms):
        try:  # one bad item must not block the others (it would come first again every time)
            result, _ = await store.finish_job(
                mission_id, role, attempt, "lost", "", lease_losses=runtime.settings.max_lease_losses
            )
        except RedisError:
            log.exception("reaping %s:%s attempt %d failed", mission_id, role, attempt)
            continue
        if result == "ok":
            requeued += 1
            log.warning("lease of %s:%s attempt %d lapsed; running it again", mission_id, role, attempt)
    expired = 0
    for mission_id in await store.overdue_missions(now_ms):
        try:
            result, _ = await store.stop(mission_id, MissionStatus.EXPIRED)
        except RedisError:
            log.exception("expiring %s failed", mission_id)
            continue
        expired += result == "ok"
    return {"requeued": requeued, "expired": expired}


SWEEP_BATCH = 100
SWEEP_BATCHES = 10  # at most this many batches per run: a backlog drains over a few runs


async def sweep_finished(ctx: dict[str, Any]) -> int:
    """Cron: remove missions that finished more than ``summary_retention_seconds`` ago."""
    runtime = _runtime(ctx)
    keep = runtime.settings.summary_retention_seconds
    if keep == 0:
        return 0
    cutoff_ms = int(time.time() * 1000) - keep * 1000
    removed = 0
    for _ in range(SWEEP_BATCHES):
        swept = await runtime.store.sweep_finished(cutoff_ms, SWEEP_BATCH)
        removed += swept
        if swept < SWEEP_BATCH:
            break
    if removed:
        log.info("removed %d mission(s) finished more than %d s ago", removed, keep)
    return removed
