"""Research agents (Market Entry): size each candidate market, top-down.

Inputs (``population`` in millions of potential customers, ``price`` per customer per year,
market sizes in millions of the same currency):

```
markets: [{name, population, adoption: 0..1, price, growth: 0.05, competitors: 3,
           regulation: "light" | "moderate" | "heavy"}]
reach: 0.4      # serviceable share of the total market (SAM / TAM)
capture: 0.1    # obtainable share of the serviceable market with no competitors
```

TAM = population × adoption × price; SAM = TAM × reach; SOM = SAM × capture / (1 + competitors / 5).
Costs ``SIZING_FEE`` per market; markets past the allocation are listed as ``unsized``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from workers.agents import fields
from workers.agents.sdk import AgentContext

SIZING_FEE = Decimal("2.50")
REGULATION = ("light", "moderate", "heavy")
HORIZON_YEARS = 3


def parse_markets(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    markets: list[dict[str, Any]] = []
    seen: set[str] = set()
    for where, item in fields.records(inputs, "markets"):
        name = fields.text(item, "name", where=where)
        if name.casefold() in seen:
            raise ValueError(f"{where}.name {name!r} appears more than once")
        seen.add(name.casefold())
        markets.append(
            {
                "market": name,
                "population": fields.number(item, "population", where=where, minimum=0),
                "adoption": fields.number(item, "adoption", where=where, minimum=0, maximum=1),
                "price": fields.number(item, "price", where=where, minimum=0),
                "growth": fields.number(item, "growth", 0.05, where=where, minimum=-1, maximum=5),
                "competitors": fields.integer(item, "competitors", 3, where=where, minimum=0),
                "regulation": fields.choice(item, "regulation", REGULATION, "moderate", where=where),
            }
        )
    return markets


def size_market(market: dict[str, Any], reach: float, capture: float) -> dict[str, Any]:
    tam = market["population"] * market["adoption"] * market["price"]
    sam = tam * reach
    som = sam * capture / (1 + market["competitors"] / 5)
    return {
        "market": market["market"],
        "tam": round(tam, 3),
        "sam": round(sam, 3),
        "som": round(som, 3),
        f"tam_in_{HORIZON_YEARS}y": round(tam * (1 + market["growth"]) ** HORIZON_YEARS, 3),
        "growth": market["growth"],
        "competitors": market["competitors"],
        "regulation": market["regulation"],
    }


def size_markets(markets: list[dict[str, Any]], reach: float, capture: float) -> dict[str, Any]:
    sized = sorted((size_market(m, reach, capture) for m in markets), key=lambda m: (-m["som"], m["market"]))
    return {
        "reach": reach,
        "capture": capture,
        "markets": sized,
        "total_tam": round(sum(m["tam"] for m in sized), 3),
        "total_som": round(sum(m["som"] for m in sized), 3),
    }


async def market_size(ctx: AgentContext) -> dict[str, Any]:
    """TAM, SAM and SOM of every market in ``inputs.markets``, largest SOM first."""
    markets = parse_markets(ctx.inputs)
    reach = fields.number(ctx.inputs, "reach", 0.4, minimum=0, maximum=1)
    capture = fields.number(ctx.inputs, "capture", 0.1, minimum=0, maximum=1)
    paid = await ctx.pay_per_item(SIZING_FEE, len(markets), "markets sized")
    await ctx.progress(0.5, f"sizing {paid} of {len(markets)} markets")
    result = size_markets(markets[:paid], reach, capture)
    result["unsized"] = [m["market"] for m in markets[paid:]]
    await ctx.progress(1.0, f"total obtainable market {result['total_som']:g}")
    return result
