"""Valuation agents (Fair Value Consensus): three independent ways to value one company.

Inputs (amounts in millions, ``shares`` in millions):

```
company:   {name, ebitda, free_cash_flow, growth: 0.05, net_debt: 0, shares, assets, liabilities}
valuation: {discount_rate: 0.10, terminal_growth: 0.025, years: 5, peer_multiples: [EV/EBITDA],
            asset_haircut: 0.2}
```

``dcf`` needs ``free_cash_flow``, ``multiples`` needs ``ebitda`` and ``peer_multiples``,
``asset_based`` needs ``assets`` and ``liabilities``: a method whose data is missing fails with the
field named, and the mission's quorum decides whether the others suffice. With no company at all
each method reports that it had nothing to value. Fees, charged once the inputs are read:
``DCF_FEE`` per year projected (plus one for the terminal value), ``PEER_FEE`` per peer multiple,
``ASSET_FEE`` per balance sheet.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from workers.agents import fields
from workers.agents.sdk import AgentContext

DCF_FEE = Decimal("1.00")
PEER_FEE = Decimal("0.50")
ASSET_FEE = Decimal("2.00")
WHERE = "inputs.company"


@dataclass(frozen=True)
class Assumptions:
    discount_rate: float = 0.10
    terminal_growth: float = 0.025
    years: int = 5
    peer_multiples: list[float] = field(default_factory=list)
    asset_haircut: float = 0.2


def parse_assumptions(inputs: dict[str, Any]) -> Assumptions:
    raw, where, base = fields.section(inputs, "valuation"), "inputs.valuation", Assumptions()
    a = Assumptions(
        discount_rate=fields.number(raw, "discount_rate", base.discount_rate, where=where, minimum=0, maximum=1),
        terminal_growth=fields.number(
            raw, "terminal_growth", base.terminal_growth, where=where, minimum=-0.5, maximum=0.5
        ),
        years=fields.integer(raw, "years", base.years, where=where, minimum=1, maximum=30),
        peer_multiples=fields.numbers(raw, "peer_multiples", where=where, minimum=0, maximum=200),
        asset_haircut=fields.number(raw, "asset_haircut", base.asset_haircut, where=where, minimum=0, maximum=1),
    )
    if a.discount_rate <= a.terminal_growth:
        raise ValueError(f"{where}.discount_rate must be above terminal_growth ({a.terminal_growth:g})")
    return a


def _equity(method: str, company: dict[str, Any], enterprise: float, extra: dict[str, Any]) -> dict[str, Any]:
    net_debt = fields.number(company, "net_debt", 0.0, where=WHERE)
    shares = fields.number(company, "shares", 0.0, where=WHERE, minimum=0)
    equity = enterprise - net_debt
    return {
        "method": method,
        "valued": True,
        "company": fields.text(company, "name", "unnamed", where=WHERE),
        "enterprise_value": round(enterprise, 3),
        "equity_value": round(equity, 3),
        "per_share": round(equity / shares, 4) if shares > 0 else None,
        **extra,
    }


def dcf_value(company: dict[str, Any], a: Assumptions) -> dict[str, Any]:
    """Free cash flow grown at a rate fading linearly to the terminal rate, plus a Gordon terminal value."""
    fcf = fields.number(company, "free_cash_flow", where=WHERE)
    growth = fields.number(company, "growth", 0.05, where=WHERE, minimum=-0.9, maximum=5)
    flows, present = [], 0.0
    for year in range(1, a.years + 1):
        rate = growth + (a.terminal_growth - growth) * (year - 1) / max(a.years - 1, 1)
        fcf *= 1 + rate
        flows.append(round(fcf, 3))
        present += fcf / (1 + a.discount_rate) ** year
    terminal = fcf * (1 + a.terminal_growth) / (a.discount_rate - a.terminal_growth)
    terminal_pv = terminal / (1 + a.discount_rate) ** a.years
    extra = {"cash_flows": flows, "terminal_value_pv": round(terminal_pv, 3),
             "terminal_share": round(terminal_pv / (present + terminal_pv), 4) if present + terminal_pv else None,
             "discount_rate": a.discount_rate, "terminal_growth": a.terminal_growth}  # fmt: skip
    return _equity("dcf", company, present + terminal_pv, extra)


def multiples_value(company: dict[str, Any], a: Assumptions) -> dict[str, Any]:
    """Median peer EV/EBITDA, with the interquartile range as low and high."""
    ebitda = fields.number(company, "ebitda", where=WHERE)
    if not a.peer_multiples:
        raise ValueError("inputs.valuation.peer_multiples is required for a multiples valuation")
    peers = sorted(a.peer_multiples)
    median = statistics.median(peers)
    low, high = (statistics.quantiles(peers, n=4)[0::2]) if len(peers) >= 2 else (median, median)
    extra = {"peers": len(peers), "multiple": round(median, 3),
             "range": [round(low * ebitda, 3), round(high * ebitda, 3)]}  # fmt: skip
    return _equity("multiples", company, median * ebitda, extra)


def asset_value(company: dict[str, Any], a: Assumptions) -> dict[str, Any]:
    """Assets after a liquidation haircut, less liabilities (an equity value; EV adds net debt back)."""
    assets = fields.number(company, "assets", where=WHERE, minimum=0)
    liabilities = fields.number(company, "liabilities", where=WHERE, minimum=0)
    equity = assets * (1 - a.asset_haircut) - liabilities
    net_debt = fields.number(company, "net_debt", 0.0, where=WHERE)
    return _equity("asset_based", company, equity + net_debt, {"asset_haircut": a.asset_haircut})


def _nothing(method: str) -> dict[str, Any]:
    return {"method": method, "valued": False, "reason": "inputs.company is empty: nothing to value"}


async def _value(
    ctx: AgentContext,
    method: str,
    compute: Callable[[dict[str, Any], Assumptions], dict[str, Any]],
    fee: Decimal,
    units: Callable[[Assumptions], int],
    note: str,
    label: str,
) -> dict[str, Any]:
    """One valuation method: read the company, value it, pay for the work, report."""
    company, a = fields.section(ctx.inputs, "company"), parse_assumptions(ctx.inputs)
    if not company:
        await ctx.progress(1.0, "no company given")
        return _nothing(method)
    result = compute(company, a)
    await ctx.pay(fee, units(a), note)
    await ctx.progress(1.0, f"{label} {result['equity_value']:g}")
    return result


async def dcf(ctx: AgentContext) -> dict[str, Any]:
    """Discounted cash flow of ``inputs.company``."""
    return await _value(
        ctx, "dcf", dcf_value, DCF_FEE, lambda a: a.years + 1, "cash flows discounted", "DCF equity value"
    )


async def multiples(ctx: AgentContext) -> dict[str, Any]:
    """Trading multiples of ``inputs.valuation.peer_multiples`` applied to the company's EBITDA."""
    return await _value(
        ctx, "multiples", multiples_value, PEER_FEE, lambda a: len(a.peer_multiples), "peer multiples",
        "multiples equity value",
    )  # fmt: skip


async def asset_based(ctx: AgentContext) -> dict[str, Any]:
    """Net asset value of ``inputs.company`` after a liquidation haircut."""
    return await _value(ctx, "asset_based", asset_value, ASSET_FEE, lambda a: 1, "balance sheet", "net asset value")
