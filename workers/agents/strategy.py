"""Strategy agents (Market Entry): choose which sized markets to enter, in what order and how.

Reads the upstream ``markets`` (from ``research.market_size``). Inputs, all optional:

```
strategy: {max_markets: by risk level (low 1, medium 2, high 3, critical 4),
           min_attractiveness: 0.35, markets_per_year: 1}
```

Attractiveness (0..1) = 0.45 × SOM relative to the largest + 0.25 × growth (20 % = full marks)
+ 0.15 × low competition + 0.15 × light regulation. The best markets above the threshold enter in
waves, ``markets_per_year`` a year; heavy regulation means a partnership, eight or more competitors
an acquisition, otherwise a direct entry. Costs ``EVALUATION_FEE`` per market evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from workers.agents import fields
from workers.agents.sdk import AgentContext

EVALUATION_FEE = Decimal("3.00")
MARKETS_BY_LEVEL = {"low": 1, "medium": 2, "high": 3, "critical": 4}
REGULATION_EASE = {"light": 1.0, "moderate": 0.6, "heavy": 0.2}


@dataclass(frozen=True)
class Policy:
    max_markets: int = 2
    min_attractiveness: float = 0.35
    markets_per_year: int = 1


def parse_policy(inputs: dict[str, Any], risk_level: str) -> Policy:
    raw, where = fields.section(inputs, "strategy"), "inputs.strategy"
    return Policy(
        max_markets=fields.integer(raw, "max_markets", MARKETS_BY_LEVEL.get(risk_level, 2), where=where, minimum=0),
        min_attractiveness=fields.number(raw, "min_attractiveness", 0.35, where=where, minimum=0, maximum=1),
        markets_per_year=fields.integer(raw, "markets_per_year", 1, where=where, minimum=1, maximum=50),
    )


def sized_markets(upstream: dict[str, Any]) -> list[dict[str, Any]]:
    """Markets sized upstream, each once."""
    found: dict[str, dict[str, Any]] = {}
    for role in sorted(upstream):
        output = upstream[role]
        if not isinstance(output, dict):
            continue
        for where, item in fields.records(output, "markets", where=f"upstream.{role}"):
            name = fields.text(item, "market", where=where)
            found.setdefault(
                name.casefold(),
                {
                    "market": name,
                    "som": fields.number(item, "som", where=where, minimum=0),
                    "growth": fields.number(item, "growth", 0.0, where=where),
                    "competitors": fields.integer(item, "competitors", 0, where=where, minimum=0),
                    "regulation": fields.choice(item, "regulation", tuple(REGULATION_EASE), "moderate", where=where),
                },
            )
    return list(found.values())


def attractiveness(market: dict[str, Any], largest_som: float) -> float:
    size = market["som"] / largest_som if largest_som > 0 else 0.0
    growth = fields.clamp(market["growth"] / 0.2)
    competition = 1 / (1 + market["competitors"] / 5)
    ease = REGULATION_EASE[market["regulation"]]
    return round(float(0.45 * size + 0.25 * growth + 0.15 * competition + 0.15 * ease), 4)


def entry_mode(market: dict[str, Any]) -> str:
    if market["regulation"] == "heavy":
        return "partnership"
    if market["competitors"] >= 8:
        return "acquisition"
    return "direct"


def plan_entry(markets: list[dict[str, Any]], policy: Policy) -> dict[str, Any]:
    largest = max((m["som"] for m in markets), default=0.0)
    scored = sorted(
        ({**m, "attractiveness": attractiveness(m, largest)} for m in markets),
        key=lambda m: (-m["attractiveness"], m["market"]),
    )
    plan: list[dict[str, Any]] = []
    deferred: list[dict[str, Any]] = []
    for m in scored:
        if m["attractiveness"] < policy.min_attractiveness:
            deferred.append({"market": m["market"], "attractiveness": m["attractiveness"],
                             "reason": f"below the threshold {policy.min_attractiveness:g}"})  # fmt: skip
        elif len(plan) >= policy.max_markets:
            deferred.append({"market": m["market"], "attractiveness": m["attractiveness"],
                             "reason": f"{policy.max_markets} markets already planned"})  # fmt: skip
        else:
            wave = len(plan) // policy.markets_per_year + 1
            mode = entry_mode(m)
            plan.append(
                {"market": m["market"], "rank": len(plan) + 1, "wave": wave, "start_year": wave, "mode": mode,
                 "attractiveness": m["attractiveness"], "som": m["som"],
                 "rationale": f"attractiveness {m['attractiveness']:.2f} (SOM {m['som']:g}, growth "
                              f"{m['growth']:.0%}, {m['competitors']} competitors, {m['regulation']} regulation); "
                              f"{mode} entry in year {wave}"}
            )  # fmt: skip
    return {
        "policy": {"max_markets": policy.max_markets, "min_attractiveness": policy.min_attractiveness,
                   "markets_per_year": policy.markets_per_year},
        "plan": plan,
        "deferred": deferred,
    }  # fmt: skip


async def entry_plan(ctx: AgentContext) -> dict[str, Any]:
    """Rank the upstream markets and plan the entry waves within the mission's risk appetite."""
    policy = parse_policy(ctx.inputs, str(ctx.risk.get("level") or "medium"))
    markets = sized_markets(ctx.upstream)
    paid = await ctx.pay_per_item(EVALUATION_FEE, len(markets), "markets evaluated")
    await ctx.progress(0.5, f"evaluating {paid} of {len(markets)} markets")
    result = plan_entry(markets[:paid], policy)
    result["unevaluated"] = [m["market"] for m in markets[paid:]]
    await ctx.progress(1.0, f"{len(result['plan'])} markets planned, {len(result['deferred'])} deferred")
    return result
