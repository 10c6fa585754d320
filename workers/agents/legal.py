"""Legal agents (Vendor Vetting): one verdict from the compliance checks that ran upstream.

No inputs of its own: reads every upstream output that has a ``check`` and a ``status``.
Decision: a failed sanctions check rejects; more failed checks than the mission's risk level
tolerates (``FAILS_TOLERATED``) reject; fewer escalate to a named approver; warnings approve with
conditions; clean checks approve. Costs ``REVIEW_FEE`` per check reviewed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from workers.agents import fields
from workers.agents.sdk import AgentContext

REVIEW_FEE = Decimal("1.00")
FAILS_TOLERATED = {"low": 0, "medium": 0, "high": 1, "critical": 1}
WEIGHT = {"critical": 40, "high": 20, "medium": 8, "low": 2}
STATUSES = ("pass", "warn", "fail", "not_run")


def gather_checks(upstream: dict[str, Any]) -> list[dict[str, Any]]:
    """Upstream check results, by check name (each once)."""
    checks: dict[str, dict[str, Any]] = {}
    for role in sorted(upstream):
        output = upstream[role]
        if not isinstance(output, dict) or "check" not in output:
            continue
        where = f"upstream.{role}"
        name = fields.text(output, "check", where=where)
        status = fields.choice(output, "status", STATUSES, "not_run", where=where)
        findings = [item for _, item in fields.records(output, "findings", where=where)]
        checks.setdefault(name, {"check": name, "status": status, "findings": findings})
    return sorted(checks.values(), key=lambda c: str(c["check"]))


def verdict_of(checks: list[dict[str, Any]], risk_level: str = "medium") -> dict[str, Any]:
    ran = [c for c in checks if c["status"] != "not_run"]
    failed = [c["check"] for c in ran if c["status"] == "fail"]
    warned = [c["check"] for c in ran if c["status"] == "warn"]
    tolerated = FAILS_TOLERATED.get(risk_level, 0)
    conditions = [
        f"{c['check']}: {f.get('title', '')} ({f.get('detail', '')})"
        for c in ran
        for f in c["findings"]
        if f.get("severity") in ("medium", "high", "critical")
    ]
    if not ran:
        decision, why = "insufficient_information", "no check ran"
    elif "sanctions" in failed:
        decision, why = "reject", "the sanctions check failed: no risk appetite covers it"
    elif len(failed) > tolerated:
        decision, why = (
            "reject",
            f"{len(failed)} checks failed ({', '.join(failed)}); {risk_level} risk tolerates {tolerated}",
        )
    elif failed:
        decision, why = "escalate", f"{', '.join(failed)} failed: needs a named approver at {risk_level} risk"
    elif warned:
        decision, why = "approve_with_conditions", f"warnings in {', '.join(warned)}"
    else:
        decision, why = "approve", f"all {len(ran)} checks passed"
    penalty = sum(WEIGHT.get(str(f.get("severity")), 0) for c in ran for f in c["findings"])
    return {
        "decision": decision,
        "rationale": why,
        "score": max(0, 100 - penalty) if ran else None,
        "conditions": conditions if decision in ("approve_with_conditions", "escalate") else [],
        "checks": [{"check": c["check"], "status": c["status"], "findings": len(c["findings"])} for c in checks],
        "not_run": [c["check"] for c in checks if c["status"] == "not_run"],
    }


async def verdict(ctx: AgentContext) -> dict[str, Any]:
    """Approve, approve with conditions, escalate or reject, from the upstream compliance checks."""
    checks = gather_checks(ctx.upstream)
    await ctx.pay(REVIEW_FEE, len(checks), "checks reviewed")
    await ctx.progress(0.5, f"reviewing {len(checks)} checks")
    result = verdict_of(checks, str(ctx.risk.get("level") or "medium"))
    await ctx.progress(1.0, f"decision: {result['decision']}")
    return result
