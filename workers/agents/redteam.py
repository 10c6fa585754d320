"""Red-team agents (Shadow Mirror): audit this service's own settings, Recon → Probe → Report.

No inputs. ``recon`` maps the attack surface from ``ctx.service``, the public view of the service's
settings that every agent gets (`workers.surface`): booleans, counts, limits and the Redis URL with
its password masked, never a secret. Each probe turns the surface (from upstream, or from
``ctx.service`` when run alone) into findings ``{id, severity, title, evidence, remediation,
probe}``; ``report`` merges them into a score.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from workers.agents.sdk import AgentContext
from workers.surface import SHORT_KEY

RECON_FEE = Decimal("1.00")  # per surface area mapped
PROBE_FEE = Decimal("1.00")  # per check run
REPORT_FEE = Decimal("0.50")  # per finding aggregated, on top of REPORT_BASE
REPORT_BASE = Decimal("2.00")

SEVERITIES = ("critical", "high", "medium", "low", "info")
WEIGHT = {"critical": 40, "high": 20, "medium": 8, "low": 3, "info": 0}
# --- probes ---------------------------------------------------------------------------------

# id -> (title, remediation)
CATALOG: dict[str, tuple[str, str]] = {
    "SM-NET-00": ("Bind address is not in the settings", "Check the address the server is started with."),
    "SM-NET-01": (
        "Redis on a network host without a password",
        "Require a password or an ACL user and put it in MISSION_REDIS_URL; bind Redis to a private interface.",
    ),
    "SM-NET-02": (
        "Redis traffic is not encrypted",
        "Use a rediss:// URL (TLS) so credentials, inputs and outputs do not cross the network in clear text.",
    ),
    "SM-NET-03": (
        "Redis without a password",
        "Any local process can rewrite mission state and budgets: set a password even on loopback.",
    ),
    "SM-NET-04": (
        "API serves on a non-loopback address",
        "Bind to 127.0.0.1 behind a reverse proxy that terminates TLS, or firewall the port.",
    ),
    "SM-NET-05": ("CORS allows any origin", "List the front-end origins explicitly."),
    "SM-ACC-01": (
        "No API keys configured: authentication is off",
        "Configure API keys and require one on every request: anyone who reaches the API can deploy "
        "missions that spend budget.",
    ),
    "SM-ACC-02": ("Short API keys", f"Issue random keys of at least {SHORT_KEY} characters."),
    "SM-ACC-03": ("GraphiQL IDE is enabled", "Turn GraphiQL off in production."),
    "SM-ACC-04": ("Schema introspection is enabled", "Disable introspection for untrusted clients."),
    "SM-ACC-05": ("Debug mode is on", "Turn debug off: it exposes stack traces and internals."),
    "SM-LIM-01": (
        "Very long retention",
        "Keep finished missions' events and outputs 30 days or less: they may hold sensitive inputs.",
    ),
    "SM-LIM-02": (
        "Large inputs limit",
        "Cap mission inputs at 256 KiB: every job copies them, so big inputs exhaust Redis memory.",
    ),
    "SM-LIM-03": (
        "Very high worker concurrency",
        "Lower it: one worker running thousands of agents at once starves its event loop.",
    ),
    "SM-LIM-04": ("Slow crash recovery", "Keep leases short (10-60 s) so a dead worker's jobs are re-run quickly."),
    "SM-LIM-05": ("Retries without backoff", "Back off between retries to avoid retry storms."),
    "SM-LIM-06": ("A worker crash fails jobs outright", "Allow a few re-runs after a lost lease."),
    "SM-LIM-07": (
        "Loose GraphQL query limits",
        "Keep query depth, aliases and tokens small so one request cannot make the server do unbounded work.",
    ),
    "SM-LIM-08": ("Large request bodies", "Cap request bodies at 1 MiB or less."),
    "SM-LIM-09": ("Many subscriptions per connection", "Cap subscriptions per websocket connection (100 or less)."),
}

Probe = Callable[[dict[str, Any]], list[dict[str, str]]]
NETWORK_CHECKS = 4
ACCESS_CHECKS = 5
LIMIT_CHECKS = 9


def finding(probe: str, ident: str, severity: str, evidence: str) -> dict[str, str]:
    title, remediation = CATALOG[ident]
    return {
        "id": ident,
        "severity": severity,
        "title": title,
        "evidence": evidence,
        "remediation": remediation,
        "probe": probe,
    }


def _exposed(surface: dict[str, Any]) -> bool:
    """True when the API listens beyond loopback (unknown counts as not exposed)."""
    return surface["http"]["loopback"] is False


def _auth_off(surface: dict[str, Any]) -> bool:
    return not surface["auth"]["api_keys"]


def network_findings(surface: dict[str, Any]) -> list[dict[str, str]]:
    """Redis authentication and transport, the API's bind address, CORS."""
    out: list[dict[str, str]] = []
    redis, http = surface["redis"], surface["http"]
    where = f"redis_url = {redis['url']}"
    if not redis["password"] and redis["loopback"]:
        out.append(finding("network", "SM-NET-03", "low", where))
    elif not redis["password"]:
        out.append(finding("network", "SM-NET-01", "critical", where))
    if not redis["loopback"] and not redis["tls"]:
        out.append(finding("network", "SM-NET-02", "high", where))
    if _exposed(surface):
        wide = " (all interfaces)" if http["all_interfaces"] else ""
        severity = "high" if _auth_off(surface) else "medium"
        out.append(finding("network", "SM-NET-04", severity, f"host = {http['host']}{wide}"))
    elif http["host"] is None:
        out.append(finding("network", "SM-NET-00", "info", "no `host` setting"))
    if "*" in (http["cors_origins"] or []):
        out.append(finding("network", "SM-NET-05", "medium", "cors_origins contains *"))
    return out


def access_findings(surface: dict[str, Any]) -> list[dict[str, str]]:
    """Authentication, GraphiQL, introspection, debug mode."""
    out: list[dict[str, str]] = []
    http, auth = surface["http"], surface["auth"]
    exposed = _exposed(surface)
    if _auth_off(surface):
        evidence = "no `api_keys` setting" if auth["api_keys"] is None else "api_keys is empty"
        if exposed:
            evidence += "; the API listens beyond loopback"
        out.append(finding("access", "SM-ACC-01", "critical" if exposed else "high", evidence))
    elif auth["short_keys"]:
        evidence = f"{auth['short_keys']} of {auth['api_keys']} keys are shorter than {SHORT_KEY} characters"
        out.append(finding("access", "SM-ACC-02", "medium", evidence))
    ide_severity = "medium" if exposed else "low"
    if http["graphiql"] is not False:
        evidence = "graphiql = true" if http["graphiql"] else "no `graphiql` setting: GET /graphql serves GraphiQL"
        out.append(finding("access", "SM-ACC-03", ide_severity, evidence))
    if http["introspection"] is not False:
        evidence = "introspection = true" if http["introspection"] else "no `introspection` setting: it is on"
        out.append(finding("access", "SM-ACC-04", ide_severity, evidence))
    if http["debug"]:
        out.append(finding("access", "SM-ACC-05", "medium", "debug = true"))
    return out


def limit_findings(surface: dict[str, Any]) -> list[dict[str, str]]:
    """Retention, input and request sizes, query limits, concurrency, crash recovery, retry storms."""
    out: list[dict[str, str]] = []
    limits = surface["limits"]
    retention = limits.get("retention_seconds")
    if isinstance(retention, (int, float)) and retention > 30 * 86_400:
        days = retention / 86_400
        evidence = f"retention_seconds = {retention} ({days:.0f} days)"
        out.append(finding("limits", "SM-LIM-01", "medium" if days > 365 else "low", evidence))
    size = limits.get("max_inputs_bytes")
    if isinstance(size, (int, float)) and size > 256 * 1024:
        severity = "medium" if size > 1024 * 1024 else "low"
        out.append(finding("limits", "SM-LIM-02", severity, f"max_inputs_bytes = {size}"))
    concurrency = limits.get("worker_concurrency")
    if isinstance(concurrency, int) and concurrency > 1000:
        out.append(finding("limits", "SM-LIM-03", "low", f"worker_concurrency = {concurrency}"))
    lease = limits.get("lease_seconds")
    if isinstance(lease, (int, float)) and lease > 120:
        out.append(finding("limits", "SM-LIM-04", "low", f"lease_seconds = {lease:g}"))
    if limits.get("retry_backoff_seconds") == 0:
        out.append(finding("limits", "SM-LIM-05", "low", "retry_backoff_seconds = 0"))
    if limits.get("max_lease_losses") == 0:
        out.append(finding("limits", "SM-LIM-06", "low", "max_lease_losses = 0"))
    loose = [
        f"{name} = {limits.get(name)}"
        for name, ceiling in (("max_query_depth", 25), ("max_query_aliases", 100), ("max_query_tokens", 50_000))
        if isinstance(limits.get(name), int) and limits[name] > ceiling
    ]
    if loose:
        out.append(finding("limits", "SM-LIM-07", "low", ", ".join(loose)))
    body = limits.get("max_request_bytes")
    if isinstance(body, int) and body > 1024 * 1024:
        severity = "medium" if body > 16 * 1024 * 1024 else "low"
        out.append(finding("limits", "SM-LIM-08", severity, f"max_request_bytes = {body}"))
    subscriptions = limits.get("max_subscriptions_per_connection")
    if isinstance(subscriptions, int) and subscriptions > 100:
        out.append(finding("limits", "SM-LIM-09", "low", f"max_subscriptions_per_connection = {subscriptions}"))
    return out


def report_of(findings: list[dict[str, Any]]) -> dict[str, Any]:
    """Findings merged (each id once, worst first) into a 0..100 score, a grade and a summary."""
    unique: dict[str, dict[str, Any]] = {}
    for f in findings:
        unique.setdefault(str(f.get("id")), f)
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    ordered = sorted(unique.values(), key=lambda f: (rank.get(str(f.get("severity")), len(rank)), str(f.get("id"))))
    counts = {s: sum(1 for f in ordered if f.get("severity") == s) for s in SEVERITIES}
    score = max(0, 100 - sum(WEIGHT.get(str(f.get("severity")), 0) for f in ordered))
    grade = "A" if score >= 90 else "B" if score >= 75 else "C" if score >= 60 else "D" if score >= 40 else "F"
    urgent = [f for f in ordered if f.get("severity") in ("critical", "high")]
    if urgent:
        summary = f"{len(urgent)} critical/high findings: fix {', '.join(str(f['id']) for f in urgent)} first"
    elif ordered:
        summary = f"no critical or high findings; {len(ordered)} to review"
    else:
        summary = "no findings"
    return {
        "score": score,
        "grade": grade,
        "counts": counts,
        "summary": summary,
        "findings": ordered,
        "remediation": [f"{f['id']}: {f.get('remediation', '')}" for f in urgent],
    }


# --- agents ---------------------------------------------------------------------------------


def _surface(ctx: AgentContext) -> dict[str, Any]:
    for role in sorted(ctx.upstream):
        output = ctx.upstream[role]
        if isinstance(output, dict) and isinstance(output.get("surface"), dict):
            surface: dict[str, Any] = output["surface"]
            return surface
    return ctx.service


async def recon(ctx: AgentContext) -> dict[str, Any]:
    """Map the service's surface (Redis, HTTP, auth, limits) from its settings."""
    surface = ctx.service
    await ctx.pay(RECON_FEE, len(surface), "surface areas mapped")
    await ctx.progress(1.0, f"mapped {len(surface)} surface areas")
    return {"surface": surface}


async def _probe(ctx: AgentContext, name: str, checks: int, run: Probe) -> dict[str, Any]:
    surface = _surface(ctx)
    await ctx.pay(PROBE_FEE, checks, f"{name} checks")
    findings = run(surface)
    await ctx.progress(1.0, f"{len(findings)} {name} findings from {checks} checks")
    return {"probe": name, "checks": checks, "findings": findings}


async def probe_network(ctx: AgentContext) -> dict[str, Any]:
    """Redis without password or TLS, API bound beyond loopback, CORS wildcard."""
    return await _probe(ctx, "network", NETWORK_CHECKS, network_findings)


async def probe_access(ctx: AgentContext) -> dict[str, Any]:
    """Authentication off, short keys, GraphiQL, introspection, debug."""
    return await _probe(ctx, "access", ACCESS_CHECKS, access_findings)


async def probe_limits(ctx: AgentContext) -> dict[str, Any]:
    """Retention, inputs limit, concurrency, leases, retries."""
    return await _probe(ctx, "limits", LIMIT_CHECKS, limit_findings)


async def report(ctx: AgentContext) -> dict[str, Any]:
    """Merge every upstream probe's findings into a score, a grade and what to fix first."""
    findings: list[dict[str, Any]] = []
    for role in sorted(ctx.upstream):
        output = ctx.upstream[role]
        if isinstance(output, dict) and isinstance(output.get("findings"), list):
            findings.extend(f for f in output["findings"] if isinstance(f, dict))
    if not findings and not any(isinstance(o, dict) and "findings" in o for o in ctx.upstream.values()):
        # Run alone: probe the settings directly.
        surface = ctx.service
        findings = network_findings(surface) + access_findings(surface) + limit_findings(surface)
    await ctx.pay(REPORT_BASE + REPORT_FEE * len(findings), 1, "audit report")
    result = report_of(findings)
    await ctx.progress(1.0, f"score {result['score']} ({result['grade']}): {result['summary']}")
    return result
