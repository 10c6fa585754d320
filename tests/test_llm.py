"""Model agents against the real embedded model (llama.cpp serving SmolLM2-135M on loopback):
reservations, settlement and the budget invariant, shrinking and refusal, calls cut by a cancel or
the deadline, JSON output, unpriced models, the provider key. Shapes, usage and money are asserted,
never the model's words."""

from __future__ import annotations

import asyncio
import logging
import random
import string
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from config.settings import DEFAULT_TEMPLATES, Settings
from mission.events import PubSubHub
from mission.llm import Allowance, Price
from mission.models import JobStatus, MissionStatus
from mission.records import MissionRecord
from mission.service import MissionService
from server.metrics import now_ms, render
from server.model_local import MODEL_NAME, LocalModel
from server.redis_local import LocalRedis
from tests.agents import cancelled
from tests.conftest import TEST_SETTINGS, RunningApi, StartWorker, eventually, run_to_end
from workers.settings import create_worker

PROVIDER_KEY = "sk-provider-key-never-logged-0123456789"
# One cent per token, in and out: costs are token counts, easy to check.
PRICES = {MODEL_NAME: {"input": "10000", "output": "10000"}}
PRICE = Price.of(Decimal("10000"), Decimal("10000"))


@pytest.fixture
def settings(redis_server: LocalRedis, model_server: LocalModel) -> Settings:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return Settings(
        redis_url=redis_server.url,
        llm_base_url=model_server.base_url,
        llm_api_key=PROVIDER_KEY,
        llm_prices=PRICES,
        **TEST_SETTINGS,
    )


async def allowance(start_worker: StartWorker) -> Allowance:
    """The allowance the worker uses (raised to what it measured on the model server)."""
    worker = await start_worker()
    found: Allowance = worker.ctx["runtime"].models.allowance
    return found


def worst_cents(bound_allowance: Allowance, content: str, max_tokens: int) -> int:
    return PRICE.cents(bound_allowance.prompt_bound([{"role": "user", "content": content}]), max_tokens)


async def finished(service: MissionService, mission_id: str) -> MissionRecord:
    record = await service.store.read_one(mission_id, outputs=True)
    assert record is not None
    return record


def llm_events(events: list[Any]) -> list[Any]:
    return [e for e in events if e.type == "job.llm_call"]


USAGE_QUERY = """query($id: ID!) { mission(id: $id) {
  budget { spent } usage { promptTokens completionTokens calls }
  jobs { role budget { spent } usage { promptTokens completionTokens calls } } } }"""


async def test_a_squad_of_computing_and_model_agents_succeeds_with_tokens_and_cost(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker, api: RunningApi
) -> None:
    await start_worker()
    record, _ = await service.deploy("llm_pair")
    events = await run_to_end(service, hub, record.id, timeout=60)
    mission = await finished(service, record.id)
    assert mission.status is MissionStatus.SUCCEEDED, mission.failure_reason
    jobs = {job.role: job for job in mission.jobs}
    writer, scorer = jobs["writer"], jobs["scorer"]
    assert isinstance(writer.output["text"], str) and writer.output["model"] == MODEL_NAME
    # the JSON-schema agent returns the parsed object the schema asked for
    assert isinstance(scorer.output["json"], dict) and isinstance(scorer.output["json"]["score"], int)
    for job in (writer, scorer):
        assert job.usage.calls == 1 and job.usage.prompt_tokens > 0 and 0 < job.usage.completion_tokens <= 16
        # one cent per token: the charge is exactly the reported usage
        assert job.budget.spent_cents == job.usage.prompt_tokens + job.usage.completion_tokens
    assert jobs["data"].usage.calls == 0
    assert mission.usage.calls == 2
    assert mission.usage.prompt_tokens == writer.usage.prompt_tokens + scorer.usage.prompt_tokens
    calls = llm_events(events)
    assert len(calls) == 2 and {e.data["outcome"] for e in calls} == {"ok"}
    assert mission.budget.spent == sum(Decimal(e.data["cost"]) for e in calls) > 0
    assert all(e.data["latencyMs"] >= 0 and e.data["unmetered"] == "0.00" for e in calls)
    # the API: TokenUsage on the mission and on each job, beside money
    async with httpx.AsyncClient() as client:
        answer = await client.post(api.url, json={"query": USAGE_QUERY, "variables": {"id": record.id}})
    shown = answer.json()["data"]["mission"]
    assert shown["usage"] == {
        "promptTokens": mission.usage.prompt_tokens,
        "completionTokens": mission.usage.completion_tokens,
        "calls": 2,
    }
    assert Decimal(shown["budget"]["spent"]) == mission.budget.spent
    assert {job["role"]: job["usage"]["calls"] for job in shown["jobs"]} == {"data": 0, "writer": 1, "scorer": 1}


async def test_concurrent_calls_never_take_spent_past_the_allocation(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    bound = await allowance(start_worker)
    worst = worst_cents(bound, "Say hi", 8)
    allocated = 5 * worst  # room for 5 worst-case reservations, 20 calls at once
    record, _ = await service.deploy(
        "llm_calls", {"budget": str(Decimal(allocated) / 100), "inputs": {"parallel": 20, "max_tokens": 8}}
    )
    seen: list[int] = []

    async def watch() -> None:
        while True:
            current = await service.store.read_one(record.id)
            assert current is not None
            seen.append(current.jobs[0].budget.spent_cents)
            seen.append(current.budget.spent_cents)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        events = await run_to_end(service, hub, record.id, timeout=90)
    finally:
        watcher.cancel()
    mission = await finished(service, record.id)
    assert mission.status is MissionStatus.SUCCEEDED, mission.failure_reason
    job = mission.jobs[0]
    output = job.output
    assert len(output["calls"]) + output["refused"] == 20
    assert len(output["calls"]) >= 5 and output["refused"] > 0  # five fit at once; the rest wait for none
    assert seen and max(seen) <= allocated
    calls = llm_events(events)
    assert all(Decimal(e.data["spent"]) <= Decimal(e.data["allocated"]) for e in calls)
    assert len(calls) == len(output["calls"]) == job.usage.calls
    # what was spent is exactly what the settled calls cost: every reservation was released
    assert mission.budget.spent == job.budget.spent == sum(Decimal(e.data["cost"]) for e in calls)
    assert job.budget.spent_cents == job.usage.prompt_tokens + job.usage.completion_tokens <= allocated
    assert all(call["maxTokens"] <= 8 for call in output["calls"])
    # /metrics: calls by model and outcome, tokens, latency
    text = (await render(await service.store.stats(now_ms()), 0)).decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    by_outcome = {
        s.labels["outcome"]: s.value for s in families["mission_llm_calls"].samples if s.name.endswith("_total")
    }
    assert by_outcome == {"ok": len(output["calls"]), "budget_refused": output["refused"]}
    tokens = {s.labels["kind"]: s.value for s in families["mission_llm_tokens"].samples if s.name.endswith("_total")}
    assert tokens == {"prompt": job.usage.prompt_tokens, "completion": job.usage.completion_tokens}
    latency = {s.name: s.value for s in families["mission_llm_call_seconds"].samples}
    assert latency["mission_llm_call_seconds_count"] == len(output["calls"])


async def test_max_tokens_shrinks_to_what_the_allocation_holds(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    bound = await allowance(start_worker)
    prompt_cents = worst_cents(bound, "Say hi", 0)
    allocated = prompt_cents + 20  # the prompt's bound and 20 completion tokens
    record, _ = await service.deploy(
        "llm_calls", {"budget": str(Decimal(allocated) / 100), "inputs": {"max_tokens": 200}}
    )
    await run_to_end(service, hub, record.id, timeout=60)
    mission = await finished(service, record.id)
    assert mission.status is MissionStatus.SUCCEEDED, mission.failure_reason
    [call] = mission.jobs[0].output["calls"]
    assert call["maxTokens"] == 20
    assert call["completionTokens"] <= 20
    assert mission.budget.spent_cents == call["promptTokens"] + call["completionTokens"] <= allocated


async def test_a_call_the_allocation_cannot_hold_is_refused_before_sending(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    bound = await allowance(start_worker)
    allocated = worst_cents(bound, "Say hi", 8) - 1  # short of the smallest useful call
    record, _ = await service.deploy(
        "llm_calls", {"budget": str(Decimal(allocated) / 100), "inputs": {"max_tokens": 8}}
    )
    events = await run_to_end(service, hub, record.id, timeout=30)
    mission = await finished(service, record.id)
    assert mission.status is MissionStatus.SUCCEEDED
    assert mission.jobs[0].output == {"calls": [], "refused": 1}
    assert mission.usage.calls == 0 and mission.budget.spent_cents == 0
    assert not llm_events(events)


async def test_an_unpriced_model_is_refused(service: MissionService, hub: PubSubHub, start_worker: StartWorker) -> None:
    await start_worker()
    record, _ = await service.deploy("llm_calls", {"inputs": {"model": "unpriced-model"}})
    await run_to_end(service, hub, record.id, timeout=30)
    mission = await finished(service, record.id)
    assert mission.status is MissionStatus.FAILED
    job = mission.jobs[0]
    assert job.status is JobStatus.FAILED and job.attempts == 1  # permanent: not retried
    assert "ModelNotPriced" in (job.error or "") and "unpriced-model" in (job.error or "")
    assert mission.usage.calls == 0 and mission.budget.spent_cents == 0


def long_prompt(words: int = 500) -> str:
    """Fresh random words: the server takes seconds to read them (no prompt cache helps)."""
    rng = random.Random()
    return " ".join("".join(rng.choices(string.ascii_lowercase, k=6)) for _ in range(words))


async def reserved(service: MissionService, mission_id: str) -> int:
    """The job's spent once its call is reserved (in flight)."""
    spent = 0

    async def has_reservation() -> bool:
        nonlocal spent
        record = await service.store.read_one(mission_id)
        spent = 0 if record is None else record.jobs[0].budget.spent_cents
        return spent > 0

    await eventually(has_reservation, timeout=20)
    return spent


async def test_cancel_cuts_a_call_in_flight_and_charges_its_whole_reservation(
    service: MissionService, start_worker: StartWorker
) -> None:
    await start_worker()
    record, _ = await service.deploy("llm_calls", {"inputs": {"content": long_prompt(), "max_tokens": 64}})
    held = await reserved(service, record.id)
    await service.cancel_mission(record.id)
    await asyncio.wait_for(cancelled(f"{record.id}:caller").wait(), 1.0)  # the call is cut within a second

    async def recorded() -> bool:
        mission = await finished(service, record.id)
        return mission.usage.calls == 1

    await eventually(recorded, timeout=10)  # the cut call is settled as unknown: counted, fully charged
    mission = await finished(service, record.id)
    assert mission.status is MissionStatus.CANCELLED
    assert mission.jobs[0].budget.spent_cents == mission.budget.spent_cents == held
    assert mission.usage.prompt_tokens == mission.usage.completion_tokens == 0


async def test_the_deadline_cuts_a_call_in_flight_and_charges_its_whole_reservation(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    await start_worker()
    record, _ = await service.deploy("llm_calls", {"ttl": 2, "inputs": {"content": long_prompt(), "max_tokens": 64}})
    held = await reserved(service, record.id)
    events = await run_to_end(service, hub, record.id, timeout=15)
    assert events[-1].type == "mission.expired"
    await asyncio.wait_for(cancelled(f"{record.id}:caller").wait(), 1.0)
    mission = await finished(service, record.id)
    assert mission.status is MissionStatus.EXPIRED
    assert mission.budget.spent_cents == held


async def test_the_provider_key_is_never_logged_nor_in_outputs_or_events(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await start_worker()
    record, _ = await service.deploy("llm_pair")
    events = await run_to_end(service, hub, record.id, timeout=60)
    mission = await finished(service, record.id)
    assert mission.status is MissionStatus.SUCCEEDED
    assert PROVIDER_KEY not in caplog.text
    assert PROVIDER_KEY not in repr(events) + repr(mission)
    assert PROVIDER_KEY not in repr(service.settings)


async def test_shipped_templates_mix_computing_and_model_agents(settings: Settings) -> None:
    """M&A Scout's memo to the board and Shadow Mirror's JSON summary, written by the model over
    what the computing agents found."""
    shipped = settings.model_copy(update={"templates_path": DEFAULT_TEMPLATES})
    service = MissionService(shipped)
    hub = PubSubHub(service.redis)
    await hub.start()
    worker = create_worker(shipped, handle_signals=False)
    run = asyncio.create_task(worker.async_run())
    try:
        await asyncio.wait_for(worker.ready.wait(), 15)
        scout, _ = await service.deploy("mission_001", {"budget": 5000})
        mirror, _ = await service.deploy("mission_003", {"budget": 2000})
        await asyncio.gather(*(run_to_end(service, hub, m.id, timeout=90) for m in (scout, mirror)))
        by_role = {}
        for mission_id in (scout.id, mirror.id):
            mission = await finished(service, mission_id)
            assert mission.status is MissionStatus.SUCCEEDED, mission.failure_reason
            by_role.update({job.role: job for job in mission.jobs})
            # one call, or two when a try's answer was cut (the model agents have max_tries 2)
            assert 1 <= mission.usage.calls <= 2 and mission.usage.prompt_tokens > 0
    finally:
        await worker.close()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await hub.close()
        await service.close()
    memo = by_role["memo-writer"]
    assert isinstance(memo.output["text"], str) and memo.usage.calls >= 1
    # the memo's prompt carried the ranked targets: far more tokens than the template's own words
    assert memo.usage.prompt_tokens > 200
    summary = by_role["summarizer"].output["json"]
    assert set(summary) == {"headline", "top_risks", "next_step"} and len(summary["top_risks"]) <= 3


async def test_invalid_json_is_a_retryable_failure_and_each_try_is_charged(
    service: MissionService, hub: PubSubHub, start_worker: StartWorker
) -> None:
    await start_worker()
    record, _ = await service.deploy("llm_cut_json")  # 4 tokens cannot hold the schema's object
    events = await run_to_end(service, hub, record.id, timeout=30)
    mission = await finished(service, record.id)
    job = mission.jobs[0]
    assert mission.status is MissionStatus.FAILED and job.attempts == 2  # retried once, as max_tries says
    assert "InvalidModelOutput" in (job.error or "")
    calls = llm_events(events)
    assert [e.data["outcome"] for e in calls] == ["ok", "ok"] and job.usage.calls == 2
    assert all(e.data["completionTokens"] <= 4 for e in calls)
    assert job.budget.spent_cents == job.usage.prompt_tokens + job.usage.completion_tokens > 0


@pytest.mark.parametrize("content", ["Hi", "🚀" * 20, "Ünïcödé, ponctuation… et chiffres 1234567890 " * 3])
async def test_the_measured_allowance_bounds_the_real_prompt_tokens(
    settings: Settings, service: MissionService, hub: PubSubHub, content: str
) -> None:
    """With no configured allowance, what the worker measured on the server's chat template alone
    bounds what the model really counts (its template adds a default system prompt)."""
    measured_only = settings.model_copy(update={"llm_prompt_allowance": 0, "llm_message_allowance": 0})
    worker = create_worker(measured_only, handle_signals=False)
    run = asyncio.create_task(worker.async_run())
    try:
        await asyncio.wait_for(worker.ready.wait(), 15)
        found: Allowance = worker.ctx["runtime"].models.allowance
        assert found.per_prompt > 0 and found.per_message > 0
        record, _ = await service.deploy("llm_calls", {"inputs": {"content": content, "max_tokens": 2}})
        events = await run_to_end(service, hub, record.id, timeout=30)
    finally:
        await worker.close()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    [call] = llm_events(events)
    bound = found.prompt_bound([{"role": "user", "content": content}])
    assert 0 < call.data["promptTokens"] <= bound
    assert call.data["unmetered"] == "0.00"
