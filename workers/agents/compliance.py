"""Compliance agents (Vendor Vetting): six independent checks of one vendor, run side by side.

Inputs (amounts in millions; every field optional):

```
vendor: {name, country, owners: [str],
         financials: {revenue, ebitda, cash, debt, current_assets, current_liabilities},
         certifications: [str], handles_personal_data: false, data_regions: [str], dpa_signed: false,
         contract: {annual_fee, liability_cap, termination_notice_days, auto_renewal, audit_rights, sla_uptime},
         spend_share: 0..1, alternatives: int,
         incidents: [{years_ago, severity: low|medium|high|critical, disclosed_days}]}
sanctions_list: [str]        restricted_countries: [str]        allowed_regions: ["EU", "UK", "US"]
```

Each check returns ``{check, status: pass|warn|fail|not_run, findings: [{severity, title, detail}],
metrics}``; high or critical findings fail it, medium ones warn. With no vendor a check does not run.
A check costs ``CHECK_FEE``; sanctions screening adds ``MATCH_FEE`` per name compared.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from workers.agents import fields
from workers.agents.sdk import AgentContext

CHECK_FEE = Decimal("2.00")
MATCH_FEE = Decimal("0.05")
STRONG_CERTS = ("soc2", "soc 2", "iso27001", "iso 27001", "iso/iec 27001")
LEGAL_SUFFIXES = frozenset(
    {"ltd", "limited", "inc", "incorporated", "llc", "llp", "gmbh", "sa", "sas", "ag", "plc", "corp",
     "corporation", "co", "company", "bv", "nv", "srl", "spa", "oy", "ab", "as"}
)  # fmt: skip
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
DEFAULT_REGIONS = ("EU", "UK", "US")

Finding = dict[str, str]


def _finding(severity: str, title: str, detail: str) -> Finding:
    return {"severity": severity, "title": title, "detail": detail}


def result(check: str, findings: list[Finding], metrics: dict[str, Any]) -> dict[str, Any]:
    severities = {f["severity"] for f in findings}
    status = "fail" if severities & {"critical", "high"} else "warn" if "medium" in severities else "pass"
    ordered = sorted(findings, key=lambda f: (SEVERITY_RANK.get(f["severity"], 9), f["title"]))
    return {"check": check, "status": status, "findings": ordered, "metrics": metrics}


# --- sanctions ------------------------------------------------------------------------------


def name_tokens(name: str) -> frozenset[str]:
    """Lower-case words of a name without punctuation or legal suffixes (``Acme Ltd.`` → {acme})."""
    words = re.findall(r"[^\W_]+", re.sub(r"[.'’]", "", name.casefold()))
    return frozenset(w for w in words if w not in LEGAL_SUFFIXES)


def names_match(a: str, b: str) -> bool:
    """Same words, or a Jaccard overlap of at least 0.75 between two names of two or more words."""
    ta, tb = name_tokens(a), name_tokens(b)
    if not ta or not tb:
        return False
    if ta == tb:
        return True
    return min(len(ta), len(tb)) >= 2 and len(ta & tb) / len(ta | tb) >= 0.75


def sanctions_check(vendor: dict[str, Any], sanctions: list[str], restricted: list[str]) -> dict[str, Any]:
    where = "inputs.vendor"
    names = [fields.text(vendor, "name", "unnamed vendor", where=where), *fields.strings(vendor, "owners", where=where)]
    findings = []
    for name in names:
        for listed in sanctions:
            if names_match(name, listed):
                findings.append(_finding("critical", "Sanctions list match", f"{name!r} matches listed {listed!r}"))
    country = fields.text(vendor, "country", "", where=where)
    if country and country.casefold() in {c.casefold() for c in restricted}:
        findings.append(_finding("high", "Restricted country", f"vendor is based in {country}"))
    return result("sanctions", findings, {"names_screened": len(names), "list_size": len(sanctions)})


# --- financial health -----------------------------------------------------------------------


def financial_check(vendor: dict[str, Any]) -> dict[str, Any]:
    fin, where = fields.section(vendor, "financials", where="inputs.vendor"), "inputs.vendor.financials"
    if not fin:
        return result("financial_health", [_finding("medium", "No financials", "no financial statements given")], {})
    revenue = fields.number(fin, "revenue", 0.0, where=where, minimum=0)
    ebitda = fields.number(fin, "ebitda", 0.0, where=where)
    net_debt = fields.number(fin, "debt", 0.0, where=where, minimum=0) - fields.number(
        fin, "cash", 0.0, where=where, minimum=0
    )
    assets = fields.number(fin, "current_assets", 0.0, where=where, minimum=0)
    liabilities = fields.number(fin, "current_liabilities", 0.0, where=where, minimum=0)
    current = fields.ratio(assets, liabilities)
    leverage = net_debt / ebitda if ebitda > 0 else None
    margin = fields.ratio(ebitda, revenue)
    findings = []
    if current is not None and current < 1:
        findings.append(_finding("high", "Weak liquidity", f"current ratio {current:.2f} below 1"))
    elif current is not None and current < 1.2:
        findings.append(_finding("medium", "Thin liquidity", f"current ratio {current:.2f} below 1.2"))
    if leverage is None and net_debt > 0:
        findings.append(_finding("high", "Unserviceable debt", f"net debt {net_debt:g} with no positive EBITDA"))
    elif leverage is not None and leverage > 4:
        findings.append(_finding("high", "High leverage", f"net debt {leverage:.1f}x EBITDA"))
    elif leverage is not None and leverage > 3:
        findings.append(_finding("medium", "Elevated leverage", f"net debt {leverage:.1f}x EBITDA"))
    if margin is not None and margin < 0:
        findings.append(_finding("medium", "Loss-making", f"EBITDA margin {margin:.1%}"))
    metrics = {
        "current_ratio": None if current is None else round(current, 2),
        "leverage": None if leverage is None else round(leverage, 2),
        "margin": None if margin is None else round(margin, 4),
    }
    return result("financial_health", findings, metrics)


# --- data protection ------------------------------------------------------------------------


def data_protection_check(vendor: dict[str, Any], allowed_regions: list[str]) -> dict[str, Any]:
    where = "inputs.vendor"
    certs = [c.casefold() for c in fields.strings(vendor, "certifications", where=where)]
    strong = any(c in STRONG_CERTS for c in certs)
    personal = fields.flag(vendor, "handles_personal_data", where=where)
    regions = fields.strings(vendor, "data_regions", where=where)
    allowed = {r.casefold() for r in allowed_regions}
    outside = [r for r in regions if r.casefold() not in allowed]
    findings = []
    if personal and not strong:
        findings.append(
            _finding("high", "No security certification", "handles personal data without SOC 2 or ISO 27001")
        )
    elif not strong:
        findings.append(_finding("low", "No security certification", "no SOC 2 or ISO 27001"))
    if personal and outside:
        findings.append(_finding("high", "Data outside allowed regions", f"data stored in {', '.join(outside)}"))
    if personal and not fields.flag(vendor, "dpa_signed", where=where):
        findings.append(_finding("medium", "No data processing agreement", "dpa_signed is false"))
    return result("data_protection", findings, {"personal_data": personal, "certifications": len(certs)})


# --- contract terms -------------------------------------------------------------------------


def contract_check(vendor: dict[str, Any]) -> dict[str, Any]:
    terms, where = fields.section(vendor, "contract", where="inputs.vendor"), "inputs.vendor.contract"
    if not terms:
        return result("contract_terms", [_finding("medium", "No contract terms", "no contract given to review")], {})
    fee = fields.number(terms, "annual_fee", 0.0, where=where, minimum=0)
    cap = fields.number(terms, "liability_cap", 0.0, where=where, minimum=0)
    notice = fields.integer(terms, "termination_notice_days", 30, where=where, minimum=0)
    cover = fields.ratio(cap, fee)
    uptime = fields.number(terms, "sla_uptime", 0.999, where=where, minimum=0, maximum=1)
    findings = []
    if cover is not None and cover < 1:
        findings.append(_finding("high", "Low liability cap", f"cap covers {cover:.1f}x the annual fee"))
    if notice > 90:
        findings.append(_finding("medium", "Long termination notice", f"{notice} days"))
    if fields.flag(terms, "auto_renewal", where=where) and notice > 60:
        findings.append(
            _finding("low", "Auto-renewal with long notice", f"renews unless cancelled {notice} days ahead")
        )
    if not fields.flag(terms, "audit_rights", where=where):
        findings.append(_finding("medium", "No audit rights", "the contract grants no right to audit"))
    if uptime < 0.995:
        findings.append(_finding("medium", "Weak SLA", f"uptime commitment {uptime:.2%}"))
    metrics = {"liability_cover": None if cover is None else round(cover, 2), "notice_days": notice, "sla": uptime}
    return result("contract_terms", findings, metrics)


# --- concentration --------------------------------------------------------------------------


def concentration_check(vendor: dict[str, Any]) -> dict[str, Any]:
    where = "inputs.vendor"
    share = fields.number(vendor, "spend_share", 0.0, where=where, minimum=0, maximum=1)
    alternatives = fields.integer(vendor, "alternatives", 3, where=where, minimum=0)
    findings = []
    if share > 0.5:
        findings.append(_finding("high", "Spend concentration", f"{share:.0%} of the category's spend"))
    elif share > 0.3:
        findings.append(_finding("medium", "Spend concentration", f"{share:.0%} of the category's spend"))
    if alternatives == 0:
        findings.append(_finding("high", "No alternative supplier", "a single source"))
    elif alternatives == 1:
        findings.append(_finding("medium", "One alternative supplier", "little leverage to switch"))
    return result("concentration", findings, {"spend_share": share, "alternatives": alternatives})


# --- incidents ------------------------------------------------------------------------------


def incidents_check(vendor: dict[str, Any]) -> dict[str, Any]:
    recent: list[tuple[int, str, int]] = []
    for where, item in fields.records(vendor, "incidents", where="inputs.vendor"):
        years_ago = fields.integer(item, "years_ago", 0, where=where, minimum=0)
        severity = fields.choice(item, "severity", tuple(SEVERITY_RANK), "medium", where=where)
        disclosed = fields.integer(item, "disclosed_days", 0, where=where, minimum=0)
        if years_ago <= 3:
            recent.append((years_ago, severity, disclosed))
    findings = []
    worst = min((SEVERITY_RANK[s] for _, s, _ in recent), default=9)
    if worst == 0:
        findings.append(_finding("high", "Recent critical incident", "a critical incident in the last 3 years"))
    elif worst == 1:
        findings.append(_finding("medium", "Recent serious incident", "a high-severity incident in the last 3 years"))
    late = [d for _, _, d in recent if d > 3]
    if late:
        findings.append(_finding("medium", "Late disclosure", f"{len(late)} incidents disclosed after 72 hours"))
    if len(recent) > 3:
        findings.append(_finding("medium", "Frequent incidents", f"{len(recent)} incidents in 3 years"))
    return result("incidents", findings, {"recent_incidents": len(recent)})


# --- agents ---------------------------------------------------------------------------------


async def _run(
    ctx: AgentContext, check: str, run: Callable[[dict[str, Any]], dict[str, Any]], extra_fee: Decimal = Decimal(0)
) -> dict[str, Any]:
    """Run one check on ``inputs.vendor`` (inputs are read before anything is charged)."""
    vendor = fields.section(ctx.inputs, "vendor")
    if not vendor:
        await ctx.progress(1.0, "no vendor given: check not run")
        return {"check": check, "status": "not_run", "findings": [], "metrics": {}, "reason": "inputs.vendor is empty"}
    outcome = run(vendor)
    await ctx.pay(CHECK_FEE + extra_fee, 1, f"{check} check")
    await ctx.progress(1.0, f"{check}: {outcome['status']} ({len(outcome['findings'])} findings)")
    return outcome


async def sanctions(ctx: AgentContext) -> dict[str, Any]:
    """Vendor and owners against ``inputs.sanctions_list``; country against ``inputs.restricted_countries``."""
    listed = fields.strings(ctx.inputs, "sanctions_list")
    restricted = fields.strings(ctx.inputs, "restricted_countries")

    def run(vendor: dict[str, Any]) -> dict[str, Any]:
        return sanctions_check(vendor, listed, restricted)

    vendor = fields.section(ctx.inputs, "vendor")
    compared = (1 + len(fields.strings(vendor, "owners", where="inputs.vendor"))) * len(listed)
    return await _run(ctx, "sanctions", run, MATCH_FEE * compared)


async def financial_health(ctx: AgentContext) -> dict[str, Any]:
    """Liquidity, leverage and margin from ``inputs.vendor.financials``."""
    return await _run(ctx, "financial_health", financial_check)


async def data_protection(ctx: AgentContext) -> dict[str, Any]:
    """Certifications, data regions (``inputs.allowed_regions``) and the DPA."""
    regions = fields.strings(ctx.inputs, "allowed_regions") or list(DEFAULT_REGIONS)
    return await _run(ctx, "data_protection", lambda v: data_protection_check(v, regions))


async def contract_terms(ctx: AgentContext) -> dict[str, Any]:
    """Liability cap, notice, renewal, audit rights and SLA of ``inputs.vendor.contract``."""
    return await _run(ctx, "contract_terms", contract_check)


async def concentration(ctx: AgentContext) -> dict[str, Any]:
    """Share of the category's spend and alternative suppliers."""
    return await _run(ctx, "concentration", concentration_check)


async def incidents(ctx: AgentContext) -> dict[str, Any]:
    """Security incidents of the last three years and how fast they were disclosed."""
    return await _run(ctx, "incidents", incidents_check)
