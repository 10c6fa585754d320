"""Red-team agents (Shadow Mirror): audit this service's own settings, Recon → Probe → Report.

No inputs. ``recon`` maps the attack surface from ``ctx.settings`` (a ``config.settings.Settings``;
optional fields such as ``host``, ``port``, ``api_keys``, ``graphiql``, ``introspection``,
``debug`` and ``cors_origins`` are read with ``getattr`` so they are audited once they exist).
Each probe turns the surface (from upstream, or from the settings when run alone) into findings
``{id, severity, title, evidence, remediation, probe}``; ``report`` merges them into a score.

Secrets never leave: the surface holds booleans and counts, the Redis URL is shown with its
password masked, and every output is scrubbed of the secret values the settings hold.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from workers.agents.billing import charge
from workers.agents.sdk import AgentContext

RECON_FEE = Decimal("1.00")  # per surface area mapped
PROBE_FEE = Decimal("1.00")  # per check run
REPORT_FEE = Decimal("0.50")  # per finding aggregated, on top of REPORT_BASE
REPORT_BASE = Decimal("2.00")

MASK = "***"
SEVERITIES = ("critical", "high", "medium", "low", "info")
WEIGHT = {"critical": 40, "high": 20, "medium": 8, "low": 3, "info": 0}
SECRET_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey", "credential")
SECRET_QUERY = ("password", "pass", "secret", "token", "key")
SHORT_KEY = 32
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
LIMIT_FIELDS = (
    "max_inputs_bytes", "retention_seconds", "worker_concurrency", "lease_seconds", "max_lease_losses",
    "retry_backoff_seconds", "max_query_depth", "max_query_aliases", "max_query_tokens", "max_request_bytes",
    "max_subscriptions_per_connection",
)  # fmt: skip


# --- secrets --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A pydantic ``SecretStr``/``SecretBytes`` unwrapped; anything else unchanged."""
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if callable(reveal) else value


def api_keys(settings: object) -> list[str] | None:
    """The configured API keys (None when the settings have no such field)."""
    if not hasattr(settings, "api_keys"):
        return None
    raw = _plain(getattr(settings, "api_keys", None))
    if raw is None:
        return []
    if isinstance(raw, bytes):
        raw = raw.decode(errors="replace")
    if isinstance(raw, str):
        items: list[Any] = raw.split(",")
    elif isinstance(raw, dict):
        items = list(raw.values())
    elif isinstance(raw, (list, tuple, set, frozenset)):
        items = sorted(raw, key=str)
    else:
        items = [raw]
    return [str(_plain(k)).strip() for k in items if str(_plain(k)).strip()]


def secrets_of(settings: object) -> list[str]:
    """Every secret value the settings hold: the Redis password, API keys, secret-named fields."""
    found: list[str] = []
    url = urlsplit(str(getattr(settings, "redis_url", "") or ""))
    if url.password:
        found += [url.password, unquote(url.password)]
    found += [v for k, v in parse_qsl(url.query) if any(w in k.lower() for w in SECRET_QUERY)]
    found.extend(api_keys(settings) or [])
    names = list(getattr(type(settings), "model_fields", None) or getattr(settings, "__dict__", {}))
    for name in names:
        if any(word in name.lower() for word in SECRET_WORDS) and name != "api_keys":
            value = _plain(getattr(settings, name, None))
            if isinstance(value, str) and value:
                found.append(value)
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` with every occurrence of a secret replaced by the mask, at any depth."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    return value


def scrubbed(output: dict[str, Any], settings: object) -> dict[str, Any]:
    """An agent's output with the settings' secrets masked."""
    secrets = secrets_of(settings)
    return {scrub(k, secrets): scrub(v, secrets) for k, v in output.items()}


def redact_url(url: str) -> str:
    """The URL with its password (and secret-looking query values) masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None or parts.username is not None:
        creds, _, hostport = netloc.rpartition("@")
        user = creds.partition(":")[0]
        netloc = f"{user}:{MASK}@{hostport}" if parts.password is not None else f"{user}@{hostport}"
    query = "&".join(
        f"{k}={MASK if any(w in k.lower() for w in SECRET_QUERY) else v}" for k, v in parse_qsl(parts.query)
    )
    return parts._replace(netloc=netloc, query=query).geturl()


# --- recon ----------------------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def redis_surface(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    unix = scheme == "unix"
    query = {k.lower(): v.lower() for k, v in parse_qsl(parts.query)}
    host = parts.hostname
    try:
        port = parts.port
    except ValueError:
        port = None
    return {
        "url": redact_url(url),
        "scheme": scheme,
        "host": host,
        "port": port,
        "unix_socket": unix,
        "loopback": unix or is_loopback(host),
        "password": bool(parts.password) or bool(query.get("password")),
        "tls": scheme == "rediss" or query.get("ssl") in ("true", "1") or query.get("tls") in ("true", "1"),
    }


def _optional_bool(settings: object, name: str) -> bool | None:
    value = getattr(settings, name, None)
    return None if value is None else bool(value)


def surface_of(settings: object) -> dict[str, Any]:
    """What an attacker would map first, from the settings alone; holds no secret."""
    host = getattr(settings, "host", None)
    keys = api_keys(settings)
    origins = getattr(settings, "cors_origins", None) or getattr(settings, "allowed_origins", None)
    if isinstance(origins, str):
        origins = origins.split(",")
    return {
        "redis": redis_surface(str(getattr(settings, "redis_url", "") or "")),
        "http": {
            "host": None if host is None else str(host),
            "port": getattr(settings, "port", None),
            "loopback": None if host is None else is_loopback(str(host)),
            "all_interfaces": host is not None and str(host).strip("[]") in WILDCARD_HOSTS,
            "graphiql": _optional_bool(settings, "graphiql"),
            "introspection": _optional_bool(settings, "introspection"),
            "debug": _optional_bool(settings, "debug"),
            "cors_origins": None if origins is None else [str(o) for o in origins],
        },
        "auth": {
            "api_keys": None if keys is None else len(keys),
            "short_keys": 0 if keys is None else sum(1 for k in keys if len(k) < SHORT_KEY),
        },
        "limits": {name: getattr(settings, name, None) for name in LIMIT_FIELDS},
    }


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
    return surface_of(ctx.settings)


async def recon(ctx: AgentContext) -> dict[str, Any]:
    """Map the service's surface (Redis, HTTP, auth, limits) from its settings."""
    surface = surface_of(ctx.settings)
    await charge(ctx, RECON_FEE, len(surface), "surface areas mapped")
    await ctx.progress(1.0, f"mapped {len(surface)} surface areas")
    return scrubbed({"surface": surface}, ctx.settings)


async def _probe(ctx: AgentContext, name: str, checks: int, run: Probe) -> dict[str, Any]:
    surface = _surface(ctx)
    await charge(ctx, PROBE_FEE, checks, f"{name} checks")
    findings = run(surface)
    await ctx.progress(1.0, f"{len(findings)} {name} findings from {checks} checks")
    return scrubbed({"probe": name, "checks": checks, "findings": findings}, ctx.settings)


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
        surface = surface_of(ctx.settings)
        findings = network_findings(surface) + access_findings(surface) + limit_findings(surface)
    await charge(ctx, REPORT_BASE + REPORT_FEE * len(findings), 1, "audit report")
    result = report_of(findings)
    await ctx.progress(1.0, f"score {result['score']} ({result['grade']}): {result['summary']}")
    return scrubbed(result, ctx.settings)
