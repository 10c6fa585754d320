"""/metrics in Prometheus' text format.

``mission_*`` figures are cluster-wide (read from Redis at scrape time, the same on every API
server: aggregate them with max, not sum); ``mission_api_*`` ones belong to this process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from mission.models import APPROVAL_WAIT_BUCKETS_MS, JOB_RUN_BUCKETS_MS, LLM_CALL_BUCKETS_MS
from mission.store import Stats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Snapshot(Collector):
    def __init__(self, stats: Stats, subscriptions: int) -> None:
        self.stats = stats
        self.subscriptions = subscriptions

    def collect(self) -> Iterator[Metric]:
        counters = self.stats.counters
        deployed = CounterMetricFamily("mission_deployed", "Missions deployed", labels=["template"])
        finished = CounterMetricFamily(
            "mission_finished", "Missions that ended, by outcome", labels=["template", "status"]
        )
        decisions = CounterMetricFamily(
            "mission_approval_decisions",
            "Approval gates decided, by how (APPROVED, REJECTED, TIMED_OUT) and what was decided",
            labels=["decision", "outcome"],
        )
        for field, value in sorted(counters.items()):
            kind, _, rest = field.partition(":")
            if kind == "deployed":
                deployed.add_metric([rest], value)
            elif kind == "finished":
                template, _, status = rest.rpartition(":")
                finished.add_metric([template, status], value)
            elif kind == "approval_decisions":
                decision, _, outcome = rest.partition(":")
                decisions.add_metric([decision, outcome], value)
        yield deployed
        yield finished
        yield decisions
        yield CounterMetricFamily(
            "mission_approval_requests", "Approval gates reached", counters.get("approval_requests", 0)
        )
        yield CounterMetricFamily(
            "mission_job_retries", "Agent tries retried after an error", counters.get("retries", 0)
        )
        yield CounterMetricFamily(
            "mission_lease_reaps", "Attempts run again because their worker died", counters.get("lease_reaps", 0)
        )
        yield CounterMetricFamily(
            "mission_budget_spent", "Money spent by agents (currency units)", counters.get("spent_cents", 0) / 100
        )

        yield _histogram(
            "mission_job_run_seconds",
            "Run time of agent tries that succeeded or failed",
            counters,
            "job_ms",
            JOB_RUN_BUCKETS_MS,
        )
        yield _histogram(
            "mission_approval_wait_seconds",
            "Time from reaching an approval gate to its decision",
            counters,
            "approval_ms",
            APPROVAL_WAIT_BUCKETS_MS,
        )

        yield from _model_calls(counters)

        yield GaugeMetricFamily(
            "mission_queue_ready", "Agent jobs due and waiting for a worker", self.stats.queue_ready
        )
        yield GaugeMetricFamily(
            "mission_jobs_running", "Agent tries running now (holding a lease)", self.stats.running_jobs
        )
        by_status = GaugeMetricFamily("mission_missions", "Missions by status", labels=["status"])
        for status, n in self.stats.missions_by_status.items():
            by_status.add_metric([status], n)
        yield by_status
        yield GaugeMetricFamily(
            "mission_api_subscriptions", "Live subscriptions on this API process", self.subscriptions
        )


def _histogram(
    name: str, documentation: str, counters: dict[str, int], field: str, bounds_ms: tuple[int, ...]
) -> HistogramMetricFamily:
    """A histogram the scripts count in the stats hash (`observe` in lib.lua), in seconds."""
    cumulative, buckets = 0, []
    for le in bounds_ms:
        cumulative += counters.get(f"{field}_bucket:{le}", 0)
        buckets.append((str(le / 1000), cumulative))
    buckets.append(("+Inf", counters.get(f"{field}_count", 0)))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=counters.get(f"{field}_sum", 0) / 1000)


def _model_calls(counters: dict[str, int]) -> Iterator[Metric]:
    """Model calls (`ctx.llm`) by model and outcome, their tokens, what was not metered, latency."""
    calls = CounterMetricFamily(
        "mission_llm_calls",
        "Model calls by outcome: ok, refused (by the provider), unknown (cut), budget_refused",
        labels=["model", "outcome"],
    )
    tokens = CounterMetricFamily("mission_llm_tokens", "Tokens of settled model calls", labels=["model", "kind"])
    unmetered = CounterMetricFamily(
        "mission_llm_unmetered",
        "Cost above a call's reservation that its allocation could not hold (currency units, not charged)",
        labels=["model"],
    )
    for field, value in sorted(counters.items()):
        parts = field.split("|", 3)
        if parts[0] != "llm" or len(parts) < 3:
            continue
        if parts[1] == "calls" and len(parts) == 4:
            calls.add_metric([parts[3], parts[2]], value)
        elif parts[1] in ("prompt_tokens", "completion_tokens"):
            tokens.add_metric([parts[2], parts[1].removesuffix("_tokens")], value)
        elif parts[1] == "unmetered_cents":
            unmetered.add_metric([parts[2]], value / 100)
    yield calls
    yield tokens
    yield unmetered
    yield _histogram(
        "mission_llm_call_seconds",
        "Latency of model calls that reached the provider",
        counters,
        "llm_ms",
        LLM_CALL_BUCKETS_MS,
    )


async def render(stats_of: Stats, subscriptions: int) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(stats_of, subscriptions))
    return generate_latest(registry)


def now_ms() -> int:
    return int(time.time() * 1000)
