"""Wealth agents (M&A Scout): value and rank the targets the intelligence agents shortlisted.

Reads ``ctx.upstream`` (role → output): every output with a ``shortlist`` (from
``intelligence.screen``) and every output with ``assessments`` (from ``intelligence.assess_risks``),
joined by company name. Inputs (amounts in millions, all optional):

```
deal: {capital: 500, base_multiple: 8.0, control_premium: 0.25, max_targets: 3}
```

The mission's risk level sets the highest risk score accepted (``RISK_TOLERANCE``); a target
with no risk assessment counts as ``UNASSESSED_RISK``. Valuing costs ``VALUE_FEE`` per target;
targets past the allocation are listed as ``unvalued``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from workers.agents import fields
from workers.agents.sdk import AgentContext

VALUE_FEE = Decimal("5.00")
RISK_TOLERANCE = {"low": 0.15, "medium": 0.35, "high": 0.6, "critical": 1.0}
UNASSESSED_RISK = 0.3


@dataclass(frozen=True)
class Deal:
    capital: float = 500.0
    base_multiple: float = 8.0
    control_premium: float = 0.25
    max_targets: int = 3


@dataclass(frozen=True)
class Target:
    name: str
    sector: str
    ebitda: float
    growth: float
    net_debt: float
    score: float


def parse_deal(inputs: dict[str, Any]) -> Deal:
    raw, where, base = fields.section(inputs, "deal"), "inputs.deal", Deal()
    return Deal(
        capital=fields.number(raw, "capital", base.capital, where=where, minimum=0),
        base_multiple=fields.number(raw, "base_multiple", base.base_multiple, where=where, minimum=0, maximum=100),
        control_premium=fields.number(raw, "control_premium", base.control_premium, where=where, minimum=0, maximum=2),
        max_targets=fields.integer(raw, "max_targets", base.max_targets, where=where, minimum=1, maximum=100),
    )


def gather(upstream: dict[str, Any]) -> tuple[list[Target], dict[str, dict[str, Any]]]:
    """Shortlisted targets (best score first, each name once) and risk assessments by name."""
    targets: dict[str, Target] = {}
    risks: dict[str, dict[str, Any]] = {}
    for role in sorted(upstream):
        output = upstream[role]
        if not isinstance(output, dict):
            continue
        for where, item in fields.records(output, "shortlist", where=f"upstream.{role}"):
            target = Target(
                name=fields.text(item, "name", where=where),
                sector=fields.text(item, "sector", "unknown", where=where),
                ebitda=fields.number(item, "ebitda", where=where),
                growth=fields.number(item, "growth", 0.0, where=where),
                net_debt=fields.number(item, "net_debt", 0.0, where=where),
                score=fields.number(item, "score", 0.0, where=where),
            )
            targets.setdefault(target.name.casefold(), target)
        for where, item in fields.records(output, "assessments", where=f"upstream.{role}"):
            name = fields.text(item, "name", where=where)
            risks.setdefault(name.casefold(), item)
    ordered = sorted(targets.values(), key=lambda t: (-t.score, t.name))
    return ordered, risks


def value_target(target: Target, deal: Deal) -> dict[str, float]:
    """EBITDA multiple adjusted for growth, minus net debt, plus the control premium."""
    multiple = deal.base_multiple * (1 + fields.clamp(target.growth, -0.5, 0.5))
    enterprise = max(target.ebitda, 0.0) * multiple
    equity = enterprise - target.net_debt
    offer = max(equity, 0.0) * (1 + deal.control_premium)
    return {
        "multiple": round(multiple, 2),
        "enterprise_value": round(enterprise, 2),
        "equity_value": round(equity, 2),
        "offer_price": round(offer, 2),
    }


def rank_targets_plan(
    targets: list[Target], risks: dict[str, dict[str, Any]], deal: Deal, risk_level: str
) -> dict[str, Any]:
    """Risk-adjusted ranking, then recommendations in rank order within capital and target count."""
    tolerance = RISK_TOLERANCE.get(risk_level, RISK_TOLERANCE["medium"])
    ranked: list[dict[str, Any]] = []
    excluded: list[dict[str, str]] = []
    for target in targets:
        assessment = risks.get(target.name.casefold())
        where = f"assessment of {target.name}"
        if assessment is None:
            risk, level, flags = UNASSESSED_RISK, "unassessed", 0
        else:
            risk = fields.number(assessment, "risk_score", UNASSESSED_RISK, where=where, minimum=0, maximum=1)
            level = fields.text(assessment, "risk_level", "unknown", where=where)
            found = assessment.get("flags")
            flags = len(found) if isinstance(found, list) else 0
        if risk > tolerance:
            excluded.append(
                {"name": target.name, "reason": f"risk {risk:.2f} above the {risk_level} tolerance {tolerance}"}
            )
            continue
        value = value_target(target, deal)
        if value["offer_price"] <= 0:
            excluded.append({"name": target.name, "reason": "no equity value after net debt"})
            continue
        adjusted = round(target.score * (1 - risk), 1)
        ranked.append(
            {"name": target.name, "sector": target.sector, "score": target.score, "risk_score": risk,
             "risk_level": level, "red_flags": flags, "adjusted_score": adjusted, **value}
        )  # fmt: skip
    ranked.sort(key=lambda r: (-r["adjusted_score"], r["name"]))

    left = deal.capital
    recommended: list[str] = []
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank
        if len(recommended) >= deal.max_targets:
            decision = f"not recommended: {deal.max_targets} targets already chosen"
        elif row["offer_price"] > left:
            decision = f"not recommended: offer exceeds the {left:.1f} of capital left"
        else:
            left -= row["offer_price"]
            recommended.append(row["name"])
            decision = "recommended"
        row["recommended"] = decision == "recommended"
        row["rationale"] = (
            f"score {row['score']:g} at {row['risk_level']} risk {row['risk_score']:.2f} -> {row['adjusted_score']:g}; "
            f"EV {row['enterprise_value']:g} at {row['multiple']:g}x EBITDA, offer {row['offer_price']:g} "
            f"incl. {deal.control_premium:.0%} premium; {decision}"
        )
    return {
        "capital": deal.capital,
        "committed": round(deal.capital - left, 2),
        "risk_tolerance": {"level": risk_level, "max_risk_score": tolerance},
        "ranked": ranked,
        "recommended": recommended,
        "excluded": excluded,
    }


async def rank_targets(ctx: AgentContext) -> dict[str, Any]:
    """Value the upstream shortlist and rank it within ``inputs.deal.capital`` and the mission's risk."""
    deal = parse_deal(ctx.inputs)
    targets, risks = gather(ctx.upstream)
    level = str(ctx.risk.get("level") or "medium")
    paid = await ctx.pay_per_item(VALUE_FEE, len(targets), "targets valued")
    await ctx.progress(0.5, f"valuing {paid} of {len(targets)} shortlisted targets")
    result = rank_targets_plan(targets[:paid], risks, deal, level)
    result["unvalued"] = [t.name for t in targets[paid:]]
    await ctx.progress(1.0, f"{len(result['recommended'])} targets recommended")
    return result
