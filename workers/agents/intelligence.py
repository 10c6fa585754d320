"""Intelligence agents (M&A Scout): screen candidate companies and assess their risks.

Inputs (amounts in millions of one currency; every field but ``name``, ``revenue`` and ``ebitda``
is optional):

```
candidates: [{name, sector, revenue, ebitda, growth, debt, cash, top_customer_share, litigation}]
    growth: yearly revenue growth as a fraction (0.12 = 12 %); top_customer_share: 0..1
criteria: {sectors: [str] (empty = any), min_revenue: 10, min_margin: 0.10,
           max_leverage: 3.5, min_growth: 0.0, shortlist_size: 5}
```

Screening costs ``SCREEN_FEE`` per candidate, risk assessment ``ASSESS_FEE``; candidates the
allocation cannot pay for are listed as ``unscreened`` / ``unassessed`` instead of failing the job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from workers.agents import fields
from workers.agents.sdk import AgentContext

SCREEN_FEE = Decimal("2.00")
ASSESS_FEE = Decimal("2.50")
SEVERITY_WEIGHT = {"high": 0.35, "medium": 0.15, "low": 0.05}


@dataclass(frozen=True)
class Company:
    name: str
    sector: str
    revenue: float
    ebitda: float
    growth: float
    debt: float
    cash: float
    top_customer_share: float
    litigation: bool

    @property
    def margin(self) -> float | None:
        return fields.ratio(self.ebitda, self.revenue)

    @property
    def net_debt(self) -> float:
        return self.debt - self.cash

    @property
    def leverage(self) -> float | None:
        """Net debt / EBITDA; None when EBITDA is not positive (leverage is then unbounded)."""
        return self.net_debt / self.ebitda if self.ebitda > 0 else None


@dataclass(frozen=True)
class Criteria:
    sectors: tuple[str, ...] = ()
    min_revenue: float = 10.0
    min_margin: float = 0.10
    max_leverage: float = 3.5
    min_growth: float = 0.0
    shortlist_size: int = 5


def parse_company(item: dict[str, Any], where: str) -> Company:
    return Company(
        name=fields.text(item, "name", where=where),
        sector=fields.text(item, "sector", "unknown", where=where),
        revenue=fields.number(item, "revenue", where=where, minimum=0),
        ebitda=fields.number(item, "ebitda", where=where),
        growth=fields.number(item, "growth", 0.0, where=where, minimum=-1),
        debt=fields.number(item, "debt", 0.0, where=where, minimum=0),
        cash=fields.number(item, "cash", 0.0, where=where, minimum=0),
        top_customer_share=fields.number(item, "top_customer_share", 0.0, where=where, minimum=0, maximum=1),
        litigation=fields.flag(item, "litigation", where=where),
    )


def parse_candidates(inputs: dict[str, Any]) -> list[Company]:
    """The candidates, each name once (names join the screening to the risk assessment)."""
    companies: list[Company] = []
    seen: set[str] = set()
    for where, item in fields.records(inputs, "candidates"):
        company = parse_company(item, where)
        if company.name.casefold() in seen:
            raise ValueError(f"{where}.name {company.name!r} appears more than once")
        seen.add(company.name.casefold())
        companies.append(company)
    return companies


def parse_criteria(inputs: dict[str, Any]) -> Criteria:
    raw = fields.section(inputs, "criteria")
    where = "inputs.criteria"
    base = Criteria()
    return Criteria(
        sectors=tuple(s.casefold() for s in fields.strings(raw, "sectors", where=where)),
        min_revenue=fields.number(raw, "min_revenue", base.min_revenue, where=where, minimum=0),
        min_margin=fields.number(raw, "min_margin", base.min_margin, where=where, minimum=-1, maximum=1),
        max_leverage=fields.number(raw, "max_leverage", base.max_leverage, where=where, minimum=0),
        min_growth=fields.number(raw, "min_growth", base.min_growth, where=where, minimum=-1),
        shortlist_size=fields.integer(raw, "shortlist_size", base.shortlist_size, where=where, minimum=1, maximum=100),
    )


def score(company: Company) -> float:
    """0..100: margin (40), growth (30), low leverage (20), scale (10)."""
    margin = fields.clamp((company.margin or 0.0) / 0.30)
    growth = fields.clamp(company.growth / 0.30)
    leverage = company.leverage
    balance = 0.0 if leverage is None else fields.clamp(1 - max(leverage, 0.0) / 5.0)
    scale = fields.clamp(math.log10(company.revenue) / 3.0) if company.revenue > 1 else 0.0
    return round(40 * margin + 30 * growth + 20 * balance + 10 * scale, 1)


def metrics(company: Company) -> dict[str, Any]:
    margin, leverage = company.margin, company.leverage
    return {
        "name": company.name,
        "sector": company.sector,
        "revenue": company.revenue,
        "ebitda": company.ebitda,
        "growth": company.growth,
        "net_debt": round(company.net_debt, 2),
        "margin": None if margin is None else round(margin, 4),
        "leverage": None if leverage is None else round(leverage, 2),
        "score": score(company),
    }


def misses(company: Company, criteria: Criteria) -> list[str]:
    """Why a company fails the criteria; empty when it passes."""
    reasons = []
    if criteria.sectors and company.sector.casefold() not in criteria.sectors:
        reasons.append(f"sector {company.sector} is not targeted")
    if company.revenue < criteria.min_revenue:
        reasons.append(f"revenue {company.revenue:g} below {criteria.min_revenue:g}")
    margin = company.margin
    if margin is None or margin < criteria.min_margin:
        shown = "n/a" if margin is None else f"{margin:.1%}"
        reasons.append(f"margin {shown} below {criteria.min_margin:.1%}")
    leverage = company.leverage
    if leverage is None and company.net_debt > 0:
        reasons.append("net debt with no positive EBITDA")
    elif leverage is not None and leverage > criteria.max_leverage:
        reasons.append(f"leverage {leverage:.1f}x above {criteria.max_leverage:g}x")
    if company.growth < criteria.min_growth:
        reasons.append(f"growth {company.growth:.1%} below {criteria.min_growth:.1%}")
    return reasons


def screen_companies(companies: list[Company], criteria: Criteria) -> dict[str, Any]:
    """Metrics for every company; the best passing ones (by score, then name) make the shortlist."""
    passed: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for company in companies:
        reasons = misses(company, criteria)
        if reasons:
            rejected.append({"name": company.name, "score": score(company), "reasons": reasons})
        else:
            passed.append(metrics(company))
    passed.sort(key=lambda m: (-m["score"], m["name"]))
    return {
        "criteria": {
            "sectors": list(criteria.sectors),
            "min_revenue": criteria.min_revenue,
            "min_margin": criteria.min_margin,
            "max_leverage": criteria.max_leverage,
            "min_growth": criteria.min_growth,
            "shortlist_size": criteria.shortlist_size,
        },
        "screened": len(companies),
        "shortlist": passed[: criteria.shortlist_size],
        "reserve": [m["name"] for m in passed[criteria.shortlist_size :]],
        "rejected": rejected,
    }


def risk_flags(company: Company) -> list[dict[str, str]]:
    """Red flags with a severity (high, medium, low)."""
    flags: list[dict[str, str]] = []

    def flag(code: str, severity: str, detail: str) -> None:
        flags.append({"code": code, "severity": severity, "detail": detail})

    leverage, margin = company.leverage, company.margin
    if company.ebitda <= 0:
        flag("loss_making", "high", f"EBITDA {company.ebitda:g}")
    if leverage is None and company.net_debt > 0:
        flag("unserviceable_debt", "high", f"net debt {company.net_debt:g} with no positive EBITDA")
    elif leverage is not None and leverage > 4:
        flag("high_leverage", "high", f"net debt {leverage:.1f}x EBITDA")
    elif leverage is not None and leverage > 3:
        flag("elevated_leverage", "medium", f"net debt {leverage:.1f}x EBITDA")
    if company.growth < 0:
        flag("shrinking", "medium", f"revenue growth {company.growth:.1%}")
    if company.top_customer_share > 0.5:
        flag("customer_concentration", "high", f"top customer {company.top_customer_share:.0%} of revenue")
    elif company.top_customer_share > 0.3:
        flag("customer_concentration", "medium", f"top customer {company.top_customer_share:.0%} of revenue")
    if company.litigation:
        flag("litigation", "high", "material litigation pending")
    if margin is not None and 0 < margin < 0.05:
        flag("thin_margin", "low", f"EBITDA margin {margin:.1%}")
    return flags


def assess_company(company: Company) -> dict[str, Any]:
    flags = risk_flags(company)
    risk = round(min(1.0, sum(SEVERITY_WEIGHT[f["severity"]] for f in flags)), 2)
    level = "high" if risk >= 0.5 else "medium" if risk >= 0.2 else "low"
    return {"name": company.name, "risk_score": risk, "risk_level": level, "flags": flags}


async def screen(ctx: AgentContext) -> dict[str, Any]:
    """Screen ``inputs.candidates`` against ``inputs.criteria``: metrics, score, shortlist."""
    companies = parse_candidates(ctx.inputs)
    criteria = parse_criteria(ctx.inputs)
    paid = await ctx.pay_per_item(SCREEN_FEE, len(companies), "companies screened")
    await ctx.progress(0.5, f"screening {paid} of {len(companies)} candidates")
    result = screen_companies(companies[:paid], criteria)
    result["unscreened"] = [c.name for c in companies[paid:]]
    await ctx.progress(1.0, f"{len(result['shortlist'])} shortlisted, {len(result['rejected'])} rejected")
    return result


async def assess_risks(ctx: AgentContext) -> dict[str, Any]:
    """Red flags and a 0..1 risk score for every candidate in ``inputs.candidates``."""
    companies = parse_candidates(ctx.inputs)
    paid = await ctx.pay_per_item(ASSESS_FEE, len(companies), "risk assessments")
    await ctx.progress(0.5, f"assessing {paid} of {len(companies)} candidates")
    assessments = [assess_company(c) for c in companies[:paid]]
    flagged = sum(1 for a in assessments if a["flags"])
    await ctx.progress(1.0, f"{flagged} of {len(assessments)} candidates carry red flags")
    return {"assessments": assessments, "unassessed": [c.name for c in companies[paid:]]}
