"""/metrics (Prometheus text, parsed with prometheus_client's own parser) after real missions run by
real in-process workers, and the workers' JSON log lines. Tests marked xfail expose bugs or doubts."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings
from mission.events import PubSubHub
from mission.logs import JsonFormatter
from mission.models import MissionStatus
from mission.service import MissionService
from tests import agents
from tests.conftest import TEST_TEMPLATES, RunningApi, StartWorker, eventually, run_to_end
from tests.gql import TRANSPORT_WS, WsClient

pytestmark = pytest.mark.timeout(60)

# One template of our own (tests/templates.json is shared): an agent that spends once.
SPEND = {
    "id": "spend_once",
    "name": "Spend once",
    "sector": "Test",
    "goal": "One agent spends inputs.charge and succeeds",
    "squad": [{"role": "payer", "department": "Pay", "agent": "tests.agents:spend_once"}],
    "defaults": {"budget": 10, "ttl": 60, "inputs": {"charge": "2.50"}},
    "limits": {"budget": {"min": 1, "max": 100}, "ttl": {"min": 1, "max": 3600}},
}

FAMILIES = {
    "mission_deployed": "counter",
    "mission_finished": "counter",
    "mission_job_retries": "counter",
    "mission_lease_reaps": "counter",
    "mission_budget_spent": "counter",
    "mission_job_run_seconds": "histogram",
    "mission_llm_calls": "counter",
    "mission_llm_tokens": "counter",
    "mission_llm_unmetered": "counter",
    "mission_llm_call_seconds": "histogram",
    "mission_queue_ready": "gauge",
    "mission_jobs_running": "gauge",
    "mission_missions": "gauge",
    "mission_api_subscriptions": "gauge",
}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The shared test settings, with the test templates plus `spend_once`, from a file of our own."""
    catalogue = json.loads(TEST_TEMPLATES.read_text())
    catalogue["templates"].append(SPEND)
    path = tmp_path / "templates.json"
    path.write_text(json.dumps(catalogue))
    return settings.model_copy(update={"templates_path": path})


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: httpx.AsyncClient, api: RunningApi) -> Samples:
    response = await http.get(api.url.replace("/graphql", "/metrics"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def labelled(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (sample, labels), v in samples.items() if sample == name}


async def _equals(read: Any, expected: float) -> bool:
    return bool(await read() == expected)


async def deploy(service: MissionService, template: str) -> str:
    record, _ = await service.deploy(template)
    return record.id


async def test_metrics_is_prometheus_text_with_every_family(http: httpx.AsyncClient, api: RunningApi) -> None:
    response = await http.get(api.url.replace("/graphql", "/metrics"))
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert {name: families[name].type for name in FAMILIES} == FAMILIES
    samples = await scrape(http, api)
    # An empty store: every figure is zero, every status is listed.
    assert labelled(samples, "mission_missions") == {(("status", s.value),): 0.0 for s in MissionStatus}
    assert value(samples, "mission_job_run_seconds_count") == 0
    assert value(samples, "mission_queue_ready") == value(samples, "mission_jobs_running") == 0
    assert value(samples, "mission_api_subscriptions") == 0
    assert labelled(samples, "mission_deployed_total") == {}


async def test_queue_depth_counts_due_jobs_before_any_worker(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService
) -> None:
    await deploy(service, "two_stage")  # two root jobs (Up), one waiting (Down); the deadline job is not due
    await deploy(service, "flaky")  # one root job
    samples = await scrape(http, api)
    assert value(samples, "mission_queue_ready") == 3
    assert value(samples, "mission_jobs_running") == 0
    assert value(samples, "mission_missions", status="QUEUED") == 2
    assert value(samples, "mission_deployed_total", template="two_stage") == 1
    assert value(samples, "mission_deployed_total", template="flaky") == 1


async def test_metrics_after_missions_succeed_fail_and_retry(
    http: httpx.AsyncClient,
    api: RunningApi,
    service: MissionService,
    hub: PubSubHub,
    start_worker: StartWorker,
) -> None:
    await start_worker()
    ids = {
        template: await deploy(service, template) for template in ("two_stage", "flaky", "fail_upstream", "spend_once")
    }
    for mission_id in ids.values():
        await run_to_end(service, hub, mission_id)
    records = {template: await service.store.read_one(mission_id) for template, mission_id in ids.items()}
    statuses = {template: r.status for template, r in records.items() if r is not None}
    assert statuses == {
        "two_stage": MissionStatus.SUCCEEDED,
        "flaky": MissionStatus.SUCCEEDED,
        "fail_upstream": MissionStatus.FAILED,
        "spend_once": MissionStatus.SUCCEEDED,
    }
    tries = sum(job.attempts for r in records.values() if r is not None for job in r.jobs)
    # two_stage 3 agents once; flaky one agent 3 times; fail_upstream: broken twice, fine once, two skipped;
    # spend_once once.
    assert tries == 3 + 3 + 3 + 1

    samples = await scrape(http, api)
    assert labelled(samples, "mission_deployed_total") == {(("template", t),): 1.0 for t in ids}
    assert labelled(samples, "mission_finished_total") == {
        (("status", "SUCCEEDED"), ("template", "two_stage")): 1.0,
        (("status", "SUCCEEDED"), ("template", "flaky")): 1.0,
        (("status", "FAILED"), ("template", "fail_upstream")): 1.0,
        (("status", "SUCCEEDED"), ("template", "spend_once")): 1.0,
    }
    assert value(samples, "mission_job_retries_total") == 2 + 1  # flaky twice, broken once
    assert value(samples, "mission_lease_reaps_total") == 0
    assert value(samples, "mission_budget_spent_total") == 2.5

    # The run-time histogram: one observation per try, buckets cumulative, +Inf the count.
    assert value(samples, "mission_job_run_seconds_count") == tries
    buckets = sorted(
        (float(dict(labels)["le"]), v) for labels, v in labelled(samples, "mission_job_run_seconds_bucket").items()
    )
    assert buckets[-1] == (float("inf"), tries)
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(buckets))
    assert buckets[0][0] == 0.01
    assert 0 <= value(samples, "mission_job_run_seconds_sum") < 30

    # Gauges: by status, matching the store; nothing queued or running any more.
    expected_by_status = {s.value: 0.0 for s in MissionStatus} | {"SUCCEEDED": 3.0, "FAILED": 1.0}
    assert labelled(samples, "mission_missions") == {(("status", s),): n for s, n in expected_by_status.items()}
    assert value(samples, "mission_jobs_running") == 0
    # (mission_queue_ready is not asserted here: with a live worker it may count the worker's own
    # reap_leases cron job for a moment; see test_queue_ready_counts_only_agent_jobs_waiting_for_a_worker.)


async def test_running_jobs_and_live_subscriptions(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, start_worker: StartWorker
) -> None:
    await start_worker()
    mission_id = await deploy(service, "hang")
    await asyncio.wait_for(agents.started(f"{mission_id}:hanger").wait(), 10)
    samples = await scrape(http, api)
    assert value(samples, "mission_jobs_running") == 1
    assert value(samples, "mission_missions", status="RUNNING") == 1
    assert value(samples, "mission_api_subscriptions") == 0

    async def subscriptions() -> float:
        return value(await scrape(http, api), "mission_api_subscriptions")

    ws = await WsClient.connect(api.ws_url, TRANSPORT_WS)
    try:
        await ws.subscribe("subscription($id: ID!) { missionEvents(missionId: $id) { seq } }", id=mission_id)
        await ws.subscribe("subscription { missionUpdates { id } }")
        await eventually(lambda: _equals(subscriptions, 2))  # one per subscription, both on this process
    finally:
        await ws.close()
    await eventually(lambda: _equals(subscriptions, 0))

    await service.cancel_mission(mission_id)
    await asyncio.wait_for(agents.cancelled(f"{mission_id}:hanger").wait(), 10)

    async def settled() -> bool:
        s = await scrape(http, api)
        return (
            value(s, "mission_jobs_running") == 0
            and value(s, "mission_missions", status="CANCELLED") == 1
            and value(s, "mission_missions", status="RUNNING") == 0
        )

    await eventually(settled)
    samples = await scrape(http, api)
    assert value(samples, "mission_finished_total", template="hang", status="CANCELLED") == 1
    assert value(samples, "mission_job_run_seconds_count") == 0  # a try stopped by a cancel is no run time


async def test_queue_ready_counts_only_agent_jobs_waiting_for_a_worker(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService, start_worker: StartWorker
) -> None:
    await start_worker()
    mission_id = await deploy(service, "hang")
    await asyncio.wait_for(agents.started(f"{mission_id}:hanger").wait(), 10)
    samples = await scrape(http, api)
    try:
        assert value(samples, "mission_jobs_running") == 1
        assert value(samples, "mission_queue_ready") == 0  # the one due job is running, nothing waits
    finally:
        await service.cancel_mission(mission_id)


# --- worker logs ---


async def test_worker_log_lines_are_json_with_mission_and_job(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker, caplog: pytest.LogCaptureFixture
) -> None:
    """Formatted as a handler does it in production (at emit time, in the worker's task)."""
    caplog.set_level(logging.INFO, logger="mission.worker")
    caplog.handler.setFormatter(JsonFormatter())
    await start_worker()
    mission_id = await deploy(service, "fail_upstream")
    await run_to_end(service, hub, mission_id)

    lines = [json.loads(line) for line in caplog.text.splitlines()]
    ended = [line for line in lines if line["message"].startswith("attempt ended: error")]
    assert [(line["job_id"], line["attempt"]) for line in ended] == [
        (f"{mission_id}:broken", 1),
        (f"{mission_id}:broken", 2),
    ]
    for line in ended:
        assert line["mission_id"] == mission_id
        assert line["logger"] == "mission.worker" and line["level"] == "info"
        assert line["message"] == "attempt ended: error (RuntimeError: this agent always fails)"
        assert set(line) >= {"at", "level", "logger", "message", "mission_id", "job_id", "attempt"}
    # Lines outside any job carry no stale mission.
    others = [line for line in lines if "job_id" not in line]
    assert all("mission_id" not in line for line in others)


async def test_captured_worker_records_carry_mission_and_job(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mission.worker")
    await start_worker()
    mission_id = await deploy(service, "fail_upstream")
    await run_to_end(service, hub, mission_id)
    [record, *_] = [r for r in caplog.records if r.getMessage().startswith("attempt ended: error")]
    line = json.loads(JsonFormatter().format(record))  # formatted after the fact, outside the worker's task
    assert line["mission_id"] == mission_id
    assert line["job_id"] == f"{mission_id}:broken"
