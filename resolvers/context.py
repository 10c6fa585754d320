"""The typed context every resolver receives (`info.context`), and the per-request loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from config.settings import Settings
from mission.errors import MissionError
from mission.events import PubSubHub
from mission.ratelimit import RateLimiter
from mission.records import MissionRecord
from mission.service import MissionService


@dataclass(frozen=True)
class Principal:
    """Who is calling: a tenant and a role (``viewer`` reads, ``operator`` also deploys and
    cancels, ``approver`` reads and decides approval gates, ``admin`` does all of it for every
    tenant). ``open``: no API keys are configured (loopback only)."""

    tenant: str
    role: str
    key_id: str = ""  # a short hash of the API key: for logs, rate limits and `decidedBy`, never the key
    open: bool = False

    @property
    def scope(self) -> str:
        """The index scope this caller reads: its tenant, or ``*`` (all) for an admin."""
        return "*" if self.role == "admin" else self.tenant

    @property
    def sees_all(self) -> bool:
        return self.role == "admin"

    def can_see(self, tenant: str) -> bool:
        return self.sees_all or tenant == self.tenant

    @property
    def can_operate(self) -> bool:
        return self.role in ("operator", "admin")

    @property
    def can_approve(self) -> bool:
        return self.role in ("approver", "admin")


class Loaders:
    """Batch reads of one tick into one Redis round trip. No caching: a subscription's context
    lives as long as its connection, and must never serve an old state."""

    def __init__(self, service: MissionService) -> None:
        self._service = service
        # keyed by (mission id, with its jobs' outputs)
        self.missions: DataLoader[tuple[str, bool], MissionRecord | None] = DataLoader(self._missions, cache=False)
        self.outputs: DataLoader[str, dict[str, Any]] = DataLoader(self._outputs, cache=False)

    async def _missions(self, keys: list[tuple[str, bool]]) -> list[MissionRecord | None]:
        found: dict[tuple[str, bool], MissionRecord | None] = {}
        for outputs in (False, True):
            unique = list(dict.fromkeys(i for i, o in keys if o is outputs))
            if unique:
                records = await self._service.read(unique, outputs=outputs)
                found.update(zip(((i, outputs) for i in unique), records, strict=True))
        return [found[key] for key in keys]

    async def _outputs(self, mission_ids: list[str]) -> list[dict[str, Any]]:
        unique = list(dict.fromkeys(mission_ids))
        found = dict(zip(unique, await self._service.outputs(unique), strict=True))
        return [found[mission_id] for mission_id in mission_ids]


class NotAuthenticated(MissionError):
    def __init__(self) -> None:
        super().__init__("not authenticated: send an API key (Authorization: Bearer <key>)")


@dataclass
class Context:
    service: MissionService
    hub: PubSubHub
    settings: Settings
    principal: Principal | None  # None on a websocket until its connection_init is accepted
    loaders: Loaders
    deploy_limiter: RateLimiter
    request: Request | WebSocket | None = None
    connection_params: dict[str, Any] | None = field(default=None)

    @property
    def caller(self) -> Principal:
        """The authenticated caller; `NotAuthenticated` if there is none."""
        if self.principal is None:
            raise NotAuthenticated()
        return self.principal
