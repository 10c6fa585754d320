"""Metrics: values over repetitions, their median and range, and the target they are judged by."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Op = Literal[">=", "<="]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Target:
    op: Op
    value: float

    def met(self, measured: float) -> bool:
        if math.isnan(measured):
            return False
        return measured >= self.value if self.op == ">=" else measured <= self.value

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass
class Metric:
    """One row of the table: a value per repetition, judged on the median."""

    bench: str
    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    target: Target | None = None
    note: str = ""

    @property
    def median(self) -> float:
        finite = [v for v in self.values if not math.isnan(v)]
        return statistics.median(finite) if finite else math.nan

    @property
    def low(self) -> float:
        return min(self.values, default=math.nan)

    @property
    def high(self) -> float:
        return max(self.values, default=math.nan)

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "PASS" if self.target.met(self.median) else "MISS"

    def as_json(self) -> dict[str, Any]:
        def clean(value: float) -> float | None:
            return None if math.isnan(value) else value

        return {
            "bench": self.bench,
            "metric": self.name,
            "unit": self.unit,
            "median": clean(self.median),
            "min": clean(self.low),
            "max": clean(self.high),
            "values": [clean(v) for v in self.values],
            "target": str(self.target) if self.target else None,
            "verdict": self.verdict or None,
            "note": self.note,
        }


class Metrics:
    """The rows of one benchmark, filled in repetition by repetition."""

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.rows: dict[str, Metric] = {}

    def declare(self, name: str, unit: str, target: Target | None = None, note: str = "") -> Metric:
        metric = self.rows.get(name)
        if metric is None:
            metric = self.rows[name] = Metric(self.bench, name, unit, target=target, note=note)
        return metric

    def add(self, name: str, value: float, unit: str = "", target: Target | None = None, note: str = "") -> None:
        self.declare(name, unit, target, note).values.append(float(value))

    def ratio(self, name: str, numerator: float, denominator: float, target: Target | None = None) -> None:
        self.add(name, numerator / denominator if denominator else math.nan, "x", target)

    def all(self) -> list[Metric]:
        return list(self.rows.values())
