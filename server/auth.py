"""API keys: who is calling. Keys live only in settings and are never logged (a key's id in logs is
a short prefix of its sha256). A presented key's hash is compared with every configured key's hash
in constant time, with no early exit, so timing says nothing about any key."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Mapping
from typing import Any

from config.settings import Settings
from resolvers.context import Principal

log = logging.getLogger("mission.api")

OPEN_PRINCIPAL = Principal(tenant="default", role="admin", key_id="open", open=True)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ExposedWithoutKeys(RuntimeError):
    """Serving beyond this machine with no API keys would let anyone deploy and cancel."""


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self._grants = {
            _digest(key): Principal(tenant=grant.tenant, role=grant.role, key_id=_digest(key).hex()[:12])
            for key, grant in settings.api_keys.items()
        }

    @property
    def open(self) -> bool:
        """No keys configured: every caller is the admin of the ``default`` tenant."""
        return not self._grants

    def check_exposure(self, host: str, *, warn: bool = True) -> None:
        """Refuse to serve a non-loopback host without keys; say loudly that a loopback one is open."""
        if not self.open:
            return
        if not is_loopback(host):
            raise ExposedWithoutKeys(
                f"refusing to serve {host} with no API keys: set MISSION_API_KEYS, or serve on 127.0.0.1"
            )
        if warn:
            log.warning("NO API KEYS CONFIGURED: the API is open to anyone on this machine (loopback only)")

    def principal(self, key: str | None) -> Principal | None:
        """The caller a key belongs to; None for a missing or unknown key."""
        if self.open:
            return OPEN_PRINCIPAL
        if not key:
            return None
        presented = _digest(key)
        found = None
        for digest, principal in self._grants.items():
            if hmac.compare_digest(digest, presented):
                found = principal
        return found

    def from_header(self, value: str | None) -> Principal | None:
        """``Authorization: Bearer <key>``."""
        if self.open:
            return OPEN_PRINCIPAL
        scheme, _, key = (value or "").partition(" ")
        return self.principal(key.strip()) if scheme.lower() == "bearer" else None

    def from_connection_params(self, params: Mapping[str, Any] | None) -> Principal | None:
        """A websocket's ``connection_init`` payload: ``{"Authorization": "Bearer <key>"}``
        (any case), or ``{"apiKey": "<key>"}``."""
        if self.open:
            return OPEN_PRINCIPAL
        if not isinstance(params, Mapping):
            return None
        for name, value in params.items():
            if isinstance(name, str) and name.lower() == "authorization" and isinstance(value, str):
                return self.from_header(value)
        key = params.get("apiKey")
        return self.principal(key) if isinstance(key, str) else None
