"""A Redis outage is never an agent's failure: agents that charge and report progress in a loop
ride out a restart (graceful, or SIGKILL with the append-only file), are charged exactly once per
charge, and an outage longer than an SDK call may wait hands the attempt back instead of failing it.

Redis and the workers are real child processes; the agents append every charge the SDK accepted
to a ledger file, the oracle for what the mission must have been charged.
"""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import pytest

from config.settings import Settings
from mission.models import MissionStatus
from mission.records import Event, MissionRecord
from mission.service import MissionService
from server.redis_local import LocalRedis, free_port
from tests.conftest import TEST_SETTINGS, eventually
from tests.processes import Processes, event_logs, gap_free_problems

MISSIONS = 6


def ledger_cents(ledger: Path) -> dict[str, int]:
    """mission id -> cents the SDK accepted, as the agents wrote them down."""
    totals: collections.Counter[str] = collections.Counter()
    if ledger.exists():
        for line in ledger.read_text().splitlines():
            mission_id, _role, _attempt, cents = line.split()
            totals[mission_id] += int(cents)
    return dict(totals)


def describe(records: list[MissionRecord]) -> str:
    return "\n".join(
        f"{r.id} {r.status.value} {r.failure_reason or ''} "
        + " ".join(f"{j.role}={j.status.value}/a{j.attempt}/f{j.failures}/{j.error or ''}" for j in r.jobs)
        for r in records
    )


async def outage_scenario(
    tmp_path: Path, procs: Processes, *, kill: bool, down_seconds: float
) -> tuple[list[MissionRecord], dict[str, list[Event]]]:
    """Deploy missions of agents metering in a loop, take Redis away mid-run (SIGTERM or SIGKILL)
    for ``down_seconds``, bring it back on the same port and file; check what every run must hold
    and return the missions as they ended, with their event logs."""
    local = LocalRedis(port=free_port(), data_dir=tmp_path / "redis").start()
    ledger = tmp_path / "ledger.txt"
    service = MissionService(Settings(redis_url=local.url, **TEST_SETTINGS))
    try:
        workers = [procs.worker(local.url) for _ in range(2)]
        await asyncio.gather(*(w.wait_ready() for w in workers))
        ids = []
        for _ in range(MISSIONS):
            record, _ = await service.deploy("metered_chain", {"inputs": {"ledger": str(ledger), "steps": 60}})
            ids.append(record.id)

        async def all_charging() -> bool:  # every mission's first stage is running and has paid
            records = await service.store.read(ids)
            return all(r is not None and r.budget.spent_cents > 0 for r in records)

        await eventually(all_charging, timeout=30)
        process = local.process
        assert process is not None
        if kill:
            process.kill()
            process.wait(10)
            local.process = None
        else:
            local.stop()
            assert process.returncode == 0
        await asyncio.sleep(down_seconds)  # the outage itself: only time passing matters here
        local.start()

        async def all_ended() -> bool:
            records = await service.store.read(ids)
            return all(r is not None and r.status.terminal for r in records)

        await eventually(all_ended, timeout=90, interval=0.1)
        records = [r for r in await service.store.read(ids) if r is not None]
        assert all(r.status is MissionStatus.SUCCEEDED for r in records), describe(records)
        logs = await event_logs(service.redis, service.store.keys, ids)
        problems = [p for r in records for p in gap_free_problems(r.id, logs[r.id], r.seq)]
        assert not problems, "\n".join(problems)
        # no attempt counted as the agent's failure
        assert all(j.failures == 0 for r in records for j in r.jobs), describe(records)
        assert not [e for events in logs.values() for e in events if e.type in ("job.retrying", "job.failed")]
        # charged exactly what the agents were told they paid: no charge lost, none applied twice
        charged = ledger_cents(ledger)
        assert {r.id: r.budget.spent_cents for r in records} == {r.id: charged.get(r.id, 0) for r in records}
        for worker in workers:
            assert worker.alive, worker.log_text()[-3000:]
        return records, logs
    finally:
        procs.close()
        await service.close()
        local.stop()


@pytest.mark.timeout(150)
@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_agents_metering_in_a_loop_ride_out_a_redis_restart(tmp_path: Path, procs: Processes, kill: bool) -> None:
    records, _ = await outage_scenario(tmp_path, procs, kill=kill, down_seconds=2)
    # every agent ran once, through the outage: nothing was re-run
    assert all(j.attempt == 1 for r in records for j in r.jobs), describe(records)


@pytest.mark.timeout(150)
async def test_an_outage_longer_than_an_sdk_call_waits_hands_the_attempt_back(tmp_path: Path, procs: Processes) -> None:
    # An SDK call waits 3 leases (4.5 s here); Redis stays away longer, so the running agents' calls
    # give up and their attempts run again, as new attempts, without using up a try (max_tries is 1).
    records, logs = await outage_scenario(
        tmp_path, procs, kill=False, down_seconds=3 * TEST_SETTINGS["lease_seconds"] + 2
    )
    handed_back = [e for events in logs.values() for e in events if "Redis was unavailable" in (e.message or "")]
    assert handed_back and all(e.type == "job.requeued" for e in handed_back), describe(records)
    assert all(j.max_tries == 1 for r in records for j in r.jobs)


async def test_a_repeated_sdk_call_is_applied_once(service: MissionService) -> None:
    """The spend and progress scripts against a real Redis: a call sent again with the same seq
    (its reply was lost) changes nothing; the next seq is applied."""
    record, _ = await service.deploy("metered_chain", {"inputs": {"steps": 0}})
    store = service.store
    started = await store.start_job(record.id, "first", 1, 60_000, "test")
    assert not isinstance(started, str), started
    assert await store.spend(record.id, "first", 1, 100, "once", 1) == ("ok", 100, 1000)
    assert await store.spend(record.id, "first", 1, 100, "once", 1) == ("ok", 100, 1000)  # the same call again
    assert await store.spend(record.id, "first", 1, 50, "next", 2) == ("ok", 150, 1000)
    assert await store.progress(record.id, "first", 1, 0.5, "half", 3)
    assert await store.progress(record.id, "first", 1, 0.5, "half", 3)
    events = await store.events(record.id)
    assert [e.type for e in events].count("job.spent") == 2
    assert [e.type for e in events].count("job.progress") == 1
    mission = await store.read_one(record.id)
    assert mission is not None and mission.budget.spent_cents == 150
