"""What the service shows its agents of itself: addresses, switches and limits mapped from its
settings, never a secret (the Redis URL's password and secret-looking query values are masked, and
every secret value the settings hold is scrubbed from the result once more)."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "***"
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


def public_surface(settings: object) -> dict[str, Any]:
    """`surface_of` with every secret the settings hold scrubbed out: what agents are given."""
    surface: dict[str, Any] = scrub(surface_of(settings), secrets_of(settings))
    return surface
