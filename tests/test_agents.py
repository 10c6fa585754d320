"""Built-in agents: their pure logic, their budgets under every template, and the templates file.

No Redis: agents run against an in-memory meter for the SDK's ``spend`` and ``progress`` calls.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field, SecretStr

from config.settings import DEFAULT_TEMPLATES, Settings
from mission.agents import resolve_agent
from mission.errors import BudgetExceeded
from mission.models import LLM_AGENT, Template
from mission.plan import build_plan, merge_config
from mission.templates import department_stages, outcome_logic_hash, read_templates_file
from workers.agents import (
    compliance,
    fields,
    finance,
    intelligence,
    legal,
    redteam,
    research,
    security,
    strategy,
    valuation,
    wealth,
)
from workers.agents.sdk import AgentContext, set_calls
from workers.surface import public_surface, redact_url, scrub, secrets_of, surface_of

TEMPLATES_FILE = Path(__file__).resolve().parent.parent / "config" / "mission_templates.json"


# --- an in-memory context -------------------------------------------------------------------


class MeterStore:
    """An `AttemptCalls` in memory: a spend meter and a progress log."""

    def __init__(self, allocated_cents: int) -> None:
        self.allocated = allocated_cents
        self.spent = 0
        self.notes: list[str] = []
        self.progress_log: list[tuple[float, str]] = []

    async def spend(self, seq: int, cents: int, note: str) -> tuple[str, int, int]:
        if self.spent + cents > self.allocated:
            return "exceeded", self.spent, self.allocated
        self.spent += cents
        self.notes.append(note)
        return "ok", self.spent, self.allocated

    async def progress(self, seq: int, value: float, message: str) -> bool:
        self.progress_log.append((value, message))
        return True


def audit_settings(**values: Any) -> Settings:
    base: dict[str, Any] = {"redis_url": "redis://127.0.0.1:6379/0", "retention_seconds": 7 * 86_400,
                            "max_inputs_bytes": 64 * 1024, "worker_concurrency": 50, "lease_seconds": 10.0,
                            "retry_backoff_seconds": 0.5, "max_lease_losses": 3}  # fmt: skip
    return Settings(**{**base, **values})


class FutureSettings(Settings):
    """Settings with the fields the API is expected to grow; the audit must pick them up."""

    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: list[SecretStr] = Field(default_factory=list)
    graphiql: bool = False
    introspection: bool = False


def make_ctx(
    *,
    inputs: dict[str, Any] | None = None,
    upstream: dict[str, Any] | None = None,
    risk: dict[str, Any] | None = None,
    allocated: Decimal = Decimal("1000.00"),
    ttl: float = 600,
    role: str = "agent",
    app_settings: Settings | None = None,
) -> tuple[AgentContext, MeterStore]:
    store = MeterStore(int(allocated * 100))
    config = {"budget": str(allocated), "ttl": ttl, "risk": risk or {}, "inputs": inputs or {}}
    ctx = AgentContext(
        mission_id="mssn_test",
        role=role,
        department="Test",
        attempt=1,
        inputs=dict(inputs or {}),
        upstream=dict(upstream or {}),
        config=config,
        deadline=datetime.now(UTC) + timedelta(seconds=ttl),
        allocated=allocated,
        service=public_surface(app_settings or audit_settings()),
    )
    set_calls(store)  # this test's SDK calls go to the meter
    return ctx, store


def templates() -> dict[str, Template]:
    return {t.id: t for t in read_templates_file(TEMPLATES_FILE)}


async def run_mission(
    template: Template, overrides: dict[str, Any] | None = None, *, app_settings: Settings | None = None
) -> dict[str, tuple[Any, MeterStore, Decimal]]:
    """Every computing agent of a template in stage order with its planned allocation: role → (output,
    meter, allocated). Model agents (`"agent": "llm"`) need a model server: tests/test_llm.py runs them."""
    config = merge_config(template, overrides, max_inputs_bytes=64 * 1024)
    plan = build_plan(template, config)
    config_json = config.model_dump(mode="json")
    results: dict[str, tuple[Any, MeterStore, Decimal]] = {}
    for job in sorted(plan.jobs, key=lambda j: j.stage):
        if job.agent == LLM_AGENT:
            continue
        allocated = Decimal(job.allocated_cents) / 100
        ctx, store = make_ctx(
            inputs=config_json["inputs"],
            upstream={r: results[r][0] for r in job.depends_on},
            risk=config_json["risk"],
            allocated=allocated,
            ttl=config.ttl,
            role=job.role,
            app_settings=app_settings,
        )
        output = await resolve_agent(job.agent)(ctx)
        json.dumps(output, allow_nan=False)  # what the runner stores
        results[job.role] = (output, store, allocated)
    return results


# --- fields ---------------------------------------------------------------------------------


def test_fields_name_the_bad_field() -> None:
    with pytest.raises(ValueError, match=r"inputs\.candidates\[1\]\.revenue must be a number, not str"):
        intelligence.parse_candidates({"candidates": [{"name": "A", "revenue": 1, "ebitda": 1},
                                                      {"name": "B", "revenue": "big", "ebitda": 1}]})  # fmt: skip
    with pytest.raises(ValueError, match=r"inputs\.candidates must be a list of objects, not str"):
        intelligence.parse_candidates({"candidates": "Acme"})
    with pytest.raises(ValueError, match=r"inputs\.x must be a whole number, not 2\.5"):
        fields.integer({"x": 2.5}, "x", 1)
    with pytest.raises(ValueError, match=r"inputs\.flag must be true or false, not str"):
        fields.flag({"flag": "yes"}, "flag")
    with pytest.raises(ValueError, match=r"inputs\.n must be a number, not bool"):
        fields.number({"n": True}, "n", 1.0)
    with pytest.raises(ValueError, match=r"inputs\.r\[1\] must be a number"):
        fields.numbers({"r": [1, "2"]}, "r")
    assert fields.number({"n": None}, "n", 3.0) == 3.0
    assert fields.strings({"s": "one"}, "s") == ["one"]


# --- M&A Scout ------------------------------------------------------------------------------


def company(name: str, **values: Any) -> intelligence.Company:
    base: dict[str, Any] = {"sector": "software", "revenue": 100.0, "ebitda": 20.0, "growth": 0.1, "debt": 20.0,
                            "cash": 10.0, "top_customer_share": 0.1, "litigation": False}  # fmt: skip
    return intelligence.Company(name=name, **{**base, **values})


def test_screen_computes_metrics_and_explains_rejections() -> None:
    companies = [
        company("Good", revenue=100, ebitda=25, growth=0.2, debt=30, cash=5),
        company("Thin", revenue=100, ebitda=5),
        company("Levered", ebitda=10, debt=60, cash=0),
        company("Small", revenue=5, ebitda=2),
        company("Other", sector="mining"),
        company("LossMaker", ebitda=-4, debt=10, cash=0),
    ]
    criteria = intelligence.Criteria(sectors=("software",), min_revenue=10, min_margin=0.1, max_leverage=3.5)
    out = intelligence.screen_companies(companies, criteria)
    assert out["screened"] == 6
    assert [m["name"] for m in out["shortlist"]] == ["Good"]
    good = out["shortlist"][0]
    assert good["margin"] == 0.25 and good["leverage"] == 1.0 and good["net_debt"] == 25
    assert 0 < good["score"] <= 100
    reasons = {r["name"]: " / ".join(r["reasons"]) for r in out["rejected"]}
    assert "margin 5.0% below 10.0%" in reasons["Thin"]
    assert "leverage 6.0x above 3.5x" in reasons["Levered"]
    assert "revenue 5 below 10" in reasons["Small"]
    assert "sector mining is not targeted" in reasons["Other"]
    assert "net debt with no positive EBITDA" in reasons["LossMaker"]


def test_shortlist_is_ordered_by_score_and_capped() -> None:
    companies = [company(f"C{i}", growth=0.02 * i) for i in range(6)]
    out = intelligence.screen_companies(companies, intelligence.Criteria(shortlist_size=3))
    assert [m["name"] for m in out["shortlist"]] == ["C5", "C4", "C3"]
    assert out["reserve"] == ["C2", "C1", "C0"]


def test_risk_flags() -> None:
    risky = company("Risky", ebitda=10, debt=50, cash=0, growth=-0.1, top_customer_share=0.6, litigation=True)
    flags = {f["code"]: f["severity"] for f in intelligence.risk_flags(risky)}
    assert flags == {"high_leverage": "high", "shrinking": "medium", "customer_concentration": "high",
                     "litigation": "high"}  # fmt: skip
    assessed = intelligence.assess_company(company("Clean"))
    assert assessed["flags"] == [] and assessed["risk_score"] == 0 and assessed["risk_level"] == "low"
    assert intelligence.assess_company(company("Loss", ebitda=-1, debt=0))["flags"][0]["code"] == "loss_making"


def test_candidate_names_must_be_unique() -> None:
    item = {"name": "Acme", "revenue": 1, "ebitda": 1}
    with pytest.raises(ValueError, match=r"inputs\.candidates\[1\]\.name 'ACME' appears more than once"):
        intelligence.parse_candidates({"candidates": [item, {**item, "name": "ACME"}]})


def target(name: str, score: float, ebitda: float = 10.0, growth: float = 0.0, net_debt: float = 0.0) -> wealth.Target:
    return wealth.Target(name=name, sector="software", ebitda=ebitda, growth=growth, net_debt=net_debt, score=score)


def test_valuation_of_a_target() -> None:
    value = wealth.value_target(target("A", 50, ebitda=10, growth=0.25, net_debt=20), wealth.Deal(control_premium=0.2))
    assert value == {"multiple": 10.0, "enterprise_value": 100.0, "equity_value": 80.0, "offer_price": 96.0}


def test_ranking_respects_risk_capital_and_target_count() -> None:
    targets = [target("A", 80), target("B", 70), target("C", 60), target("D", 90), target("E", 50)]
    risks = {
        "a": {"risk_score": 0.1, "risk_level": "low", "flags": []},
        "b": {"risk_score": 0.0, "risk_level": "low", "flags": []},
        "c": {"risk_score": 0.0, "risk_level": "low", "flags": []},
        "d": {"risk_score": 0.5, "risk_level": "high", "flags": [{}, {}]},
    }
    deal = wealth.Deal(capital=250, base_multiple=10, control_premium=0.0, max_targets=2)  # 100 per target
    out = wealth.rank_targets_plan(targets, risks, deal, "medium")
    assert [e["name"] for e in out["excluded"]] == ["D"]  # 0.5 > medium tolerance 0.35
    assert [r["name"] for r in out["ranked"]] == ["A", "B", "C", "E"]  # 72, 70, 60, 35 (E unassessed: 0.3)
    assert out["recommended"] == ["A", "B"]
    assert out["committed"] == 200
    assert "2 targets already chosen" in out["ranked"][2]["rationale"]
    assert out["ranked"][3]["risk_level"] == "unassessed"
    tight = wealth.rank_targets_plan(targets, risks, replace(deal, capital=150, max_targets=5), "critical")
    assert [r["name"] for r in tight["ranked"]] == ["A", "B", "C", "D", "E"]  # critical risk tolerates D
    assert tight["recommended"] == ["A"]
    assert "exceeds the 50.0 of capital left" in tight["ranked"][1]["rationale"]


async def test_scout_pipeline_end_to_end() -> None:
    t = templates()["mission_001"]
    results = await run_mission(t)
    shortlist = results["scout"][0]["shortlist"]
    assert shortlist and all(m["score"] > 0 for m in shortlist)
    ranked = results["dealmaker"][0]
    assert ranked["recommended"] and ranked["committed"] <= ranked["capital"]
    assert {e["name"] for e in ranked["excluded"]} == {"Sable Medical Devices"}
    assert all(r["rationale"] for r in ranked["ranked"])


# --- Crash Protocol -------------------------------------------------------------------------


SAMPLE_EXPOSURE = {
    "accounts": [
        {"id": "a1", "venue": "binance", "withdrawals": True},
        {"id": "a2", "venue": "okx", "withdrawals": True, "compromised": True},
        {"id": "a3", "venue": "vault", "kind": "custody", "withdrawals": False},
    ],
    "api_keys": [
        {"id": "k-trade", "venue": "binance", "scopes": ["read", "trade"], "secret": "s3cr3t-value-xyz"},
        {"id": "k-withdraw", "venue": "binance", "scopes": ["withdraw"]},
        {"id": "k-okx", "venue": "okx", "scopes": ["trade"]},
        {"id": "k-stale", "venue": "binance", "scopes": ["read"], "last_used_days": 45},
        {"id": "k-read", "venue": "binance", "scopes": ["read"]},
    ],
    "withdrawal_routes": [
        {"id": "cold", "kind": "cold_storage", "whitelisted": True, "address": "bc1qexampleaddress"},
        {"id": "bank", "kind": "bank", "whitelisted": True},
        {"id": "anon", "kind": "address", "whitelisted": False},
    ],
}


def test_lockdown_plan() -> None:
    plan = security.lockdown_plan(security.parse_exposure(SAMPLE_EXPOSURE), "high")
    by_id = {(a["target"], a["id"]): a["action"] for a in plan["actions"]}
    assert by_id == {
        ("account", "a2"): "freeze",
        ("account", "a1"): "disable_withdrawals",
        ("api_key", "k-withdraw"): "revoke",
        ("api_key", "k-okx"): "revoke",  # its venue is frozen
        ("api_key", "k-stale"): "revoke",
        ("api_key", "k-trade"): "rotate_after_liquidation",
        ("route", "bank"): "suspend",
        ("route", "anon"): "suspend",
    }
    assert [a["step"] for a in plan["actions"]] == list(range(1, 9))
    assert plan["actions"][0]["action"] == "freeze"  # stop the bleeding first
    assert plan["frozen_accounts"] == ["a2"]
    assert plan["trading_accounts"] == ["a1", "a3"]
    assert plan["kept_keys"] == ["k-trade", "k-read"]
    assert plan["safe_routes"] == ["cold"]
    text = json.dumps(plan)
    assert "s3cr3t" not in text and "bc1q" not in text
    assert security.lockdown_plan(security.parse_exposure(SAMPLE_EXPOSURE), "high") == plan  # deterministic


def test_lockdown_depends_on_risk_level() -> None:
    exposure = security.parse_exposure(SAMPLE_EXPOSURE)
    critical = security.lockdown_plan(exposure, "critical")
    assert "k-read" in critical["revoked_keys"]
    low = security.lockdown_plan(exposure, "low")
    assert low["safe_routes"] == ["cold", "bank"]


def test_lockdown_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"inputs\.api_keys\[0\]\.scopes has unknown scope 'admin'"):
        security.parse_exposure({"api_keys": [{"id": "k", "scopes": ["admin"]}]})
    with pytest.raises(ValueError, match=r"inputs\.accounts\[1\]\.id 'a' appears more than once"):
        security.parse_exposure({"accounts": [{"id": "a"}, {"id": "a"}]})
    with pytest.raises(ValueError, match=r"inputs\.accounts\[0\]\.withdrawals must be true or false"):
        security.parse_exposure({"accounts": [{"id": "a", "withdrawals": "no"}]})


PORTFOLIO = [
    finance.Position("BTC", 12, 64_000, 25_000, "main"),
    finance.Position("ILV", 1_500, 35, 40_000, "main"),
    finance.Position("OKB", 2_000, 48, 500_000, "frozen-acct"),
]


def check_schedule(plan: dict[str, Any], positions: list[finance.Position], horizon: float, drawdown: float) -> None:
    """The invariants of every liquidation schedule."""
    rounding = 1e-4  # order fields are rounded to 4 decimals
    for tranche in plan["tranches"]:
        assert 0 <= tranche["at_seconds"] < tranche["until_seconds"] <= horizon
        for order in tranche["orders"]:
            assert order["est_slippage"] <= drawdown + rounding
            assert order["participation"] <= plan["participation_cap"] + rounding
            assert order["quantity"] > 0
    sold: dict[str, float] = {}
    for tranche in plan["tranches"]:
        for order in tranche["orders"]:
            sold[order["symbol"]] = sold.get(order["symbol"], 0.0) + order["quantity"]
    for p in positions:
        assert sold.get(p.symbol, 0.0) <= p.quantity + 1e-6
    assert plan["totals"]["est_drawdown"] <= drawdown + rounding
    assert plan["totals"]["est_proceeds"] <= plan["totals"]["sold_mark_value"] + 0.01


def test_liquidation_schedule() -> None:
    rules = finance.LiquidationRules(
        max_drawdown=0.2, max_participation=0.25, frozen_accounts=frozenset({"frozen-acct"})
    )
    plan = finance.liquidation_schedule(PORTFOLIO, rules, horizon_seconds=600)
    check_schedule(plan, PORTFOLIO, 600, 0.2)
    assert plan["usable_seconds"] == 540 and len(plan["tranches"]) == 18
    status = {p["symbol"]: p for p in plan["positions"]}
    assert status["BTC"]["status"] == "liquidated" and status["BTC"]["sold"] == 12
    assert status["ILV"]["status"] == "partial" and "unsold by the deadline" in status["ILV"]["reason"]
    assert status["OKB"]["status"] == "held" and status["OKB"]["reason"] == "account frozen-acct is frozen"
    assert plan["totals"]["coverage"] < 1


def test_liquidation_drawdown_caps_participation() -> None:
    tight = finance.LiquidationRules(max_drawdown=0.01, max_participation=0.5, impact=0.1)
    assert tight.participation_cap == pytest.approx(0.1)
    plan = finance.liquidation_schedule(PORTFOLIO[:1], tight, horizon_seconds=3600)
    check_schedule(plan, PORTFOLIO[:1], 3600, 0.01)
    none = finance.liquidation_schedule(PORTFOLIO[:1], replace(tight, max_drawdown=0.0), horizon_seconds=3600)
    assert none["tranches"] == [] and none["positions"][0]["status"] == "held"
    with pytest.raises(ValueError, match="no time is left"):
        finance.liquidation_schedule(PORTFOLIO, tight, horizon_seconds=0)


@settings(max_examples=60, deadline=None)
@given(
    quantities=st.lists(st.floats(0.001, 1e6), min_size=1, max_size=5),
    volume=st.floats(1, 1e8),
    horizon=st.floats(1, 7200),
    drawdown=st.floats(0, 1),
    participation=st.floats(0, 1),
    tranches=st.one_of(st.none(), st.integers(1, 50)),
)
def test_liquidation_invariants(
    quantities: list[float], volume: float, horizon: float, drawdown: float, participation: float, tranches: int | None
) -> None:
    positions = [finance.Position(f"S{i}", q, 10.0, volume) for i, q in enumerate(quantities)]
    rules = finance.LiquidationRules(max_drawdown=drawdown, max_participation=participation, tranches=tranches)
    check_schedule(finance.liquidation_schedule(positions, rules, horizon), positions, horizon, drawdown)


def test_liquidation_rules_from_risk() -> None:
    assert finance.parse_rules({}, {"level": "high", "max_drawdown": 0.2}).participation_cap == 0.25
    assert finance.parse_rules({}, {"level": "low"}).max_drawdown == 0.05
    with pytest.raises(ValueError, match=r"inputs\.liquidation\.impact must be a number, not str"):
        finance.parse_rules({"liquidation": {"impact": "high"}}, {})
    with pytest.raises(ValueError, match=r"inputs\.portfolio\[0\]\.daily_volume is required"):
        finance.parse_portfolio({"portfolio": [{"symbol": "BTC", "quantity": 1, "price": 1}]})


async def test_crash_protocol_end_to_end() -> None:
    results = await run_mission(templates()["mission_002"], {"budget": 5000, "ttl": 300})
    lockdown, liquidation = results["sentinel"][0], results["liquidator"][0]
    assert lockdown["frozen_accounts"] == ["okx-legacy"]
    status = {p["symbol"]: p["status"] for p in liquidation["positions"]}
    assert status["OKB"] == "held" and status["BTC"] == "liquidated"
    assert liquidation["horizon_seconds"] <= 300
    assert all(t["until_seconds"] <= liquidation["horizon_seconds"] for t in liquidation["tranches"])
    assert liquidation["totals"]["est_drawdown"] <= 0.2


async def test_liquidator_uses_fewer_tranches_when_budget_is_short() -> None:
    portfolio = [{"symbol": f"S{i}", "quantity": 1e6, "price": 1, "daily_volume": 1e6} for i in range(5)]
    ctx, store = make_ctx(inputs={"portfolio": portfolio}, allocated=Decimal("6.00"), ttl=600)
    plan = await finance.liquidate(ctx)
    assert len(plan["tranches"]) == 3  # 5 orders a tranche at 0.40 each: 6.00 pays for 3
    assert store.spent <= store.allocated
    ctx, _ = make_ctx(inputs={"portfolio": portfolio}, allocated=Decimal("1.00"))
    with pytest.raises(BudgetExceeded):
        await finance.liquidate(ctx)


# --- Shadow Mirror --------------------------------------------------------------------------


def finding_ids(surface: dict[str, Any]) -> dict[str, str]:
    found = redteam.network_findings(surface) + redteam.access_findings(surface) + redteam.limit_findings(surface)
    return {f["id"]: f["severity"] for f in found}


def test_audit_of_settings_without_the_optional_fields() -> None:
    """Settings as they are today: no host, no API keys, no GraphiQL or introspection switch."""
    today = SimpleNamespace(redis_url="redis://127.0.0.1:6379/0", retention_seconds=7 * 86_400,
                            max_inputs_bytes=64 * 1024, worker_concurrency=50, lease_seconds=10.0,
                            retry_backoff_seconds=0.5, max_lease_losses=3)  # fmt: skip
    ids = finding_ids(surface_of(today))
    assert ids == {"SM-NET-03": "low", "SM-NET-00": "info", "SM-ACC-01": "high", "SM-ACC-03": "low",
                   "SM-ACC-04": "low"}  # fmt: skip
    assert "SM-NET-03" in finding_ids(surface_of(audit_settings()))  # the real Settings class too


def test_audit_catches_each_risky_setting() -> None:
    risky = FutureSettings(
        redis_url="redis://admin:Hunter2-password@10.0.0.5:6379/0",
        host="0.0.0.0",
        api_keys=[],
        graphiql=True,
        introspection=True,
        retention_seconds=400 * 86_400,
        max_inputs_bytes=2 * 1024 * 1024,
        worker_concurrency=5000,
        lease_seconds=600,
        retry_backoff_seconds=0,
        max_lease_losses=0,
        max_query_depth=50,
        max_request_bytes=32 * 1024 * 1024,
        max_subscriptions_per_connection=5000,
    )
    ids = finding_ids(surface_of(risky))
    assert ids == {
        "SM-NET-02": "high",  # no TLS to a network Redis
        "SM-NET-04": "high",  # all interfaces, no auth
        "SM-ACC-01": "critical",  # auth off and exposed
        "SM-ACC-03": "medium",
        "SM-ACC-04": "medium",
        "SM-LIM-01": "medium",
        "SM-LIM-02": "medium",
        "SM-LIM-03": "low",
        "SM-LIM-04": "low",
        "SM-LIM-05": "low",
        "SM-LIM-06": "low",
        "SM-LIM-07": "low",
        "SM-LIM-08": "medium",
        "SM-LIM-09": "low",
    }
    no_password = surface_of(audit_settings(redis_url="redis://redis.internal:6379/0"))
    assert finding_ids(no_password)["SM-NET-01"] == "critical"


def test_audit_of_hardened_settings() -> None:
    hardened = FutureSettings(
        redis_url="rediss://svc:Correct-Horse-Battery@redis.internal:6380/0",
        api_keys=[SecretStr("k" * 40), SecretStr("short-key")],
    )
    ids = finding_ids(surface_of(hardened))
    assert ids == {"SM-ACC-02": "medium"}  # one short key; everything else is fine
    report = redteam.report_of(redteam.access_findings(surface_of(hardened)))
    assert report["score"] == 92 and report["grade"] == "A"


def test_secrets_are_redacted() -> None:
    assert redact_url("redis://user:pa55word@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact_url("redis://:pa55word@host/0") == "redis://:***@host/0"
    assert redact_url("redis://host/0?password=pa55word&db=1") == "redis://host/0?password=***&db=1"
    secret_settings = FutureSettings(
        redis_url="redis://:TopSecret-999@10.1.2.3:6379/0", api_keys=[SecretStr("key-abc-123")]
    )
    surface = surface_of(secret_settings)
    assert "TopSecret-999" not in json.dumps(surface) and surface["redis"]["password"] is True
    assert secrets_of(secret_settings) == ["TopSecret-999", "key-abc-123"]
    assert scrub({"note": ["TopSecret-999 leaked"]}, ["TopSecret-999"]) == {"note": ["*** leaked"]}
    encoded = audit_settings(redis_url="redis://u:p%40ss-word@h:6379/0?token=tok-123")
    assert set(secrets_of(encoded)) == {"p%40ss-word", "p@ss-word", "tok-123"}
    assert redact_url(encoded.redis_url) == "redis://u:***@h:6379/0?token=***"


async def test_shadow_mirror_never_leaks_secrets() -> None:
    leaky = FutureSettings(
        redis_url="redis://root:Sup3r-S3cret-Pass@203.0.113.7:6379/0",
        host="203.0.113.7",
        api_keys=[SecretStr("short-key-123")],
    )
    results = await run_mission(templates()["mission_003"], app_settings=leaky)
    text = json.dumps({role: out for role, (out, _, _) in results.items()})
    assert "Sup3r-S3cret-Pass" not in text and "short-key-123" not in text
    report = results["reporter"][0]
    assert report["counts"]["high"] >= 1 and report["grade"] in "BCDF"
    assert {f["id"] for f in report["findings"]} == {"SM-NET-02", "SM-NET-04", "SM-ACC-02"}
    assert report["findings"] == sorted(
        report["findings"], key=lambda f: (redteam.SEVERITIES.index(f["severity"]), f["id"])
    )


def test_report_aggregates_and_deduplicates() -> None:
    crit = redteam.finding("network", "SM-NET-01", "critical", "e")
    low = redteam.finding("limits", "SM-LIM-04", "low", "e")
    report = redteam.report_of([low, crit, crit])
    assert [f["id"] for f in report["findings"]] == ["SM-NET-01", "SM-LIM-04"]
    assert report["score"] == 57 and report["grade"] == "D"
    assert report["counts"]["critical"] == 1 and report["remediation"][0].startswith("SM-NET-01: ")
    empty = redteam.report_of([])
    assert (empty["score"], empty["grade"], empty["summary"]) == (100, "A", "no findings")


# --- Vendor Vetting -------------------------------------------------------------------------


def test_sanctions_name_matching() -> None:
    assert compliance.names_match("Volkov Trading LLC", "VOLKOV TRADING, L.L.C.")
    assert compliance.names_match("Volkov Trading LLC", "Volkov Trading Ltd.")
    assert compliance.names_match("Red Basin Petroleum Co", "red basin petroleum")
    assert not compliance.names_match("Basin Foods", "Red Basin Petroleum")
    out = compliance.sanctions_check(
        {"name": "Stratus Ltd", "owners": ["Volkov Trading Limited"], "country": "Iran"},
        ["Volkov Trading LLC"],
        ["iran"],
    )
    assert out["status"] == "fail"
    assert [f["title"] for f in out["findings"]] == ["Sanctions list match", "Restricted country"]


def test_compliance_checks() -> None:
    vendor = templates()["mission_004"].defaults.inputs["vendor"]
    assert compliance.financial_check(vendor)["status"] == "pass"
    assert compliance.data_protection_check(vendor, ["EU", "US"])["status"] == "pass"
    assert compliance.data_protection_check(vendor, ["EU"])["status"] == "fail"
    assert compliance.contract_check(vendor)["status"] == "warn"
    assert compliance.concentration_check({**vendor, "alternatives": 0})["status"] == "fail"
    incidents = compliance.incidents_check(vendor)
    assert incidents["status"] == "warn" and incidents["metrics"]["recent_incidents"] == 1
    with pytest.raises(ValueError, match=r"inputs\.vendor\.incidents\[0\]\.severity must be one of"):
        compliance.incidents_check({"incidents": [{"severity": "apocalyptic"}]})


def test_verdict() -> None:
    def check(name: str, status: str, severity: str = "medium") -> dict[str, Any]:
        return {"check": name, "status": status, "findings": [] if status == "pass" else [{"severity": severity}]}

    clean = [check("a", "pass"), check("b", "pass")]
    assert legal.verdict_of(clean)["decision"] == "approve"
    assert legal.verdict_of([*clean, check("c", "warn")])["decision"] == "approve_with_conditions"
    one_fail = [*clean, check("c", "fail", "high")]
    assert legal.verdict_of(one_fail, "medium")["decision"] == "reject"
    assert legal.verdict_of(one_fail, "high")["decision"] == "escalate"
    assert legal.verdict_of([check("sanctions", "fail", "critical")], "critical")["decision"] == "reject"
    assert legal.verdict_of([check("a", "not_run")])["decision"] == "insufficient_information"


async def test_vendor_vetting_end_to_end() -> None:
    results = await run_mission(templates()["mission_004"])
    verdict = results["counsel"][0]
    assert verdict["decision"] == "approve_with_conditions"
    assert len(verdict["checks"]) == 6 and verdict["conditions"]


# --- Market Entry ---------------------------------------------------------------------------


def test_market_sizing_and_entry_plan() -> None:
    market = {"market": "X", "population": 10, "adoption": 0.5, "price": 100, "growth": 0.1, "competitors": 5,
              "regulation": "light"}  # fmt: skip
    sized = research.size_market(market, reach=0.4, capture=0.1)
    assert (sized["tam"], sized["sam"], sized["som"]) == (500, 200, 10)
    markets = [
        {"market": "Big", "som": 40, "growth": 0.2, "competitors": 2, "regulation": "light"},
        {"market": "Heavy", "som": 30, "growth": 0.1, "competitors": 2, "regulation": "heavy"},
        {"market": "Crowded", "som": 35, "growth": 0.1, "competitors": 10, "regulation": "moderate"},
        {"market": "Tiny", "som": 1, "growth": 0.0, "competitors": 10, "regulation": "heavy"},
    ]
    out = strategy.plan_entry(markets, strategy.Policy(max_markets=3, min_attractiveness=0.3, markets_per_year=2))
    assert [(p["market"], p["wave"], p["mode"]) for p in out["plan"]] == [
        ("Big", 1, "direct"), ("Crowded", 1, "acquisition"), ("Heavy", 2, "partnership")
    ]  # fmt: skip
    assert out["deferred"][0]["market"] == "Tiny" and "below the threshold" in out["deferred"][0]["reason"]


def test_projection() -> None:
    plan = [{"market": "A", "mode": "direct", "start_year": 1, "som": 10.0}]
    p = finance.ProjectionInputs(years=3, gross_margin=0.6, opex_ratio=0.2, discount_rate=0.0, ramp=(0.5, 1.0))
    out = finance.project_markets(plan, p)
    assert out["revenue"] == [5.0, 10.0, 10.0]
    assert out["cash_flow"] == [0.0, 4.0, 4.0]  # 5 × 0.4 − 2.0 setup, then 10 × 0.4
    assert out["npv"] == 8.0 and out["payback_year"] == 1 and out["verdict"] == "invest"
    with pytest.raises(ValueError, match=r"inputs\.finance\.ramp\[0\] must be at most 1"):
        finance.parse_projection({"finance": {"ramp": [2]}})


async def test_market_entry_end_to_end() -> None:
    results = await run_mission(templates()["mission_005"])
    plan = results["strategist"][0]["plan"]
    assert [p["market"] for p in plan] == ["Brazil", "Nordics"]  # medium risk: two markets
    projection = results["controller"][0]
    assert [m["market"] for m in projection["markets"]] == ["Brazil", "Nordics"]
    assert projection["npv"] > 0 and projection["payback_year"] is not None


# --- Fair Value Consensus -------------------------------------------------------------------


def test_three_valuations() -> None:
    company_data = {"name": "Co", "ebitda": 10, "free_cash_flow": 10, "growth": 0.0, "net_debt": 20, "shares": 10,
                    "assets": 100, "liabilities": 30}  # fmt: skip
    a = valuation.Assumptions(discount_rate=0.1, terminal_growth=0.0, years=1, peer_multiples=[6, 8, 10])
    dcf = valuation.dcf_value(company_data, a)
    assert dcf["enterprise_value"] == pytest.approx(100.0)  # a flat perpetuity of 10 at 10 %
    assert dcf["equity_value"] == pytest.approx(80.0) and dcf["per_share"] == pytest.approx(8.0)
    comps = valuation.multiples_value(company_data, a)
    assert comps["multiple"] == 8 and comps["equity_value"] == 60
    assets = valuation.asset_value(company_data, replace(a, asset_haircut=0.2))
    assert assets["equity_value"] == 50
    with pytest.raises(ValueError, match=r"inputs\.company\.free_cash_flow is required"):
        valuation.dcf_value({"ebitda": 1}, a)
    with pytest.raises(ValueError, match="discount_rate must be above terminal_growth"):
        valuation.parse_assumptions({"valuation": {"discount_rate": 0.02, "terminal_growth": 0.03}})


async def test_fair_value_end_to_end() -> None:
    results = await run_mission(templates()["mission_006"])
    values = [out["equity_value"] for out, _, _ in results.values()]
    assert len(values) == 3 and all(v > 0 for v in values)


# --- every agent, every template ------------------------------------------------------------


def every_agent() -> list[str]:
    return sorted({a.agent for t in read_templates_file(TEMPLATES_FILE) for a in t.squad} - {LLM_AGENT})


@pytest.mark.parametrize("ref", every_agent())
async def test_every_agent_works_with_no_inputs(ref: str) -> None:
    ctx, store = make_ctx()
    output = await resolve_agent(ref)(ctx)
    assert isinstance(output, dict) and output
    json.dumps(output, allow_nan=False)
    assert store.progress_log, "an agent reports progress at least once"
    assert store.spent <= store.allocated


@pytest.mark.parametrize(
    ("ref", "inputs", "message"),
    [
        ("intelligence.screen", {"candidates": [{"name": "A", "revenue": "1M", "ebitda": 1}]},
         r"inputs\.candidates\[0\]\.revenue must be a number"),
        ("intelligence.screen", {"criteria": {"sectors": 7}}, r"inputs\.criteria\.sectors must be a list"),
        ("wealth.rank_targets", {"deal": {"capital": "lots"}}, r"inputs\.deal\.capital must be a number"),
        ("security.lockdown", {"accounts": {"id": "a"}}, r"inputs\.accounts must be a list of objects"),
        ("finance.liquidate", {"portfolio": [{"symbol": "BTC", "quantity": -1, "price": 1, "daily_volume": 1}]},
         r"inputs\.portfolio\[0\]\.quantity must be at least 0"),
        ("finance.project", {"finance": {"years": "five"}}, r"inputs\.finance\.years must be a whole number"),
        ("compliance.sanctions", {"sanctions_list": [1]}, r"inputs\.sanctions_list\[0\] must be a string"),
        ("compliance.contract_terms", {"vendor": {"contract": []}}, r"inputs\.vendor\.contract must be an object"),
        ("research.market_size", {"markets": [{"name": "X"}]}, r"inputs\.markets\[0\]\.population is required"),
        ("strategy.entry_plan", {"strategy": {"max_markets": "2"}}, r"inputs\.strategy\.max_markets must be a whole"),
        ("valuation.multiples", {"company": {"ebitda": 1}}, r"inputs\.valuation\.peer_multiples is required"),
    ],
)  # fmt: skip
async def test_wrong_inputs_name_the_field(ref: str, inputs: dict[str, Any], message: str) -> None:
    ctx, store = make_ctx(inputs=inputs)
    with pytest.raises(ValueError, match=message):
        await resolve_agent(ref)(ctx)
    assert store.spent == 0, "nothing is charged for inputs that cannot be read"


CAPPED = ("unscreened", "unassessed", "unvalued", "unsized", "unevaluated", "unprojected")


@pytest.mark.parametrize("template_id", [f"mission_00{i}" for i in range(1, 7)])
@pytest.mark.parametrize("budget", ["min", "default"])
async def test_default_inputs_fit_every_allocation(template_id: str, budget: str) -> None:
    """At the template's default and minimum budgets, every agent does all its work within its allocation."""
    template = templates()[template_id]
    amount = template.limits.budget.min if budget == "min" else template.defaults.budget
    results = await run_mission(template, {"budget": str(amount)})
    assert set(results) == {a.role for a in template.squad if a.agent != LLM_AGENT}
    for role, (output, store, allocated) in results.items():
        assert allocated > 0, f"{role} has no allocation"
        assert 0 < store.spent <= store.allocated, f"{role} spent {store.spent} of {store.allocated} cents"
        for key in CAPPED:
            assert not output.get(key), f"{role} left {output.get(key)} undone at budget {amount}"


async def test_agents_are_deterministic() -> None:
    template = templates()["mission_001"]
    first = await run_mission(template)
    second = await run_mission(template)
    assert {r: o for r, (o, _, _) in first.items()} == {r: o for r, (o, _, _) in second.items()}


async def test_analysis_agents_cap_work_to_their_allocation() -> None:
    candidates = templates()["mission_001"].defaults.inputs["candidates"]
    ctx, store = make_ctx(inputs={"candidates": candidates}, allocated=Decimal("7.00"))
    out = await intelligence.screen(ctx)
    assert out["screened"] == 3 and len(out["unscreened"]) == len(candidates) - 3
    assert store.spent == 600


# --- the templates file ---------------------------------------------------------------------


def test_templates_file_loads_and_is_the_default() -> None:
    assert TEMPLATES_FILE == DEFAULT_TEMPLATES
    loaded = read_templates_file(TEMPLATES_FILE)
    raw = json.loads(TEMPLATES_FILE.read_text(encoding="utf-8"))["templates"]
    assert [t.id for t in loaded] == [f"mission_00{i}" for i in range(1, 7)]
    for template, item in zip(loaded, raw, strict=True):
        assert item["outcome_logic_hash"] == outcome_logic_hash(template)
        d, lim = template.defaults, template.limits
        assert lim.budget.min <= d.budget <= lim.budget.max and lim.ttl.min <= d.ttl <= lim.ttl.max
        assert 300 <= d.ttl <= 1800


def test_templates_cover_the_seed_and_the_shapes() -> None:
    by_id = templates()
    seed = {t.id: (t.name, t.sector, t.departments, t.dependencies) for t in by_id.values()}
    # the seed's departments, then the model agent's memo to the board
    assert seed["mission_001"] == (
        "M&A Scout",
        "Wealth",
        ["Intelligence", "Wealth", "Board"],
        {"Wealth": ["Intelligence"], "Board": ["Wealth"]},
    )
    assert seed["mission_002"] == ("Crash Protocol", "Finance", ["Security", "Finance"], {"Finance": ["Security"]})
    assert seed["mission_003"][:2] == ("Shadow Mirror", "Security")

    crash = by_id["mission_002"]
    assert crash.defaults.budget == 1000 and crash.defaults.risk.level == "high"
    assert crash.defaults.risk.max_drawdown == 0.2
    liquidator = next(a for a in crash.squad if a.agent == "finance.liquidate")
    assert liquidator.max_tries == 3 and liquidator.timeout
    merge_config(crash, {"budget": 5000, "ttl": 300}, max_inputs_bytes=64 * 1024)  # the seed's deploy example

    def fan_out(t: Template) -> bool:
        sizes: dict[str, int] = {}
        for a in t.squad:
            sizes[a.department] = sizes.get(a.department, 0) + 1
        return any(
            sizes[d] >= 6 and any(sizes[x] == 1 and d in ups for x, ups in t.dependencies.items()) for d in sizes
        )

    def chain(t: Template) -> bool:
        stages = department_stages(t)
        return len(stages) >= 3 and all(len(s) == 1 for s in stages)

    def quorum(t: Template) -> bool:
        return t.outcome.policy == "quorum" and t.outcome.count == 2 and len(t.squad) == 3 and not t.dependencies

    assert [t.id for t in by_id.values() if fan_out(t)] == ["mission_004"]
    assert {t.id for t in by_id.values() if chain(t)} == {"mission_001", "mission_003", "mission_005"}
    assert [t.id for t in by_id.values() if quorum(t)] == ["mission_006"]
    assert [t.id for t in by_id.values() if t.sector.casefold() == "security"] == ["mission_003"]
