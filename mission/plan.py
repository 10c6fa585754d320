"""From a template and a user's overrides to a checked plan: config, job graph, budget split."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import ValidationError

from mission.errors import InvalidConfig, Problem
from mission.models import MissionConfig, Risk, Template
from mission.money import CENT, to_cents
from mission.templates import department_stages

OVERRIDABLE = ("budget", "ttl", "risk", "inputs")

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86_400, "day": 86_400, "days": 86_400,
}  # fmt: skip
_DURATION = re.compile(r"^\s*(\d{1,9})\s*([a-z]*)\s*$")
_MONEY = re.compile(r"^\s*\$?\s*([0-9][0-9,]*(\.[0-9]*)?|\.[0-9]+)\s*$")


def parse_money(value: Any) -> Decimal:
    """A budget: a number or a string such as ``"5000"``, ``"$5,000"`` or ``"1250.50"``."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    if isinstance(value, (int, float, Decimal)):
        amount = Decimal(str(value))
    elif isinstance(value, str):
        match = _MONEY.match(value)
        if not match:
            raise ValueError(f"{value[:40]!r} is not an amount of money")
        amount = Decimal(match.group(1).replace(",", ""))
    else:
        raise ValueError(f"must be a number, not {type(value).__name__}")
    if not amount.is_finite():
        raise ValueError("must be a finite number")
    exponent = amount.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("has more than two decimal places (money is counted in cents)")
    return amount


def parse_duration(value: Any) -> int:
    """A TTL in whole seconds: an integer or a string such as ``"300"``, ``"5m"``, ``"2 hours"``."""
    if isinstance(value, bool):
        raise ValueError("must be whole seconds, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError("must be whole seconds")
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        raise ValueError("must be whole seconds")
    if isinstance(value, str):
        match = _DURATION.match(value.lower())
        if match:
            number, unit = match.groups()
            if not unit:
                return int(number)
            if unit in _UNITS:
                return int(number) * _UNITS[unit]
        raise ValueError(f"{value[:40]!r} is not a duration (try 300, '5m' or '2 hours')")
    raise ValueError(f"must be whole seconds, not {type(value).__name__}")


N = TypeVar("N", int, Decimal)


def _override(
    overrides: Mapping[str, Any],
    field: str,
    parse: Callable[[Any], N],
    default: N,
    low: N,
    high: N,
    problems: list[Problem],
    unit: str = "",
) -> N:
    """One overridable number: parsed and checked against the template's range (a problem for
    ``field`` otherwise, and the default kept)."""
    if overrides.get(field) is None:
        return default
    try:
        value = parse(overrides[field])
    except ValueError as exc:
        problems.append(Problem(field, str(exc)))
        return default
    if not low <= value <= high:
        problems.append(Problem(field, f"{value}{unit} is outside this template's range {low}..{high}"))
    return value


def merge_config(template: Template, overrides: Mapping[str, Any] | None, *, max_inputs_bytes: int) -> MissionConfig:
    """Template defaults with overrides applied; `InvalidConfig` names every bad field."""
    overrides = overrides or {}
    problems: list[Problem] = []
    if not isinstance(overrides, Mapping):
        raise InvalidConfig([Problem("config", "must be an object of overrides")])
    for key in overrides:
        if key not in OVERRIDABLE:
            problems.append(Problem(str(key)[:64], f"unknown setting; allowed: {', '.join(OVERRIDABLE)}"))
    defaults, limits = template.defaults, template.bounds

    budget = _override(
        overrides, "budget", parse_money, defaults.budget, limits.budget.min, limits.budget.max, problems
    )
    ttl = _override(
        overrides, "ttl", parse_duration, defaults.ttl, limits.ttl.min, limits.ttl.max, problems, " seconds"
    )

    risk = defaults.risk
    if overrides.get("risk") is not None:
        given = overrides["risk"]
        if not isinstance(given, Mapping):
            problems.append(Problem("risk", "must be an object with level and/or max_drawdown"))
        else:
            try:
                risk = Risk.model_validate({**defaults.risk.model_dump(), **_snake(given)})
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    where = ".".join(_camel(str(p)) for p in err["loc"])
                    problems.append(Problem(f"risk.{where}" if where else "risk", err["msg"]))

    inputs = dict(defaults.inputs)
    if overrides.get("inputs") is not None:
        given = overrides["inputs"]
        if not isinstance(given, Mapping):
            problems.append(Problem("inputs", "must be a JSON object"))
        else:
            inputs = deep_merge(inputs, given)
    if nesting(inputs) > MAX_INPUTS_DEPTH:
        problems.append(Problem("inputs", f"nested deeper than {MAX_INPUTS_DEPTH} levels"))
    else:
        try:
            size = len(json.dumps(inputs, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode())
        except (TypeError, ValueError) as exc:  # UnicodeEncodeError (a lone surrogate) is a ValueError
            problems.append(Problem("inputs", f"must be plain JSON text ({str(exc)[:200]})"))
        else:
            if size > max_inputs_bytes:
                problems.append(Problem("inputs", f"{size} bytes of JSON is above the limit of {max_inputs_bytes}"))

    if problems:
        raise InvalidConfig(problems)
    return MissionConfig(budget=budget.quantize(CENT), ttl=ttl, risk=risk, inputs=inputs)


MAX_INPUTS_DEPTH = 32


def nesting(value: Any, limit: int = MAX_INPUTS_DEPTH) -> int:
    """How deeply objects and lists nest in ``value`` (counting stops just past ``limit``)."""
    depth, level = 0, [value]
    while depth <= limit:
        containers = [v for v in level if isinstance(v, (Mapping, list))]
        if not containers:
            break
        depth += 1
        level = [child for c in containers for child in (c.values() if isinstance(c, Mapping) else c)]
    return depth


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: objects merge key by key, anything else (lists too) replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _snake(values: Mapping[str, Any]) -> dict[str, Any]:
    """Accept ``maxDrawdown`` as well as ``max_drawdown``."""
    return {re.sub(r"(?<!^)(?=[A-Z])", "_", str(k)).lower(): v for k, v in values.items()}


def split_budget(total_cents: int, shares: list[float | None]) -> list[int]:
    """Cents per agent by weight; missing shares split the rest equally; the parts sum to the total.

    Largest-remainder rounding keeps the sum exact, so agents' allocations never exceed the budget.
    """
    given = sum(s for s in shares if s is not None)
    missing = sum(1 for s in shares if s is None)
    rest = max(0.0, 1.0 - given)
    weights = [s if s is not None else rest / missing for s in shares]
    total_weight = sum(weights)
    if total_weight <= 0:
        weights, total_weight = [1.0] * len(shares), float(len(shares))
    exact = [total_cents * w / total_weight for w in weights]
    parts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(parts)), key=lambda i: (parts[i] - exact[i], i))
    for i in by_remainder[: total_cents - sum(parts)]:
        parts[i] += 1
    return parts


@dataclass(frozen=True)
class PlannedJob:
    role: str
    department: str
    agent: str
    depends_on: tuple[str, ...]  # roles
    dependents: tuple[str, ...]  # roles
    allocated_cents: int
    timeout: float | None
    max_tries: int
    stage: int
    llm: dict[str, Any] | None = None  # a model agent's `llm` block


@dataclass(frozen=True)
class Plan:
    template: Template
    config: MissionConfig
    jobs: tuple[PlannedJob, ...]
    stages: tuple[tuple[str, ...], ...]  # departments per stage
    gated: tuple[str, ...] = ()  # roles held at the approval gate (the template's `when` was met)

    @property
    def budget_cents(self) -> int:
        return to_cents(self.config.budget)

    @property
    def roots(self) -> list[PlannedJob]:
        return [job for job in self.jobs if not job.depends_on]


@dataclass(frozen=True)
class JobGraph:
    """The part of a plan that depends on the template alone, computed once per template."""

    stages: tuple[tuple[str, ...], ...]  # departments per stage
    stage_of: dict[str, int]  # department -> stage
    depends_on: dict[str, tuple[str, ...]]  # role -> upstream roles
    dependents: dict[str, tuple[str, ...]]  # role -> downstream roles


_graphs: dict[int, tuple[Template, JobGraph]] = {}


def job_graph(template: Template) -> JobGraph:
    """Every agent of a department waits for every agent of its upstream departments (cached)."""
    cached = _graphs.get(id(template))
    if cached is not None and cached[0] is template:
        return cached[1]
    stages = department_stages(template)
    roles_of: dict[str, list[str]] = {}
    for agent in template.squad:
        roles_of.setdefault(agent.department, []).append(agent.role)
    upstream = {dept: tuple(r for up in template.dependencies.get(dept, ()) for r in roles_of[up]) for dept in roles_of}
    downstream: dict[str, list[str]] = {agent.role: [] for agent in template.squad}
    for agent in template.squad:
        for role in upstream[agent.department]:
            downstream[role].append(agent.role)
    graph = JobGraph(
        stages=tuple(tuple(s) for s in stages),
        stage_of={dept: i for i, layer in enumerate(stages) for dept in layer},
        depends_on={agent.role: upstream[agent.department] for agent in template.squad},
        dependents={role: tuple(roles) for role, roles in downstream.items()},
    )
    _graphs[id(template)] = (template, graph)  # the template is kept, so its id stays its own
    return graph


def build_plan(template: Template, config: MissionConfig) -> Plan:
    """The jobs of a mission: the template's graph, with the budget split over the agents."""
    graph = job_graph(template)
    allocations = split_budget(to_cents(config.budget), [a.budget_share for a in template.squad])
    jobs = tuple(
        PlannedJob(
            role=agent.role,
            department=agent.department,
            agent=agent.agent,
            depends_on=graph.depends_on[agent.role],
            dependents=graph.dependents[agent.role],
            allocated_cents=cents,
            timeout=agent.timeout,
            max_tries=agent.max_tries,
            stage=graph.stage_of[agent.department],
            llm=None if agent.llm is None else agent.llm.model_dump(mode="json", exclude_none=True),
        )
        for agent, cents in zip(template.squad, allocations, strict=True)
    )
    gate = template.approval
    gated = (
        ()
        if gate is None or not gate.applies_to(config)
        else tuple(j.role for j in jobs if j.department in gate.before)
    )
    return Plan(template=template, config=config, jobs=jobs, stages=graph.stages, gated=gated)
