"""The table `make bench` prints, and the JSON it writes."""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from bench.stats import Metric


def number(value: float) -> str:
    if math.isnan(value):
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def table(metrics: Sequence[Metric]) -> str:
    header = ("benchmark", "metric", "median", "min–max", "unit", "target", "")
    rows = [
        (
            m.bench,
            m.name,
            number(m.median),
            f"{number(m.low)}–{number(m.high)}" if len(m.values) > 1 else "",
            m.unit,
            str(m.target) if m.target else "",
            m.verdict,
        )
        for m in metrics
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    right = {2, 3}

    def line(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(header), rule]
    previous = None
    for metric, row in zip(metrics, rows, strict=True):
        if previous is not None and metric.bench != previous:
            out.append("")
        out.append(line(row))
        previous = metric.bench
    return "\n".join(out)


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "processor": platform.processor() or platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def write(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def payload(metrics: Sequence[Metric], **extra: Any) -> dict[str, Any]:
    return {**extra, "machine": machine(), "metrics": [m.as_json() for m in metrics]}
