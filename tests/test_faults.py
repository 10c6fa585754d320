"""Faults, for real: Redis restarted under running missions, the API server SIGKILLed under a subscribed
client, workers SIGKILLed again and again during three-stage missions. Every server, worker and Redis
here is a real child process (logs under the test's tmp_path); each fault is checked to have happened.

Heavier variants carry the ``soak`` marker: skipped unless selected with ``-m soak``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import websockets
from redis.asyncio import Redis

from config.settings import Settings
from mission.events import PubSubHub
from mission.keys import Keys
from mission.models import JobStatus, MissionStatus
from mission.records import Event, MissionRecord
from mission.service import MissionService
from mission.store import MissionStore
from server.redis_local import LocalRedis, free_port
from tests.conftest import TEST_SETTINGS, TEST_TEMPLATES, StartWorker, eventually, run_to_end
from tests.gql import DEPLOY, LEGACY_WS, TRANSPORT_WS, WsClient, data
from tests.processes import Processes, WorkerChild, event_logs, gap_free_problems

COUNTS = """
query {
  succeeded: missions(status: SUCCEEDED, first: 0) { totalCount }
  failed: missions(status: FAILED, first: 0) { totalCount }
  expired: missions(status: EXPIRED, first: 0) { totalCount }
  cancelled: missions(status: CANCELLED, first: 0) { totalCount }
}"""

MISSION_STATUS = "query($id: ID!) { mission(id: $id) { status } }"

EVENTS = """
subscription($id: ID!, $after: Int) {
  missionEvents(missionId: $id, afterSeq: $after) { seq missionId type status jobId message data }
}"""


@contextlib.asynccontextmanager
async def redis_client(url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def deploy(http: httpx.AsyncClient, url: str, template: str, config: dict[str, Any] | None = None) -> str:
    result = (await data(http, url, DEPLOY, t=template, config=config))["deployMission"]
    assert result["__typename"] == "MissionDeployed", result
    mission_id: str = result["mission"]["id"]
    return mission_id


async def read_all(store: MissionStore, ids: list[str], *, outputs: bool = False) -> list[MissionRecord]:
    records: list[MissionRecord] = []
    for start in range(0, len(ids), 100):
        for record in await store.read(ids[start : start + 100], outputs=outputs):
            assert record is not None
            records.append(record)
    return records


def describe(records: list[MissionRecord]) -> str:
    """The state of missions that did not succeed, for a failure message."""
    return "\n".join(
        f"{r.id} {r.status.value} {r.failure_reason or ''} "
        + " ".join(f"{j.role}={j.status.value}/a{j.attempt}/t{j.attempts}/{j.error or ''}" for j in r.jobs)
        for r in records
        if r.status is not MissionStatus.SUCCEEDED
    )


async def check_logs(redis: Redis, keys: Keys, records: list[MissionRecord]) -> dict[str, list[Event]]:
    """Every log gap-free, one terminal event, last; returns the logs."""
    logs = await event_logs(redis, keys, [r.id for r in records])
    problems = [p for r in records for p in gap_free_problems(r.id, logs[r.id], r.seq)]
    assert not problems, "\n".join(problems)
    return logs


async def leftovers(redis: Redis, keys: Keys) -> dict[str, Any]:
    """What a finished workload must not leave behind: leases, queued mission jobs, in-progress keys."""
    queued = [m for m in await redis.zrange(keys.queue, 0, -1) if m.startswith("mssn_")]
    in_progress = [k async for k in redis.scan_iter(f"{keys.arq_in_progress_prefix}mssn_*")]
    return {"leases": await redis.zrange(keys.leases, 0, -1), "queued": queued, "in_progress": in_progress}


# --- 1. Redis restarted (append-only file kept) in the middle of running missions ---


async def wait_all_succeeded_via_api(http: httpx.AsyncClient, url: str, expected: int, timeout: float) -> int:
    """Poll the API until ``expected`` missions SUCCEEDED; returns how many polls failed on the way."""
    failed_polls = 0
    async with asyncio.timeout(timeout):
        while True:
            try:
                response = await http.post(url, json={"query": COUNTS})
                body = response.json()
            except (httpx.TransportError, ValueError):
                body = None
            if body is None or response.status_code != 200 or "errors" in body:
                failed_polls += 1
            else:
                counts = {k: v["totalCount"] for k, v in body["data"].items()}
                assert counts["failed"] == counts["expired"] == counts["cancelled"] == 0, counts
                if counts["succeeded"] == expected:
                    return failed_polls
            await asyncio.sleep(0.1)


async def redis_restart_scenario(
    tmp_path: Path,
    procs: Processes,
    *,
    rounds: int,
    slow_seconds: list[float],
    quick: int,
    down_seconds: float,
    timeout: float,
    **worker_settings: Any,
) -> None:
    port = free_port()  # fixed: Redis comes back on the same port, with the same append-only file
    local = LocalRedis(port=port, data_dir=tmp_path / "redis").start()
    keys = Keys()
    try:
        async with redis_client(local.url) as rds, httpx.AsyncClient(timeout=10) as http:
            store = MissionStore(rds, keys)
            api = procs.api(free_port(), local.url, deploy_rate_limit=100_000)  # not under test here
            workers = [procs.worker(local.url, **worker_settings) for _ in range(2)]
            await asyncio.gather(api.wait_ready(), *(w.wait_ready() for w in workers))
            ids: list[str] = []
            started = time.monotonic()
            for restart in range(rounds):
                slow = [
                    await deploy(http, api.url, "slow_chain", {"inputs": {"seconds": seconds}})
                    for seconds in slow_seconds
                ]
                ids += slow

                async def middle_running(slow: list[str] = slow) -> bool:
                    async with rds.pipeline(transaction=False) as pipe:
                        for mission_id in slow:
                            pipe.hget(keys.job(mission_id, "middle"), "status")
                        return "RUNNING" in await pipe.execute()

                # mid-mission: the workers are at work again, a slow middle agent of this round runs…
                await eventually(middle_running, timeout=30)
                # …and some quick missions are in flight at the moment Redis goes
                for _ in range(quick):
                    ids.append(await deploy(http, api.url, "two_stage"))
                running = await rds.zcard(keys.index("*", MissionStatus.RUNNING.value))
                queued = await rds.zcard(keys.index("*", MissionStatus.QUEUED.value))
                assert running + queued > 0, "no mission was running when Redis stopped"

                redis_process = local.process
                assert redis_process is not None
                local.stop()  # SIGTERM: Redis writes its append-only file and exits
                assert redis_process.returncode == 0, redis_process.returncode
                probe = redis.Redis(port=port, socket_connect_timeout=0.5)
                with pytest.raises(redis.ConnectionError):  # really down…
                    probe.ping()
                probe.close()
                readyz = await http.get(f"{api.base}/readyz")  # …and the API says so
                assert (readyz.status_code, readyz.json()["redis"]) == (503, False)
                await asyncio.sleep(down_seconds)  # only time passing matters: Redis stays down a moment
                local.start()
                print(f"restart {restart + 1}: {running} running and {queued} queued missions when Redis stopped")
                # the append-only file kept every mission
                assert await rds.zcard(keys.index("*")) == len(ids)

            failed_polls = await wait_all_succeeded_via_api(http, api.url, len(ids), timeout)
            print(
                f"{len(ids)} missions SUCCEEDED through {rounds} Redis restart(s) in "
                f"{time.monotonic() - started:.1f} s; {failed_polls} API polls failed after Redis came back"
            )

            records = await read_all(store, ids)
            assert all(r.status is MissionStatus.SUCCEEDED for r in records), describe(records)
            logs = await check_logs(rds, keys, records)
            reaped = sum(1 for events in logs.values() for e in events if e.type == "job.requeued")
            print(f"{reaped} attempt(s) re-run after the outage(s)")

            # nobody crashed, and everyone noticed the outage
            for child in (api, *workers):
                assert child.alive, f"{child} died:\n{child.log_text()[-5000:]}"
                assert "pub/sub connection lost" in child.log_text(), f"{child} never saw Redis go"

            # and they all serve: deploys after the restart run to the end, watched live over a websocket
            # (the API's pub/sub connection is back, and the workers' too)
            after = [
                await deploy(http, api.url, "two_stage"),
                await deploy(http, api.url, "slow_chain", {"inputs": {"seconds": 1}}),
            ]
            client = await WsClient.connect(api.ws_url)
            op = await client.subscribe(EVENTS, id=after[1], after=None)
            watched = []
            async for payload in client.results(op, timeout=30):
                assert "errors" not in payload, payload
                watched.append(payload["data"]["missionEvents"])
            await client.close()
            assert [e["seq"] for e in watched] == list(range(1, len(watched) + 1))
            assert watched[-1]["type"] == "mission.succeeded"

            async def after_ones_succeeded() -> bool:
                statuses = [
                    (await data(http, api.url, MISSION_STATUS, id=mission_id))["mission"]["status"]
                    for mission_id in after
                ]
                assert not {"FAILED", "EXPIRED", "CANCELLED"} & set(statuses), statuses
                return statuses == ["SUCCEEDED", "SUCCEEDED"]

            await eventually(after_ones_succeeded, timeout=20, interval=0.05)
            await check_logs(rds, keys, await read_all(store, after))
            assert await leftovers(rds, keys) == {"leases": [], "queued": [], "in_progress": []}
    finally:
        procs.close()  # before Redis goes: a worker stopped while Redis is away cannot shut down cleanly
        local.stop()


@pytest.mark.timeout(120)
async def test_redis_restart_mid_mission_loses_nothing(tmp_path: Path, procs: Processes) -> None:
    await redis_restart_scenario(
        tmp_path,
        procs,
        rounds=1,
        slow_seconds=[1, 1, 1, 1.5, 1.5, 2, 2.5],
        quick=3,
        down_seconds=1.5,
        timeout=60,
    )


@pytest.mark.soak
@pytest.mark.timeout(900)
async def test_soak_redis_restarted_again_and_again(tmp_path: Path, procs: Processes) -> None:
    await redis_restart_scenario(
        tmp_path,
        procs,
        rounds=15,
        slow_seconds=[0.5, 1, 1, 1.5, 1.5, 2, 2, 2.5, 3, 4],
        quick=10,
        down_seconds=2,
        timeout=300,
        # Each outage outlasts the lease (1.5 s); should a job lose its lease in some of them, the mission
        # must still succeed: allow that, so success is deterministic.
        max_lease_losses=100,
    )


async def mission_ended(service: MissionService, mission_id: str) -> bool:
    """Whether the mission has ended; False while Redis is still coming back."""
    with contextlib.suppress(redis.RedisError):
        status = await service.store.status(mission_id)
        return status is not None and status.terminal
    return False


@pytest.mark.timeout(90)
async def test_no_agent_job_is_started_twice_after_an_outage_longer_than_the_lease(
    tmp_path: Path, procs: Processes
) -> None:
    port = free_port()
    local = LocalRedis(port=port, data_dir=tmp_path / "redis").start()
    settings = Settings(redis_url=local.url, **TEST_SETTINGS)
    service = MissionService(settings)
    try:
        worker = procs.worker(local.url)
        await worker.wait_ready()
        mission_id = (await service.deploy_mission("slow_chain", {"inputs": {"seconds": 5}}))["mission_id"]
        await eventually(lambda: service.redis.zscore(service.keys.leases, f"{mission_id}|middle|1"), timeout=20)
        local.stop()
        await asyncio.sleep(settings.lease_seconds + 0.5)  # only time passing matters: longer than a lease
        local.start()

        await eventually(lambda: mission_ended(service, mission_id), timeout=30, interval=0.05)
        assert await service.store.status(mission_id) is MissionStatus.SUCCEEDED
        assert "pub/sub connection lost" in worker.log_text()  # the worker did see the outage
        arq_errors = [
            line["message"] for line in worker.log_lines() if line.get("logger") == "arq.worker" and "traceback" in line
        ]
        assert arq_errors == []
    finally:
        await service.close()
        procs.close()
        local.stop()


@pytest.mark.timeout(90)
async def test_an_attempt_that_finished_during_an_outage_is_recorded_not_run_again(
    tmp_path: Path, procs: Processes
) -> None:
    local = LocalRedis(port=free_port(), data_dir=tmp_path / "redis").start()
    service = MissionService(Settings(redis_url=local.url, **TEST_SETTINGS))
    try:
        runner = procs.worker(local.url)
        await runner.wait_ready()
        mission_id = (await service.deploy_mission("slow_chain", {"inputs": {"seconds": 0.5}}))["mission_id"]

        async def middle_started() -> bool:
            status = await service.redis.hget(service.keys.job(mission_id, "middle"), "status")  # type: ignore[misc]
            return bool(status == "RUNNING")

        await eventually(middle_started, timeout=20, interval=0.005)
        local.stop()  # the agent finishes while Redis is away; its runner retries recording that
        reaper = procs.worker(local.url)  # another worker, starting up while Redis is away

        def runner_backs_off() -> bool:
            return any(
                line.get("attempt") == 1 and line.get("message") == "Redis unavailable; retrying in 1.00s"
                for line in runner.log_lines()
            )

        # Redis comes back after the runner's sixth try to record the finish, 1.55 s after the agent
        # returned (the runner gives up after 4.5 s), when the attempt's lease (1.5 s) has lapsed
        await eventually(runner_backs_off, timeout=20, interval=0.01)
        local.start()

        await eventually(lambda: mission_ended(service, mission_id), timeout=30, interval=0.05)
        await reaper.wait_ready()
        record = await service.get_mission(mission_id, outputs=True)
        assert record is not None and record.status is MissionStatus.SUCCEEDED
        assert "pub/sub connection lost" in runner.log_text()  # the runner did see the outage
        events = await service.store.events(mission_id)
        middle = next(job for job in record.jobs if job.role == "middle")
        rerun = [(e.type, e.message) for e in events if e.type == "job.requeued"]
        assert (middle.attempt, middle.output, rerun) == (1, {"attempt": 1}, [])
    finally:
        await service.close()
        procs.close()
        local.stop()


# --- 2. the API server SIGKILLed and restarted under a subscribed client ---

SLOW_TRIO = {
    "id": "slow_trio",
    "name": "Slow trio",
    "sector": "Test",
    "goal": "Three slow stages",
    "squad": [
        {"role": "one", "department": "A", "agent": "tests.agents:slow"},
        {"role": "two", "department": "B", "agent": "tests.agents:slow"},
        {"role": "three", "department": "C", "agent": "tests.agents:slow"},
    ],
    "dependencies": {"B": ["A"], "C": ["B"]},
    "defaults": {"budget": 10, "ttl": 120, "inputs": {"seconds": 2.5}},
    "limits": {"budget": {"min": 1, "max": 100}, "ttl": {"min": 1, "max": 3600}},
}


@pytest.fixture
def slow_trio_templates(tmp_path: Path) -> Path:
    raw = json.loads(TEST_TEMPLATES.read_text())
    raw["templates"].append(SLOW_TRIO)
    path = tmp_path / "templates.json"
    path.write_text(json.dumps(raw))
    return path


async def reconnect(url: str, protocol: str, attempts: int = 300, delay: float = 0.1) -> tuple[WsClient, int]:
    """Connect, retrying while nothing listens (bounded); returns the client and the tries it took."""
    for attempt in range(1, attempts + 1):
        try:
            return await WsClient.connect(url, protocol), attempt
        except (OSError, websockets.exceptions.WebSocketException, TimeoutError):
            await asyncio.sleep(delay)
    raise AssertionError(f"could not reconnect to {url} in {attempts} tries")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_api_server_killed_and_restarted_under_a_subscribed_client(
    protocol: str,
    settings: Settings,
    service: MissionService,
    start_worker: StartWorker,
    procs: Processes,
    slow_trio_templates: Path,
) -> None:
    await start_worker()
    port = free_port()
    first = procs.api(port, settings.redis_url, templates_path=slow_trio_templates)
    await first.wait_ready()
    async with httpx.AsyncClient(timeout=10) as http:
        mission_id = await deploy(http, first.url, "slow_trio")

    seen: list[dict[str, Any]] = []
    client = await WsClient.connect(first.ws_url, protocol)
    op = await client.subscribe(EVENTS, id=mission_id, after=None)
    async for payload in client.results(op):
        assert "errors" not in payload, payload
        seen.append(payload["data"]["missionEvents"])
        if seen[-1]["type"] == "job.progress" and seen[-1]["jobId"] == f"{mission_id}:one":
            break  # the first slow agent runs: kill the server now

    assert first.kill() == -9
    with pytest.raises(websockets.exceptions.ConnectionClosed):  # the client sees its server go
        while True:
            message = await client.receive(timeout=10)
            if message.get("id") == op and message["type"] in ("next", "data"):
                seen.append(message["payload"]["data"]["missionEvents"])
    last = seen[-1]["seq"]

    # While no server runs, the mission goes on: the second slow agent starts (events the client misses).
    async def second_stage_running() -> bool:
        events = await service.store.events(mission_id)
        return any(e.type == "job.progress" and e.job_id == f"{mission_id}:two" for e in events)

    await eventually(second_stage_running, timeout=30, interval=0.05)
    missed_while_down = len(await service.store.events(mission_id)) - last
    assert missed_while_down > 0

    procs.api(port, settings.redis_url, templates_path=slow_trio_templates)  # a new server, same port
    client, tries = await reconnect(first.ws_url, protocol)
    logged_at_resubscribe = len(await service.store.events(mission_id))
    op = await client.subscribe(EVENTS, id=mission_id, after=last)
    resumed = []
    async for payload in client.results(op, timeout=30):
        assert "errors" not in payload, payload
        resumed.append(payload["data"]["missionEvents"])
    await client.close()

    union = seen + resumed
    log = await service.store.events(mission_id)
    assert [e["seq"] for e in union] == list(range(1, len(log) + 1))  # every event, once, in order
    assert [(e["seq"], e["type"], e["jobId"]) for e in union] == [(e.seq, e.type, e.job_id) for e in log]
    assert union[-1]["type"] == "mission.succeeded"
    # the resumed stream replayed what was missed and then went live
    assert resumed[0]["seq"] == last + 1
    assert any(e["seq"] <= logged_at_resubscribe for e in resumed)
    assert any(e["seq"] > logged_at_resubscribe for e in resumed)
    print(
        f"{protocol}: {len(seen)} events before the kill, {missed_while_down} missed while down, "
        f"reconnected after {tries} tries, {len(resumed)} after (replay then live); {len(log)} in all"
    )
    record = await service.get_mission(mission_id)
    assert record is not None and record.status is MissionStatus.SUCCEEDED


# --- 3. workers SIGKILLed again and again during three-stage missions ---


def worker_pid(name: str) -> int:
    """Worker names are ``<host>:<pid>:<random>``."""
    return int(name.rsplit(":", 2)[1])


async def fresh_middles(rds: Redis, keys: Keys, min_attempt: int) -> dict[int, list[tuple[str, int]]]:
    """Running middle attempts (attempt >= ``min_attempt``) that started under a second ago, by worker
    pid: their agent sleeps on for a while, so the worker is surely mid-run when it is killed."""
    now_s, now_us = await rds.time()
    now_ms = now_s * 1000 + now_us // 1000
    found: dict[int, list[tuple[str, int]]] = {}
    for member in await rds.zrange(keys.leases, 0, -1):
        mission_id, role, attempt = member.split("|")
        if role != "middle" or int(attempt) < min_attempt:
            continue
        status, current, started_at, worker = await rds.hmget(  # type: ignore[misc]
            keys.job(mission_id, role), ["status", "attempt", "started_at", "worker"]
        )
        if status == "RUNNING" and current == attempt and now_ms - int(started_at) < 1000:
            found.setdefault(worker_pid(worker), []).append((mission_id, int(attempt)))
    return found


async def kill_workers_repeatedly(
    rds: Redis,
    keys: Keys,
    procs: Processes,
    live: dict[int, WorkerChild],
    redis_url: str,
    rounds: int,
    **worker_settings: Any,
) -> list[tuple[str, int]]:
    """Each round: SIGKILL a worker running a middle agent whose attempt is at least the round
    number (so the same job can be killed again and again), start a replacement, wait until the
    killed attempts were re-run. Returns the killed (mission, attempt) pairs."""
    killed: list[tuple[str, int]] = []
    for round_ in range(1, rounds + 1):
        victims: dict[int, list[tuple[str, int]]] = {}

        async def victim_found(min_attempt: int = round_) -> bool:
            nonlocal victims
            victims = {pid: held for pid, held in (await fresh_middles(rds, keys, min_attempt)).items() if pid in live}
            return bool(victims)

        await eventually(victim_found, timeout=30)
        pid = max(victims, key=lambda p: max(a for _, a in victims[p]))
        victim = live.pop(pid)
        assert victim.kill() == -9
        killed += victims[pid]
        replacement = procs.worker(redis_url, **worker_settings)
        live[replacement.pid] = replacement
        await replacement.wait_ready()

        async def rerun(held: list[tuple[str, int]] = victims[pid]) -> bool:
            attempts = [await rds.hget(keys.job(m, "middle"), "attempt") for m, _ in held]  # type: ignore[misc]
            return all(int(now) > was for now, (_, was) in zip(attempts, held, strict=True))

        await eventually(rerun, timeout=20)
        print(f"round {round_}: killed worker {pid} running middle attempts {victims[pid]}")
    return killed


def started_attempts(events: list[Event], job_id: str) -> list[int]:
    return [e.data["attempt"] for e in events if e.type == "job.started" and e.job_id == job_id]


async def worker_kill_scenario(
    settings: Settings,
    service: MissionService,
    hub: PubSubHub,
    procs: Processes,
    *,
    missions: int,
    workers: int,
    rounds: int,
    seconds: float,
    **worker_settings: Any,
) -> None:
    live = {w.pid: w for w in (procs.worker(settings.redis_url, **worker_settings) for _ in range(workers))}
    await asyncio.gather(*(w.wait_ready() for w in live.values()))
    ids = [
        (await service.deploy_mission("slow_chain", {"inputs": {"seconds": seconds}}))["mission_id"]
        for _ in range(missions)
    ]
    ends = [asyncio.create_task(run_to_end(service, hub, mission_id, timeout=120)) for mission_id in ids]
    rds, keys = service.redis, service.keys
    try:
        killed = await kill_workers_repeatedly(rds, keys, procs, live, settings.redis_url, rounds, **worker_settings)
        await asyncio.gather(*ends)
    finally:
        for end in ends:
            end.cancel()

    records = await read_all(service.store, ids, outputs=True)
    assert all(r.status is MissionStatus.SUCCEEDED for r in records), describe(records)
    logs = await check_logs(rds, keys, records)
    deepest = 0
    for record in records:
        events = logs[record.id]
        for job in record.jobs:
            attempts = started_attempts(events, job.id)
            # attempts only ever go forward, one at a time, and the last one is the one that counted
            assert attempts == list(range(1, len(attempts) + 1)), (job.id, attempts)
            assert job.status is JobStatus.SUCCEEDED
            assert job.attempt == attempts[-1] and job.attempts == len(attempts), (job, attempts)
            succeeded = [e.data["attempt"] for e in events if e.type == "job.succeeded" and e.job_id == job.id]
            assert succeeded == [job.attempt], (job.id, succeeded)
            if job.role == "middle":
                assert job.output == {"attempt": job.attempt}  # the output of the last attempt
                deepest = max(deepest, job.attempt)
    for mission_id, attempt in killed:  # each killed attempt was re-run because its lease lapsed
        requeued = [
            e
            for e in logs[mission_id]
            if e.type == "job.requeued" and e.job_id == f"{mission_id}:middle" and e.data["attempt"] == attempt + 1
        ]
        assert len(requeued) == 1 and "lease" in requeued[0].message, (mission_id, attempt, requeued)
    assert deepest == rounds + 1  # one job was killed in every round and still succeeded
    assert await leftovers(rds, keys) == {"leases": [], "queued": [], "in_progress": []}
    print(f"{len(killed)} attempts killed in {rounds} rounds; deepest attempt {deepest}; all {missions} SUCCEEDED")


@pytest.mark.timeout(120)
async def test_worker_sigkill_repeated_during_three_stage_missions(
    settings: Settings, service: MissionService, hub: PubSubHub, procs: Processes
) -> None:
    # Three kills: no job can lose more than max_lease_losses (3) leases, so every mission must succeed.
    await worker_kill_scenario(settings, service, hub, procs, missions=6, workers=3, rounds=3, seconds=2)


@pytest.mark.soak
@pytest.mark.timeout(900)
async def test_soak_worker_sigkill_many_rounds(
    settings: Settings, service: MissionService, hub: PubSubHub, procs: Processes
) -> None:
    await worker_kill_scenario(
        settings, service, hub, procs, missions=30, workers=3, rounds=12, seconds=2, max_lease_losses=20
    )


@pytest.mark.timeout(90)
async def test_a_job_whose_worker_dies_too_often_fails_with_a_lease_reason(
    settings: Settings, service: MissionService, hub: PubSubHub, procs: Processes
) -> None:
    live = {w.pid: w for w in (procs.worker(settings.redis_url, max_lease_losses=1) for _ in range(2))}
    await asyncio.gather(*(w.wait_ready() for w in live.values()))
    mission_id = (await service.deploy_mission("slow_chain", {"inputs": {"seconds": 3}}))["mission_id"]
    end = asyncio.create_task(run_to_end(service, hub, mission_id, timeout=60))
    rds, keys = service.redis, service.keys
    for attempt in (1, 2):
        holder: dict[int, list[tuple[str, int]]] = {}

        async def running(attempt: int = attempt) -> bool:
            nonlocal holder
            holder = await fresh_middles(rds, keys, attempt)
            return bool(holder)

        await eventually(running, timeout=30)
        [(pid, held)] = holder.items()
        assert held == [(mission_id, attempt)]
        assert live.pop(pid).kill() == -9
        replacement = procs.worker(settings.redis_url, max_lease_losses=1)
        live[replacement.pid] = replacement

    events = await end
    record = await service.get_mission(mission_id)
    assert record is not None and record.status is MissionStatus.FAILED, record
    jobs = {job.role: job for job in record.jobs}
    assert jobs["middle"].status is JobStatus.FAILED and jobs["middle"].attempt == 2
    assert "lease" in (jobs["middle"].error or "") and "lease" in (record.failure_reason or "")
    assert jobs["last"].status is JobStatus.SKIPPED
    assert started_attempts(events, f"{mission_id}:middle") == [1, 2]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert await leftovers(rds, keys) == {"leases": [], "queued": [], "in_progress": []}
