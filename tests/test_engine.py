"""The engine end to end: real Redis, real ARQ workers, the templates in tests/templates.json."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from config.settings import Settings
from mission.errors import InvalidConfig, MissionNotFound, TemplateNotFound
from mission.events import PubSubHub
from mission.models import JobStatus, MissionStatus
from mission.service import MissionService
from tests import agents
from tests.conftest import StartWorker, run_to_end

pytestmark = pytest.mark.timeout(60)


async def test_two_stage_mission_runs_in_dependency_order(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    await start_worker()
    result = await service.deploy_mission("two_stage", {"budget": 50, "inputs": {"extra": 1}})
    mission_id = result["mission_id"]
    assert mission_id.startswith("mssn_") and len(mission_id) == 37
    assert result["status"] == "QUEUED"
    assert [j["status"] for j in result["jobs"]] == ["QUEUED", "QUEUED", "WAITING"]
    assert result["jobs"][2]["depends_on"] == [f"{mission_id}:left", f"{mission_id}:right"]

    events = await run_to_end(service, hub, mission_id)
    assert events[-1].type == "mission.succeeded"
    record = await service.get_mission(mission_id, outputs=True)
    assert record is not None and record.status is MissionStatus.SUCCEEDED
    jobs = {job.role: job for job in record.jobs}
    assert all(job.status is JobStatus.SUCCEEDED for job in jobs.values())
    join_started = jobs["join"].started_at
    assert join_started is not None
    for upstream in ("left", "right"):
        finished = jobs[upstream].finished_at
        assert finished is not None and finished <= join_started
    # the downstream agent saw its upstream results and the merged inputs
    assert set(jobs["join"].output["upstream"]) == {"left", "right"}
    assert jobs["join"].output["inputs"] == {"greeting": "hello", "extra": 1}
    # and the event log agrees: the join was queued only after both upstream jobs succeeded
    order = [(e.type, e.job_id) for e in events]
    queued_join = order.index(("job.queued", f"{mission_id}:join"))
    assert order.index(("job.succeeded", f"{mission_id}:left")) < queued_join
    assert order.index(("job.succeeded", f"{mission_id}:right")) < queued_join


async def test_events_are_numbered_from_one_without_gaps(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    await start_worker()
    mission_id = (await service.deploy_mission("fanout"))["mission_id"]
    events = await run_to_end(service, hub, mission_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].type == "mission.deployed"
    stored = await service.store.events(mission_id)
    assert stored == events
    assert await service.store.events(mission_id, after_seq=5) == events[5:]


async def test_failed_upstream_skips_its_dependents(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    await start_worker()
    mission_id = (await service.deploy_mission("fail_upstream"))["mission_id"]
    events = await run_to_end(service, hub, mission_id)
    record = await service.get_mission(mission_id)
    assert record is not None and record.status is MissionStatus.FAILED
    jobs = {job.role: job for job in record.jobs}
    assert jobs["broken"].status is JobStatus.FAILED
    assert jobs["broken"].attempt == 2  # max_tries 2: retried once
    assert "always fails" in (jobs["broken"].error or "")
    assert jobs["fine"].status is JobStatus.SUCCEEDED
    assert jobs["second"].status is JobStatus.SKIPPED
    assert jobs["third"].status is JobStatus.SKIPPED
    assert jobs["second"].started_at is None and jobs["third"].started_at is None
    assert record.failure_reason is not None and "broken" in record.failure_reason
    assert not any(e.type == "job.started" and e.job_id == f"{mission_id}:second" for e in events)


async def test_flaky_agent_succeeds_on_its_third_try_with_new_arq_job_ids(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    await start_worker()
    mission_id = (await service.deploy_mission("flaky"))["mission_id"]
    events = await run_to_end(service, hub, mission_id)
    record = await service.get_mission(mission_id, outputs=True)
    assert record is not None and record.status is MissionStatus.SUCCEEDED
    job = record.jobs[0]
    assert job.attempt == 3 and job.failures == 2
    assert job.output == {"succeeded_on": 3}
    retries = [e for e in events if e.type == "job.retrying"]
    assert [e.data["attempt"] for e in retries] == [2, 3]
    # each try ran as its own ARQ job id, so ARQ's dedup never hit a later try
    started = [e.data["attempt"] for e in events if e.type == "job.started"]
    assert started == [1, 2, 3]


async def test_errors_that_retrying_cannot_fix_are_not_retried(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    await start_worker()
    mission_id = (await service.deploy_mission("bad_input"))["mission_id"]
    events = await run_to_end(service, hub, mission_id)
    record = await service.get_mission(mission_id)
    assert record is not None and record.status is MissionStatus.FAILED
    assert record.jobs[0].attempts == 1 and record.jobs[0].error == "ValueError: inputs.amount must be a number"
    assert not any(e.type == "job.retrying" for e in events)


async def test_outcome_policies_quorum_and_any(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    await start_worker()
    quorum = (await service.deploy_mission("quorum"))["mission_id"]
    any_of = (await service.deploy_mission("any_of"))["mission_id"]
    await run_to_end(service, hub, quorum)
    await run_to_end(service, hub, any_of)
    for mission_id in (quorum, any_of):
        record = await service.get_mission(mission_id)
        assert record is not None and record.status is MissionStatus.SUCCEEDED, record
        assert any(job.status is JobStatus.FAILED for job in record.jobs)


async def test_budget_holds_under_concurrent_spending(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    """8 agents × 8 concurrent spenders each, on two workers, all trying to overspend."""
    await start_worker()
    await start_worker()
    mission_id = (await service.deploy_mission("spenders", {"budget": "100.00"}))["mission_id"]
    await run_to_end(service, hub, mission_id)
    record = await service.get_mission(mission_id)
    assert record is not None
    assert record.status is MissionStatus.FAILED
    assert record.budget.spent_cents <= record.budget.allocated_cents == 10_000
    assert sum(job.budget.allocated_cents for job in record.jobs) == 10_000
    for job in record.jobs:
        assert job.budget.spent_cents <= job.budget.allocated_cents
        # each charge is 37 cents: an agent is refused only when one more would not fit
        assert job.budget.allocated_cents - job.budget.spent_cents < 37
        assert job.status is JobStatus.FAILED
        assert (job.error or "").startswith("budget_exceeded")
    assert record.budget.spent_cents == sum(job.budget.spent_cents for job in record.jobs)
    assert "budget_exceeded" in (record.failure_reason or "")


async def test_agent_timeout_is_enforced_and_retried(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    await start_worker()
    mission_id = (await service.deploy_mission("timeout"))["mission_id"]
    events = await run_to_end(service, hub, mission_id)  # the agent hangs: only its timeout ends it
    record = await service.get_mission(mission_id)
    assert record is not None and record.status is MissionStatus.FAILED
    job = record.jobs[0]
    assert job.status is JobStatus.FAILED and job.attempt == 2
    assert (job.error or "").startswith("timeout")
    ends = [(e.type, e.message) for e in events if e.type in ("job.retrying", "job.failed")]
    assert [kind for kind, _ in ends] == ["job.retrying", "job.failed"]
    assert all(message.startswith("timeout: the agent ran longer than its") for _, message in ends), ends
    assert agents.cancelled(f"{mission_id}:sleeper").is_set()


async def test_ttl_expires_the_mission_and_stops_its_running_agent(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    await start_worker()
    mission_id = (await service.deploy_mission("hang", {"ttl": 2}))["mission_id"]
    events = await run_to_end(service, hub, mission_id, timeout=15)
    assert events[-1].type == "mission.expired"
    record = await service.get_mission(mission_id)
    assert record is not None and record.status is MissionStatus.EXPIRED
    assert record.failure_reason is not None and "deadline" in record.failure_reason
    assert record.finished_at is not None and record.finished_at >= record.deadline
    jobs = {job.role: job for job in record.jobs}
    assert jobs["hanger"].status is JobStatus.EXPIRED
    assert jobs["after"].status is JobStatus.EXPIRED
    await asyncio.wait_for(agents.cancelled(f"{mission_id}:hanger").wait(), 5)


async def test_cancel_stops_a_running_agent_at_once(
    settings: Settings, service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    # A lease of a minute: the heartbeat (every 20 s) cannot be what stops the agent within the
    # wait below, only the control message the cancel publishes.
    await start_worker(ctx={"settings": settings.model_copy(update={"lease_seconds": 60.0})})
    mission_id = (await service.deploy_mission("hang"))["mission_id"]
    await asyncio.wait_for(agents.started(f"{mission_id}:hanger").wait(), 10)
    record = await service.cancel_mission(mission_id)
    assert record.status is MissionStatus.CANCELLED
    assert {job.status for job in record.jobs} == {JobStatus.CANCELLED}
    await asyncio.wait_for(agents.cancelled(f"{mission_id}:hanger").wait(), 10)
    # idempotent: cancelling again changes nothing and adds no event
    seq = record.seq
    again = await service.cancel_mission(mission_id)
    assert again.status is MissionStatus.CANCELLED and again.seq == seq
    events = await service.store.events(mission_id)
    assert [e.type for e in events].count("mission.cancelled") == 1


async def test_cancel_of_unknown_or_malformed_mission(service: MissionService) -> None:
    with pytest.raises(MissionNotFound):
        await service.cancel_mission("mssn_" + "0" * 32)
    with pytest.raises(MissionNotFound):
        await service.cancel_mission("x" * 100_000)
    assert await service.get_mission("../../etc") is None


async def test_idempotent_deploy_returns_the_same_mission(service: MissionService) -> None:
    first = await service.deploy_mission("two_stage", idempotency_key="order-42")
    second = await service.deploy_mission("two_stage", {"budget": 999}, idempotency_key="order-42")
    assert second["mission_id"] == first["mission_id"]
    assert first["created"] is True and second["created"] is False
    assert second["config"]["budget"] == first["config"]["budget"]
    page = await service.store.page("default")
    assert page.ids == [first["mission_id"]]
    other = await service.deploy_mission("two_stage", idempotency_key="order-43")
    assert other["mission_id"] != first["mission_id"]


async def test_deploy_refuses_bad_input_and_stores_nothing(service: MissionService) -> None:
    with pytest.raises(TemplateNotFound):
        await service.deploy_mission("no_such_template")
    with pytest.raises(InvalidConfig) as caught:
        await service.deploy_mission(
            "two_stage", {"budget": -5, "ttl": "forever", "risk": {"level": "reckless"}, "colour": "red"}
        )
    fields = {p.field for p in caught.value.problems}
    assert fields == {"budget", "ttl", "risk.level", "colour"}
    with pytest.raises(InvalidConfig):
        await service.deploy_mission("two_stage", {"inputs": {"blob": "x" * 100_000}})
    assert (await service.store.page("default")).ids == []
    assert await service.redis.zcard(service.keys.queue) == 0


async def test_many_missions_on_two_workers_have_gap_free_logs(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    await start_worker()
    await start_worker()
    ids = [(await service.deploy_mission("fanout"))["mission_id"] for _ in range(20)]
    logs = await asyncio.gather(*(run_to_end(service, hub, mission_id, timeout=30) for mission_id in ids))
    for mission_id, events in zip(ids, logs, strict=True):
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert len({(e.type, e.job_id) for e in events if e.type != "job.queued"}) == sum(
            1 for e in events if e.type != "job.queued"
        )
        record = await service.get_mission(mission_id)
        assert record is not None and record.status is MissionStatus.SUCCEEDED
        assert record.seq == len(events)


async def test_spend_refuses_bad_amounts(service: MissionService) -> None:
    from mission.money import charge_cents

    assert charge_cents(Decimal("0.001")) == 1
    assert charge_cents("12.50") == 1250
    for bad in ("-1", "NaN", "Infinity", "abc", "1e30"):
        with pytest.raises(ValueError):
            charge_cents(bad)


async def test_the_deployed_record_is_exactly_what_redis_holds(service: MissionService) -> None:
    """deploy builds the new mission's record instead of reading it back: the two must agree."""
    for template, config in (("two_stage", {"budget": "12.34"}), ("timeout", None), ("fanout", {"ttl": 99})):
        record, created = await service.deploy(template, config, idempotency_key=f"k-{template}")
        assert created
        assert record == await service.store.read_one(record.id)
        replay, created = await service.deploy(template, config, idempotency_key=f"k-{template}")
        assert not created and replay == record


async def test_long_running_jobs_at_the_queue_head_do_not_hide_due_ones(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    """ARQ keeps running jobs in its queue: 150 of them (other workers', in progress) ahead of a new
    mission must not stop a worker with free slots from finding the mission's jobs."""
    redis, keys = service.redis, service.keys
    async with redis.pipeline(transaction=False) as pipe:
        for i in range(150):
            pipe.zadd(keys.queue, {f"elsewhere:{i}": 1000 + i})
            pipe.set(keys.arq_in_progress_prefix + f"elsewhere:{i}", "1", ex=600)
        await pipe.execute()
    await start_worker(max_jobs=5)
    mission_id = (await service.deploy_mission("two_stage"))["mission_id"]
    events = await run_to_end(service, hub, mission_id)
    assert events[-1].type == "mission.succeeded"
