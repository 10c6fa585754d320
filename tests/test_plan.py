"""Plans: overrides merged and checked, budgets split, job graphs built."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mission.errors import InvalidConfig
from mission.models import Template
from mission.plan import build_plan, merge_config, parse_duration, parse_money, split_budget

TEMPLATE = Template.model_validate(
    {
        "id": "t",
        "name": "T",
        "sector": "Finance",
        "goal": "g",
        "squad": [
            {"role": "scan1", "department": "Intel", "agent": "util.noop", "budget_share": 0.25},
            {"role": "scan2", "department": "Intel", "agent": "util.noop", "budget_share": 0.25},
            {"role": "pick", "department": "Wealth", "agent": "util.noop"},
            {"role": "sign", "department": "Legal", "agent": "util.noop", "timeout": 5, "max_tries": 2},
        ],
        "dependencies": {"Wealth": ["Intel"], "Legal": ["Wealth", "Intel"]},
        "defaults": {
            "budget": 1000,
            "ttl": 600,
            "risk": {"level": "high", "max_drawdown": 0.2},
            "inputs": {"region": "EU", "limit": 5},
        },
        "limits": {"budget": {"min": 100, "max": 50000}, "ttl": {"min": 30, "max": 7200}},
    }
)


def merge(overrides: Any) -> Any:
    return merge_config(TEMPLATE, overrides, max_inputs_bytes=1000)


def fields_of(overrides: Any) -> dict[str, str]:
    with pytest.raises(InvalidConfig) as caught:
        merge(overrides)
    return {p.field: p.message for p in caught.value.problems}


def test_defaults_apply_when_nothing_is_overridden() -> None:
    config = merge(None)
    assert config.budget == Decimal("1000.00") and config.ttl == 600
    assert config.risk.level == "high" and config.risk.max_drawdown == 0.2
    assert config.inputs == {"region": "EU", "limit": 5}


def test_overrides_merge_over_defaults() -> None:
    config = merge({"budget": "5,000", "ttl": "2 hours", "risk": {"maxDrawdown": 0.1}, "inputs": {"limit": 9}})
    assert config.budget == Decimal("5000") and config.ttl == 7200
    assert config.risk.level == "high" and config.risk.max_drawdown == 0.1
    assert config.inputs == {"region": "EU", "limit": 9}


@pytest.mark.parametrize(
    ("overrides", "field", "says"),
    [
        ({"budget": 10}, "budget", "outside this template's range 100..50000"),
        ({"budget": 10**30}, "budget", "outside"),
        ({"budget": "12.345"}, "budget", "two decimal places"),
        ({"budget": float("nan")}, "budget", "finite"),
        ({"budget": True}, "budget", "boolean"),
        ({"budget": "lots"}, "budget", "not an amount"),
        ({"budget": [1]}, "budget", "must be a number"),
        ({"ttl": 1.5}, "ttl", "whole seconds"),
        ({"ttl": -5}, "ttl", "outside"),
        ({"ttl": "3 fortnights"}, "ttl", "not a duration"),
        ({"ttl": 10**12}, "ttl", "outside"),
        ({"risk": "high"}, "risk", "must be an object"),
        ({"risk": {"level": "yolo"}}, "risk.level", "Input should be"),
        ({"risk": {"max_drawdown": 2}}, "risk.maxDrawdown", "less than or equal to 1"),
        ({"risk": {"leverage": 3}}, "risk.leverage", "Extra inputs"),
        ({"inputs": [1, 2]}, "inputs", "JSON object"),
        ({"inputs": {"big": "x" * 2000}}, "inputs", "above the limit of 1000"),
        ({"inputs": {"nan": float("nan")}}, "inputs", "plain JSON"),
        ({"budgett": 5}, "budgett", "unknown setting"),
    ],
)
def test_bad_overrides_name_their_field(overrides: dict[str, Any], field: str, says: str) -> None:
    problems = fields_of(overrides)
    assert field in problems and says in problems[field], problems


def test_every_bad_field_is_reported_at_once() -> None:
    assert set(fields_of({"budget": 1, "ttl": 1, "colour": "red"})) == {"budget", "ttl", "colour"}


def test_config_must_be_an_object() -> None:
    assert "config" in fields_of([("budget", 5)])


def test_parsers() -> None:
    assert parse_money("$1,250.50") == Decimal("1250.50")
    assert parse_money(Decimal("5")) == 5
    assert parse_duration("90m") == 5400 and parse_duration("45 s") == 45 and parse_duration(300) == 300
    with pytest.raises(ValueError):
        parse_duration("1.5h")


@given(
    total=st.integers(min_value=0, max_value=10**12),
    shares=st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=1000)), min_size=1, max_size=60),
)
def test_split_budget_sums_exactly_and_never_goes_negative(total: int, shares: list[float | None]) -> None:
    parts = split_budget(total, shares)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)


def test_split_budget_follows_shares() -> None:
    assert split_budget(1000, [0.25, 0.25, None, None]) == [250, 250, 250, 250]
    assert split_budget(100, [None, None, None]) == [34, 33, 33]
    assert split_budget(1000, [3, 1]) == [750, 250]
    assert split_budget(10, [0, 0]) == [5, 5]


def test_plan_builds_the_department_graph() -> None:
    plan = build_plan(TEMPLATE, merge({"budget": 2000}))
    jobs = {job.role: job for job in plan.jobs}
    assert plan.stages == (("Intel",), ("Wealth",), ("Legal",))
    assert jobs["scan1"].depends_on == () and jobs["scan1"].dependents == ("pick", "sign")
    assert jobs["pick"].depends_on == ("scan1", "scan2")
    assert jobs["sign"].depends_on == ("pick", "scan1", "scan2")
    assert jobs["sign"].timeout == 5 and jobs["sign"].max_tries == 2
    assert [j.role for j in plan.roots] == ["scan1", "scan2"]
    assert sum(j.allocated_cents for j in plan.jobs) == plan.budget_cents == 200_000
    assert jobs["scan1"].allocated_cents == 50_000 and jobs["pick"].allocated_cents == 50_000
