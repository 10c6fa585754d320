"""Load: many deploys from many concurrent HTTP clients against an API server and workers that run as
their own processes (so the clients and the server do not share an event loop). Everything must be
accepted, nothing may 5xx, every mission must succeed with a gap-free log inside its budget.

Throughput is printed (``pytest -s``), never asserted. The heavier variant carries the ``soak``
marker: skipped unless selected with ``-m soak``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings
from mission.models import MissionStatus
from mission.service import MissionService
from server.redis_local import free_port
from tests.gql import DEPLOY, data
from tests.processes import Processes, event_logs, gap_free_problems

SUCCEEDED = "query { missions(status: SUCCEEDED, first: 0) { totalCount } }"

TERMINAL_FAILURES = [MissionStatus.FAILED, MissionStatus.EXPIRED, MissionStatus.CANCELLED]


def metric(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def load(
    settings: Settings,
    service: MissionService,
    procs: Processes,
    *,
    deploys: int,
    clients: int,
    workers: int,
    template: str = "two_stage",
    timeout: float,
) -> None:
    # the rate limit is not under test here: lift it for the one (open) key every client shares
    api = procs.api(free_port(), settings.redis_url, deploy_rate_limit=10 * deploys)
    children = [procs.worker(settings.redis_url) for _ in range(workers)]
    await asyncio.gather(api.wait_ready(), *(w.wait_ready() for w in children))
    rds, keys = service.redis, service.keys

    statuses: Counter[int] = Counter()
    results: Counter[str] = Counter()
    problems: list[str] = []
    ids: list[str] = []
    latencies: list[float] = []
    todo = iter(range(deploys))  # shared: each client takes the next deploy when it is free

    async def client() -> None:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=1)) as http:
            for _ in todo:
                sent = time.perf_counter()
                try:
                    response = await http.post(api.url, json={"query": DEPLOY, "variables": {"t": template}})
                except httpx.TransportError as exc:
                    problems.append(f"transport: {exc!r}")
                    continue
                latencies.append(time.perf_counter() - sent)
                statuses[response.status_code] += 1
                if response.status_code != 200:
                    problems.append(f"{response.status_code}: {response.text[:300]}")
                    continue
                body = response.json()
                if "errors" in body:
                    problems.append(f"errors: {body['errors']}")
                    continue
                result = body["data"]["deployMission"]
                results[result["__typename"]] += 1
                if result["__typename"] == "MissionDeployed":
                    ids.append(result["mission"]["id"])
                else:
                    problems.append(f"refused: {result}")

    cpu_before = {child: child.cpu_seconds() for child in (api, *children)}
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    deployed_in = time.perf_counter() - started
    assert not problems, problems[:20]
    assert dict(results) == {"MissionDeployed": deploys}
    assert not [code for code in statuses if code >= 500]
    assert len(set(ids)) == deploys

    # every mission ends SUCCEEDED (the index is updated by the same script that ends a mission)
    succeeded_key = keys.index("*", MissionStatus.SUCCEEDED.value)
    failure_keys = [keys.index("*", status.value) for status in TERMINAL_FAILURES]
    async with asyncio.timeout(timeout):
        while True:
            async with rds.pipeline(transaction=False) as pipe:
                pipe.zcard(succeeded_key)
                for key in failure_keys:
                    pipe.zcard(key)
                done, *failed = await pipe.execute()
            assert not any(failed), dict(zip(TERMINAL_FAILURES, failed, strict=True))
            if done == deploys:
                break
            await asyncio.sleep(0.05)
    completed_in = time.perf_counter() - started
    api_cpu = api.cpu_seconds() - cpu_before[api]
    workers_cpu = sum(w.cpu_seconds() - cpu_before[w] for w in children)

    print(
        f"\n{deploys} deploys from {clients} clients in {deployed_in:.1f} s = {deploys / deployed_in:.0f} deploys/s "
        f"(latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {statistics.quantiles(latencies, n=100)[98] * 1000:.0f} ms); "
        f"all SUCCEEDED {completed_in:.1f} s after the first deploy = {deploys / completed_in:.0f} missions/s "
        f"on {workers} workers; CPU per mission: API {api_cpu / deploys * 1000:.1f} ms, "
        f"workers {workers_cpu / deploys * 1000:.1f} ms"
    )

    # every log gap-free; budgets: mission spent <= budget, job spent <= allocation, allocations add up
    found: list[str] = []
    for start in range(0, deploys, 200):
        batch = ids[start : start + 200]
        records = await service.store.read(batch)
        logs = await event_logs(rds, keys, batch)
        for mission_id, record in zip(batch, records, strict=True):
            assert record is not None, mission_id
            if record.status is not MissionStatus.SUCCEEDED:
                found.append(f"{mission_id}: {record.status.value}")
            found += gap_free_problems(mission_id, logs[mission_id], record.seq)
            if not record.budget.spent_cents <= record.budget.allocated_cents:
                found.append(f"{mission_id}: spent {record.budget.spent} of {record.budget.allocated}")
            if sum(job.budget.allocated_cents for job in record.jobs) != record.budget.allocated_cents:
                found.append(f"{mission_id}: allocations do not add up to the budget")
            found += [
                f"{job.id}: spent {job.budget.spent} of {job.budget.allocated}"
                for job in record.jobs
                if not job.budget.spent_cents <= job.budget.allocated_cents
            ]
    assert not found, found[:20]

    # the API agrees, and so do its metrics
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await data(http, api.url, SUCCEEDED))["missions"]["totalCount"] == deploys
        text = (await http.get(f"{api.base}/metrics")).text
    assert metric(text, "mission_deployed_total", template=template) == deploys
    assert metric(text, "mission_finished_total", template=template, status="SUCCEEDED") == deploys
    assert metric(text, "mission_jobs_running") == 0
    assert await rds.zcard(keys.leases) == 0

    # nothing crashed, nothing logged an unexpected error
    assert api.alive and all(w.alive for w in children)
    assert procs.tracebacks() == []


@pytest.mark.timeout(180)  # ~40 s here; the bound leaves room for a machine shared with other work
async def test_a_thousand_deploys_from_fifty_clients_against_two_workers(
    settings: Settings, service: MissionService, procs: Processes
) -> None:
    await load(settings, service, procs, deploys=1_000, clients=50, workers=2, timeout=60)


@pytest.mark.soak
@pytest.mark.timeout(900)
async def test_soak_ten_thousand_deploys_from_a_hundred_clients(
    settings: Settings, service: MissionService, procs: Processes
) -> None:
    await load(settings, service, procs, deploys=10_000, clients=100, workers=2, timeout=600)
