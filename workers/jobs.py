"""The ARQ functions: thin wrappers over the runner and `mission/`."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from mission.models import MissionStatus
from workers.runner import run_attempt
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
    store = _runtime(ctx).store
    for _ in range(50):
        result, status = await store.stop(mission_id, MissionStatus.EXPIRED)
        if result != "early":  # ARQ may start a job a few ms before Redis's clock says it is due
            return status
        await asyncio.sleep(0.1)
    return "early"


async def reap_leases(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron: run again the attempts whose worker stopped renewing the lease; expire overdue missions."""
    runtime = _runtime(ctx)
    if not runtime.may_reap:
        return {"requeued": 0, "expired": 0}  # Redis just came back: live workers renew first
    store = runtime.store
    now_ms = int(time.time() * 1000)
    requeued = 0
    for mission_id, role, attempt in await store.lapsed_leases(now_ms):
        result, _ = await store.finish_job(
            mission_id, role, attempt, "lost", "", lease_losses=runtime.settings.max_lease_losses
        )
        if result == "ok":
            requeued += 1
            log.warning("lease of %s:%s attempt %d lapsed; running it again", mission_id, role, attempt)
        elif result == "stale":  # the attempt ended another way; drop its leftover lease
            await store.redis.zrem(store.keys.leases, store.keys.lease_member(mission_id, role, attempt))
    overdue = await store.redis.zrangebyscore(store.keys.deadlines, "-inf", now_ms, start=0, num=500)
    expired = 0
    for mission_id in overdue:
        result, _ = await store.stop(mission_id, MissionStatus.EXPIRED)
        expired += result == "ok"
    return {"requeued": requeued, "expired": expired}
