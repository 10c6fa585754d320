"""Security agents (Crash Protocol): a deterministic lockdown plan for exposed accounts.

Inputs (all lists optional; ``id`` is a label, never the secret itself — a ``secret``, ``key`` or
address field is ignored and never copied to the output):

```
accounts:          [{id, venue, kind, withdrawals: true, compromised: false}]
api_keys:          [{id, venue, scopes: ["read", "trade", "withdraw"], last_used_days: 0, compromised: false}]
withdrawal_routes: [{id, kind: "cold_storage" | "bank" | "exchange" | "address", whitelisted: false}]
stale_key_days:    30
```

Rules, by the mission's risk level: compromised accounts are frozen outright, every other account
loses withdrawals but keeps trading (the liquidator needs it). Keys that are compromised, can
withdraw, are stale or belong to a frozen venue are revoked; trade keys stay until the liquidation
is done, then rotate; read-only keys are revoked at ``critical``. Whitelisted cold-storage routes
are the one safe exit; other routes are suspended (at ``low`` risk, whitelisted routes stay open).

The plan costs ``ACTION_FEE`` per action, charged in full before the plan is returned: a partial
lockdown is worse than a job that fails loudly with ``budget_exceeded``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from workers.agents import fields
from workers.agents.sdk import AgentContext

ACTION_FEE = Decimal("1.50")
SCOPES = ("read", "trade", "withdraw")
# Order in which a plan's steps run: stop the bleeding first.
PRIORITY = {"freeze": 0, "revoke": 1, "suspend": 2, "disable_withdrawals": 3, "rotate_after_liquidation": 4}


@dataclass(frozen=True)
class Account:
    id: str
    venue: str
    kind: str
    withdrawals: bool
    compromised: bool


@dataclass(frozen=True)
class ApiKey:
    id: str
    venue: str
    scopes: tuple[str, ...]
    last_used_days: int
    compromised: bool


@dataclass(frozen=True)
class Route:
    id: str
    kind: str
    whitelisted: bool


@dataclass(frozen=True)
class Exposure:
    accounts: list[Account]
    api_keys: list[ApiKey]
    routes: list[Route]
    stale_key_days: int = 30


def _unique(ids: list[str], where: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(ids):
        if value in seen:
            raise ValueError(f"{where}[{i}].id {value!r} appears more than once")
        seen.add(value)


def parse_exposure(inputs: dict[str, Any]) -> Exposure:
    accounts = [
        Account(
            id=fields.text(item, "id", where=where),
            venue=fields.text(item, "venue", "unknown", where=where),
            kind=fields.text(item, "kind", "exchange", where=where).lower(),
            withdrawals=fields.flag(item, "withdrawals", True, where=where),
            compromised=fields.flag(item, "compromised", where=where),
        )
        for where, item in fields.records(inputs, "accounts")
    ]
    keys = []
    for where, item in fields.records(inputs, "api_keys"):
        scopes = tuple(sorted({s.lower() for s in fields.strings(item, "scopes", where=where)}))
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown:
            raise ValueError(f"{where}.scopes has unknown scope {unknown[0]!r} (known: {', '.join(SCOPES)})")
        keys.append(
            ApiKey(
                id=fields.text(item, "id", where=where),
                venue=fields.text(item, "venue", "unknown", where=where),
                scopes=scopes,
                last_used_days=fields.integer(item, "last_used_days", 0, where=where, minimum=0),
                compromised=fields.flag(item, "compromised", where=where),
            )
        )
    routes = [
        Route(
            id=fields.text(item, "id", where=where),
            kind=fields.text(item, "kind", "address", where=where).lower(),
            whitelisted=fields.flag(item, "whitelisted", where=where),
        )
        for where, item in fields.records(inputs, "withdrawal_routes")
    ]
    _unique([a.id for a in accounts], "inputs.accounts")
    _unique([k.id for k in keys], "inputs.api_keys")
    _unique([r.id for r in routes], "inputs.withdrawal_routes")
    stale = fields.integer(inputs, "stale_key_days", 30, minimum=1)
    return Exposure(accounts=accounts, api_keys=keys, routes=routes, stale_key_days=stale)


def lockdown_plan(exposure: Exposure, risk_level: str = "high") -> dict[str, Any]:
    """Ordered actions (freeze, revoke, suspend, disable withdrawals, rotate) and what stays usable."""
    actions: list[dict[str, str]] = []

    def act(target: str, ident: str, action: str, reason: str, venue: str = "") -> None:
        actions.append({"target": target, "id": ident, "venue": venue, "action": action, "reason": reason})

    frozen_venues: set[str] = set()
    trading: list[str] = []
    for account in exposure.accounts:
        if account.compromised:
            act("account", account.id, "freeze", "marked compromised", account.venue)
            frozen_venues.add(account.venue)
        else:
            trading.append(account.id)
            if account.withdrawals:
                act("account", account.id, "disable_withdrawals", "no funds leave during the crash", account.venue)

    kept_keys: list[str] = []
    for key in exposure.api_keys:
        if key.compromised:
            act("api_key", key.id, "revoke", "marked compromised", key.venue)
        elif "withdraw" in key.scopes:
            act("api_key", key.id, "revoke", "can withdraw funds", key.venue)
        elif key.venue in frozen_venues:
            act("api_key", key.id, "revoke", f"venue {key.venue} is frozen", key.venue)
        elif key.last_used_days > exposure.stale_key_days:
            act("api_key", key.id, "revoke", f"unused for {key.last_used_days} days", key.venue)
        elif "trade" in key.scopes:
            kept_keys.append(key.id)
            act("api_key", key.id, "rotate_after_liquidation", "needed to liquidate; rotate once done", key.venue)
        elif risk_level == "critical":
            act("api_key", key.id, "revoke", "read access leaks positions at critical risk", key.venue)
        else:
            kept_keys.append(key.id)

    safe_routes: list[str] = []
    for route in exposure.routes:
        if route.whitelisted and (route.kind == "cold_storage" or risk_level == "low"):
            safe_routes.append(route.id)
        elif route.whitelisted:
            act("route", route.id, "suspend", f"only cold storage stays open at {risk_level} risk")
        else:
            act("route", route.id, "suspend", "not whitelisted")

    actions.sort(key=lambda a: (PRIORITY[a["action"]], a["target"], a["id"]))
    steps = [{"step": i, **a} for i, a in enumerate(actions, start=1)]
    counts: dict[str, int] = {}
    for a in actions:
        counts[a["action"]] = counts.get(a["action"], 0) + 1
    return {
        "risk_level": risk_level,
        "actions": steps,
        "summary": dict(sorted(counts.items())),
        "frozen_accounts": [a.id for a in exposure.accounts if a.compromised],
        "trading_accounts": trading,
        "revoked_keys": [a["id"] for a in actions if a["target"] == "api_key" and a["action"] == "revoke"],
        "kept_keys": kept_keys,
        "safe_routes": safe_routes,
    }


async def lockdown(ctx: AgentContext) -> dict[str, Any]:
    """Plan the lockdown of ``inputs.accounts``, ``inputs.api_keys`` and ``inputs.withdrawal_routes``."""
    exposure = parse_exposure(ctx.inputs)
    await ctx.progress(
        0.2, f"{len(exposure.accounts)} accounts, {len(exposure.api_keys)} keys, {len(exposure.routes)} routes"
    )
    plan = lockdown_plan(exposure, str(ctx.risk.get("level") or "high"))
    await ctx.pay(ACTION_FEE, len(plan["actions"]), "lockdown actions")
    await ctx.progress(1.0, f"{len(plan['actions'])} lockdown actions planned")
    return plan
