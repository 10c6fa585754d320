"""Metering of model calls without a model: the pure arithmetic (prices, prompt bounds, cost), the
reservation and settlement scripts on a real Redis (idempotent by seq, an overrun never charged past
the allocation), the prompt templates' safety and the provider's Retry-After parsing."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from pydantic import ValidationError

from mission.llm import Allowance, Price, measured_allowance
from mission.models import AgentSpec, LLMSpec
from mission.service import MissionService
from mission.store import Reservation, Settlement, Started
from workers.agents.model import render, response_format
from workers.agents.sdk import PermanentError
from workers.models import retry_after

CENT_PER_TOKEN = Price.of(Decimal("10000"), Decimal("10000"))


def test_prices_are_exact_and_round_up_to_the_cent() -> None:
    price = Price.of(Decimal("0.15"), Decimal("0.60"))
    assert price.cents(0, 0) == 0
    assert price.cents(1, 0) == 1  # 0.15 / 1e6 of a unit: a fraction of a cent rounds up
    assert price.cents(1_000_000, 1_000_000) == 75  # 0.15 + 0.60
    assert price.cents(10_000_000, 0) == 150
    assert Price.of(Decimal(0), Decimal(0)).free and CENT_PER_TOKEN.cents(31, 8) == 39


def test_the_prompt_bound_covers_bytes_roles_and_the_template() -> None:
    allowance = Allowance(per_prompt=20, per_message=5)
    messages = [{"role": "system", "content": "é"}, {"role": "user", "content": "Hi"}]
    assert allowance.prompt_bound(messages) == 20 + 2 * 5 + (6 + 2) + (4 + 2)
    # measured on a template: 1 empty message = 30 tokens, 3 = 40: 5 per message, 25 for the prompt
    assert measured_allowance({1: 30, 3: 40}) == Allowance(per_prompt=25, per_message=5)


def test_the_llm_block_is_checked() -> None:
    with pytest.raises(ValidationError, match='needs an "llm" block'):
        AgentSpec(role="w", department="D", agent="llm")
    with pytest.raises(ValidationError, match="only goes with"):
        AgentSpec(role="w", department="D", agent="x.y", llm=LLMSpec(prompt="hi"))
    for bad in ("{{ inputs.__class__.x }}x{{ config }}", "{{ inputs[0] }}", "{{ inputs.a:>10 }}", "{{ ctx.llm }}"):
        with pytest.raises(ValidationError, match="placeholder"):
            LLMSpec(prompt=bad)
    with pytest.raises(ValidationError, match="json_schema only goes with output json"):
        LLMSpec(prompt="x", json_schema={"type": "object"})


def test_placeholders_are_key_paths_rendered_once() -> None:
    data = {"inputs": {"name": "{{ inputs.secret }}", "secret": "s", "n": [1, {"a": 2}]}, "upstream": {}}
    # a value is not rendered again, and format fields are plain text
    assert (
        render("Hi {{ inputs.name }} {0.__class__} {{inputs.n.1.a}}", data) == "Hi {{ inputs.secret }} {0.__class__} 2"
    )
    assert render("{{ inputs.n }}", data) == '[1,{"a":2}]'
    with pytest.raises(PermanentError, match="nothing at 'missing'"):
        render("{{ upstream.missing.x }}", data)
    schema = {"type": "object"}
    assert response_format({"output": "json", "json_schema": schema})["json_schema"]["schema"] == schema
    assert response_format({"output": "text"}) is None


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after(httpx.Response(429, headers={"retry-after": "2"})) == 2.0
    assert retry_after(httpx.Response(429, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after(httpx.Response(429)) is None


def reservation(worst: int, bound: int = 50, max_tokens: int = 50) -> Reservation:
    return Reservation(worst, bound, max_tokens, 16, CENT_PER_TOKEN.input_units, CENT_PER_TOKEN.output_units, "m")


async def running(service: MissionService, budget: str) -> str:
    record, _ = await service.deploy("llm_calls", {"budget": budget})
    assert isinstance(await service.store.start_job(record.id, "caller", 1, 60_000, "test"), Started)
    return record.id


async def spent(service: MissionService, mission_id: str) -> tuple[int, int]:
    record = await service.store.read_one(mission_id)
    assert record is not None
    return record.jobs[0].budget.spent_cents, record.budget.spent_cents


async def test_a_reservation_is_applied_once_per_seq_and_settled_once(service: MissionService) -> None:
    store = service.store
    mission_id = await running(service, "2.00")
    assert await store.llm_reserve(mission_id, "caller", 1, 1, reservation(100)) == ("ok", 100, 50)
    assert await store.llm_reserve(mission_id, "caller", 1, 1, reservation(100)) == ("ok", 100, 50)  # retried
    assert await spent(service, mission_id) == (100, 100)
    # the second call does not fit whole: max_tokens shrinks to the 100 cents left minus the prompt's 50
    assert await store.llm_reserve(mission_id, "caller", 1, 2, reservation(150, max_tokens=100)) == ("ok", 100, 50)
    assert await store.llm_reserve(mission_id, "caller", 1, 3, reservation(66, max_tokens=16)) == ("exceeded", 200, 200)
    done = Settlement("ok", "m", prompt_tokens=30, completion_tokens=10, cost_cents=40, latency_ms=5)
    assert await store.llm_settle(mission_id, "caller", 1, 1, done) == 40
    assert await store.llm_settle(mission_id, "caller", 1, 1, done) == -1  # settled already
    assert await spent(service, mission_id) == (140, 140)
    assert await store.llm_settle(mission_id, "caller", 1, 2, Settlement("refused", "m")) == 0
    assert await spent(service, mission_id) == (40, 40)
    record = await store.read_one(mission_id)
    assert record is not None and record.usage.calls == 1 and record.usage.prompt_tokens == 30


async def test_an_overrun_is_charged_only_as_far_as_the_allocation_holds(service: MissionService) -> None:
    store = service.store
    mission_id = await running(service, "1.00")
    assert await store.llm_reserve(mission_id, "caller", 1, 1, reservation(60)) == ("ok", 60, 50)
    # the provider reports more than the bound: 90 cents of usage on a 60-cent reservation, 40 cents free
    over = Settlement("ok", "m", prompt_tokens=80, completion_tokens=10, cost_cents=90)
    assert await store.llm_settle(mission_id, "caller", 1, 1, over) == 90
    assert await spent(service, mission_id) == (90, 90)
    assert await store.llm_reserve(mission_id, "caller", 1, 2, reservation(5, bound=1, max_tokens=4)) == ("ok", 5, 4)
    over = Settlement("ok", "m", prompt_tokens=50, completion_tokens=4, cost_cents=54)
    assert await store.llm_settle(mission_id, "caller", 1, 2, over) == 10  # what was left; 44 unmetered
    assert await spent(service, mission_id) == (100, 100)
    stats = await store.stats(0)
    assert stats.counters["llm|unmetered_cents|m"] == 44


async def test_a_cut_call_keeps_its_whole_reservation(service: MissionService) -> None:
    store = service.store
    mission_id = await running(service, "1.00")
    assert await store.llm_reserve(mission_id, "caller", 1, 1, reservation(70)) == ("ok", 70, 50)
    assert await store.llm_settle(mission_id, "caller", 1, 1, Settlement("unknown", "m")) == 70
    assert await spent(service, mission_id) == (70, 70)
