"""Finance agents: liquidation schedules (Crash Protocol) and market-entry projections (Market Entry).

``finance.liquidate`` inputs (``daily_volume`` in units traded per day):

```
portfolio:   [{symbol, quantity, price, daily_volume, account}]
liquidation: {tranches: auto, max_participation: by risk level, impact: 0.1,
              trading_seconds_per_day: 86400, reserve: 0.1}
```

Sells every position in equal-time tranches between now and the deadline (keeping ``reserve`` of the
time in hand). An order's slippage is ``impact`` × its share of the interval's volume, and that
share is capped at ``min(max_participation, max_drawdown / impact)``: no order slips more than the
mission's ``risk.max_drawdown``, so neither does the whole sale. What the cap leaves unsold by the
deadline is reported, not dumped. Positions in accounts the upstream lockdown froze are held.
Each order costs ``ORDER_FEE``; when the allocation cannot pay for every tranche the schedule uses
fewer, longer tranches (same volume cap, same total capacity), and fails only if one cannot be paid.

``finance.project`` reads the upstream entry plan (``strategy.entry_plan``) and inputs
``finance: {years: 5, gross_margin: 0.6, opex_ratio: 0.3, discount_rate: 0.12, ramp: [0.3, 0.7, 1.0],
setup_cost: {direct: 2.0, partnership: 0.8, acquisition: 6.0}}`` (millions) and projects revenue,
cash flow, payback and NPV. Costs ``PROJECTION_FEE`` per market projected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from mission.money import affordable
from workers.agents import fields
from workers.agents.sdk import AgentContext

ORDER_FEE = Decimal("0.40")
PROJECTION_FEE = Decimal("4.00")
MAX_TRANCHES = 20
TRANCHE_SECONDS = 30  # auto tranches: one per 30 s of usable time, up to MAX_TRANCHES
DRAWDOWN_BY_LEVEL = {"low": 0.05, "medium": 0.1, "high": 0.2, "critical": 0.3}
PARTICIPATION_BY_LEVEL = {"low": 0.05, "medium": 0.1, "high": 0.25, "critical": 0.5}
QTY_STEP = 1e-8


@dataclass(frozen=True)
class Position:
    symbol: str
    quantity: float
    price: float
    daily_volume: float
    account: str = ""


@dataclass(frozen=True)
class LiquidationRules:
    max_drawdown: float = 0.2
    max_participation: float = 0.25
    impact: float = 0.1
    trading_seconds_per_day: float = 86_400.0
    reserve: float = 0.1
    tranches: int | None = None
    frozen_accounts: frozenset[str] = field(default_factory=frozenset)

    @property
    def participation_cap(self) -> float:
        """The largest share of an interval's volume one order may take."""
        return min(self.max_participation, self.max_drawdown / self.impact)


def parse_portfolio(inputs: dict[str, Any]) -> list[Position]:
    positions: list[Position] = []
    seen: set[tuple[str, str]] = set()
    for where, item in fields.records(inputs, "portfolio"):
        position = Position(
            symbol=fields.text(item, "symbol", where=where).upper(),
            quantity=fields.number(item, "quantity", where=where, minimum=0),
            price=fields.number(item, "price", where=where, minimum=0),
            daily_volume=fields.number(item, "daily_volume", where=where, minimum=0),
            account=fields.text(item, "account", "", where=where),
        )
        if (position.symbol, position.account) in seen:
            raise ValueError(f"{where}.symbol {position.symbol!r} appears twice in the same account")
        seen.add((position.symbol, position.account))
        positions.append(position)
    return positions


def parse_rules(inputs: dict[str, Any], risk: dict[str, Any], frozen: frozenset[str] = frozenset()) -> LiquidationRules:
    raw, where = fields.section(inputs, "liquidation"), "inputs.liquidation"
    level = str(risk.get("level") or "high")
    drawdown = risk.get("max_drawdown")
    max_drawdown = (
        DRAWDOWN_BY_LEVEL.get(level, 0.2)
        if drawdown is None
        else fields.number(risk, "max_drawdown", where="risk", minimum=0, maximum=1)
    )
    tranches = raw.get("tranches")
    return LiquidationRules(
        max_drawdown=max_drawdown,
        max_participation=fields.number(
            raw, "max_participation", PARTICIPATION_BY_LEVEL.get(level, 0.25), where=where, minimum=0, maximum=1
        ),
        impact=fields.number(raw, "impact", 0.1, where=where, minimum=1e-6, maximum=10),
        trading_seconds_per_day=fields.number(
            raw, "trading_seconds_per_day", 86_400.0, where=where, minimum=60, maximum=86_400
        ),
        reserve=fields.number(raw, "reserve", 0.1, where=where, minimum=0, maximum=0.9),
        tranches=None if tranches is None else fields.integer(raw, "tranches", 1, where=where, minimum=1, maximum=500),
        frozen_accounts=frozen,
    )


def frozen_accounts(upstream: dict[str, Any]) -> frozenset[str]:
    """Accounts an upstream lockdown froze (its ``frozen_accounts`` list)."""
    frozen: set[str] = set()
    for role, output in upstream.items():
        if isinstance(output, dict):
            frozen.update(fields.strings(output, "frozen_accounts", where=f"upstream.{role}"))
    return frozenset(frozen)


def tranche_count(rules: LiquidationRules, usable_seconds: float) -> int:
    if rules.tranches is not None:
        return rules.tranches
    return max(1, min(MAX_TRANCHES, int(usable_seconds // TRANCHE_SECONDS)))


def _floor_qty(quantity: float) -> float:
    return math.floor(quantity / QTY_STEP) * QTY_STEP


def liquidation_schedule(positions: list[Position], rules: LiquidationRules, horizon_seconds: float) -> dict[str, Any]:
    """Tranches at offsets (seconds from now) that all finish within ``horizon_seconds``."""
    if horizon_seconds <= 0:
        raise ValueError("no time is left before the mission's deadline")
    usable = horizon_seconds * (1 - rules.reserve)
    count = tranche_count(rules, usable)
    interval = usable / count
    cap = rules.participation_cap
    sellable = [i for i, p in enumerate(positions) if p.account not in rules.frozen_accounts and p.quantity > 0]
    left = {i: positions[i].quantity for i in sellable}
    sold = dict.fromkeys(sellable, 0.0)
    proceeds = dict.fromkeys(sellable, 0.0)

    tranches: list[dict[str, Any]] = []
    for index in range(count):
        orders: list[dict[str, Any]] = []
        for i in sellable:
            p = positions[i]
            window_volume = p.daily_volume * interval / rules.trading_seconds_per_day
            capacity = cap * window_volume
            quantity = left[i] if capacity >= left[i] else _floor_qty(capacity)
            if quantity <= 0:
                continue
            participation = quantity / window_volume
            slippage = rules.impact * participation
            value = quantity * p.price * (1 - slippage)
            left[i] = max(0.0, left[i] - quantity)
            sold[i] += quantity
            proceeds[i] += value
            orders.append(
                {"symbol": p.symbol, "account": p.account, "quantity": round(quantity, 8),
                 "participation": round(participation, 4), "est_slippage": round(slippage, 4),
                 "est_price": round(p.price * (1 - slippage), 6), "est_proceeds": round(value, 2)}
            )  # fmt: skip
        if orders:
            tranches.append(
                {"tranche": index + 1, "at_seconds": round(index * interval, 3),
                 "until_seconds": round((index + 1) * interval, 3), "orders": orders,
                 "est_proceeds": round(sum(o["est_proceeds"] for o in orders), 2)}
            )  # fmt: skip

    summary: list[dict[str, Any]] = []
    mark_total = sold_value = proceeds_total = 0.0
    for i, p in enumerate(positions):
        mark = p.quantity * p.price
        mark_total += mark
        if i not in left:
            reason = f"account {p.account} is frozen" if p.account in rules.frozen_accounts else "nothing to sell"
            summary.append({"symbol": p.symbol, "account": p.account, "status": "held", "reason": reason,
                            "quantity": p.quantity, "sold": 0.0, "unsold": p.quantity, "mark_value": round(mark, 2),
                            "est_proceeds": 0.0})  # fmt: skip
            continue
        got, unsold = sold[i], _floor_qty(left[i])
        sold_value += got * p.price
        proceeds_total += proceeds[i]
        status = "liquidated" if unsold <= 0 else "partial" if got > 0 else "held"
        entry: dict[str, Any] = {
            "symbol": p.symbol, "account": p.account, "status": status, "quantity": p.quantity,
            "sold": round(got, 8), "unsold": round(unsold, 8), "mark_value": round(mark, 2),
            "est_proceeds": round(proceeds[i], 2),
        }  # fmt: skip
        if unsold > 0:
            entry["reason"] = (
                f"volume cap of {cap:.1%} per interval (drawdown {rules.max_drawdown:.0%}) "
                f"leaves {unsold:g} unsold by the deadline"
            )
        summary.append(entry)

    cost = sold_value - proceeds_total
    return {
        "horizon_seconds": round(horizon_seconds, 3),
        "usable_seconds": round(usable, 3),
        "tranche_seconds": round(interval, 3),
        "participation_cap": round(cap, 4),
        "max_drawdown": rules.max_drawdown,
        "tranches": tranches,
        "positions": summary,
        "totals": {
            "mark_value": round(mark_total, 2),
            "sold_mark_value": round(sold_value, 2),
            "est_proceeds": round(proceeds_total, 2),
            "est_cost": round(cost, 2),
            "est_drawdown": round(cost / sold_value, 4) if sold_value else 0.0,
            "coverage": round(sold_value / mark_total, 4) if mark_total else 0.0,
            "orders": sum(len(t["orders"]) for t in tranches),
        },
    }


async def liquidate(ctx: AgentContext) -> dict[str, Any]:
    """Plan the sale of ``inputs.portfolio`` in tranches before ``ctx.deadline``, within the drawdown."""
    positions = parse_portfolio(ctx.inputs)
    rules = parse_rules(ctx.inputs, ctx.risk, frozen_accounts(ctx.upstream))
    now = datetime.now(UTC)
    horizon = (ctx.deadline - now).total_seconds()
    usable = max(0.0, horizon * (1 - rules.reserve))
    sellable = sum(1 for p in positions if p.account not in rules.frozen_accounts and p.quantity > 0)
    wanted = tranche_count(rules, usable)
    if sellable:
        fits = affordable(ctx.remaining, ORDER_FEE * sellable, wanted)
        if fits < wanted:
            rules = replace(rules, tranches=max(1, fits))
    await ctx.progress(0.3, f"scheduling {sellable} positions over {usable:.0f} s")
    plan = liquidation_schedule(positions, rules, horizon)
    await ctx.pay(ORDER_FEE, plan["totals"]["orders"], "orders scheduled")
    plan["starts_at"] = now.isoformat()
    for tranche in plan["tranches"]:
        tranche["at"] = (now + timedelta(seconds=tranche["at_seconds"])).isoformat()
    totals = plan["totals"]
    await ctx.progress(1.0, f"{totals['orders']} orders, est. proceeds {totals['est_proceeds']:,.2f}")
    return plan


# --- market entry projection -------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectionInputs:
    years: int = 5
    gross_margin: float = 0.6
    opex_ratio: float = 0.3
    discount_rate: float = 0.12
    ramp: tuple[float, ...] = (0.3, 0.7, 1.0)
    setup_cost: tuple[tuple[str, float], ...] = (("direct", 2.0), ("partnership", 0.8), ("acquisition", 6.0))


def parse_projection(inputs: dict[str, Any]) -> ProjectionInputs:
    raw, where, base = fields.section(inputs, "finance"), "inputs.finance", ProjectionInputs()
    ramp = tuple(fields.numbers(raw, "ramp", where=where, minimum=0, maximum=1)) or base.ramp
    costs = dict(base.setup_cost)
    given = fields.section(raw, "setup_cost", where=where)
    for mode in list(given):
        costs[str(mode)] = fields.number(given, str(mode), where=f"{where}.setup_cost", minimum=0)
    return ProjectionInputs(
        years=fields.integer(raw, "years", base.years, where=where, minimum=1, maximum=30),
        gross_margin=fields.number(raw, "gross_margin", base.gross_margin, where=where, minimum=0, maximum=1),
        opex_ratio=fields.number(raw, "opex_ratio", base.opex_ratio, where=where, minimum=0, maximum=2),
        discount_rate=fields.number(raw, "discount_rate", base.discount_rate, where=where, minimum=0, maximum=1),
        ramp=ramp,
        setup_cost=tuple(sorted(costs.items())),
    )


def entry_markets(upstream: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``plan`` entries of upstream entry plans: market, wave, start_year, mode, som."""
    markets: list[dict[str, Any]] = []
    for role in sorted(upstream):
        output = upstream[role]
        if not isinstance(output, dict):
            continue
        for where, item in fields.records(output, "plan", where=f"upstream.{role}"):
            markets.append(
                {
                    "market": fields.text(item, "market", where=where),
                    "mode": fields.text(item, "mode", "direct", where=where),
                    "start_year": fields.integer(item, "start_year", 1, where=where, minimum=1, maximum=30),
                    "som": fields.number(item, "som", where=where, minimum=0),
                }
            )
    return markets


def project_markets(markets: list[dict[str, Any]], p: ProjectionInputs) -> dict[str, Any]:
    """Yearly revenue and cash per market; totals with cumulative cash, payback year and NPV."""
    setup = dict(p.setup_cost)
    contribution = p.gross_margin - p.opex_ratio
    per_market: list[dict[str, Any]] = []
    revenue_by_year = [0.0] * p.years
    cash_by_year = [0.0] * p.years
    for m in markets:
        revenues, cash = [], []
        for year in range(1, p.years + 1):
            since = year - m["start_year"]
            share = 0.0 if since < 0 else p.ramp[min(since, len(p.ramp) - 1)]
            revenue = m["som"] * share
            flow = revenue * contribution - (setup.get(m["mode"], setup.get("direct", 0.0)) if since == 0 else 0.0)
            revenues.append(round(revenue, 3))
            cash.append(round(flow, 3))
            revenue_by_year[year - 1] += revenue
            cash_by_year[year - 1] += flow
        per_market.append({**m, "revenue": revenues, "cash_flow": cash})

    cumulative: list[float] = []
    running, payback = 0.0, None
    for year, flow in enumerate(cash_by_year, start=1):
        running += flow
        cumulative.append(round(running, 3))
        if payback is None and markets and running >= -1e-9:
            payback = year  # the first year the cumulative cash is back to zero or above
    npv = sum(flow / (1 + p.discount_rate) ** year for year, flow in enumerate(cash_by_year, start=1))
    return {
        "years": p.years,
        "assumptions": {"gross_margin": p.gross_margin, "opex_ratio": p.opex_ratio,
                        "discount_rate": p.discount_rate, "ramp": list(p.ramp), "setup_cost": dict(p.setup_cost)},
        "markets": per_market,
        "revenue": [round(r, 3) for r in revenue_by_year],
        "cash_flow": [round(c, 3) for c in cash_by_year],
        "cumulative_cash": cumulative,
        "peak_funding": round(-min([0.0, *cumulative]), 3),
        "payback_year": payback,
        "npv": round(npv, 3),
        "verdict": "invest" if npv > 0 else "do not invest" if markets else "nothing to project",
    }  # fmt: skip


async def project(ctx: AgentContext) -> dict[str, Any]:
    """Project revenue, cash flow, payback and NPV of the upstream market-entry plan."""
    assumptions = parse_projection(ctx.inputs)
    markets = entry_markets(ctx.upstream)
    paid = await ctx.pay_per_item(PROJECTION_FEE, len(markets), "market projections")
    await ctx.progress(0.5, f"projecting {paid} markets over {assumptions.years} years")
    result = project_markets(markets[:paid], assumptions)
    result["unprojected"] = [m["market"] for m in markets[paid:]]
    await ctx.progress(1.0, f"NPV {result['npv']:g}, payback year {result['payback_year']}")
    return result
