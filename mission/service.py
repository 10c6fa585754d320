"""`MissionService`: the one facade the API, the CLI and Python callers use."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from functools import cache
from typing import Any

from redis.asyncio import Redis

from config.settings import Settings
from mission.connections import redis_client
from mission.errors import (
    ApprovalDenied,
    InvalidConfig,
    MissionError,
    MissionNotFound,
    NotAwaitingApproval,
    Problem,
)
from mission.events import PubSubHub, mission_events
from mission.keys import Keys
from mission.models import MissionStatus, Template
from mission.plan import Plan, build_plan, merge_config
from mission.records import Event, MissionRecord
from mission.store import MAX_PAGE, InvalidCursor, MissionStore, Page, Stats
from mission.templates import TemplateRegistry

MISSION_ID = re.compile(r"^mssn_[0-9a-f]{32}$")
DEFAULT_TENANT = "default"
MAX_IDEMPOTENCY_KEY = 200
MAX_DECISION_NOTE = 2000  # characters of an approval's comment or a rejection's reason


def is_text(value: str) -> bool:
    """Encodable as UTF-8 (GraphQL strings may carry lone surrogates, which Redis keys cannot)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def new_mission_id() -> str:
    return "mssn_" + uuid.uuid4().hex


def is_mission_id(value: str) -> bool:
    return bool(MISSION_ID.match(value))


def template_summary(template: Template) -> dict[str, Any]:
    return {
        "id": template.id,
        "name": template.name,
        "goal": template.goal,
        "sector": template.sector,
        "departments": template.departments,
        "outcome_logic_hash": template.outcome_logic_hash,
        "defaults": template.defaults.model_dump(mode="json"),
        "limits": template.bounds.model_dump(mode="json"),
    }


def mission_summary(record: MissionRecord, *, created: bool = True) -> dict[str, Any]:
    """The dict `deploy_mission` returns: id, status, config and every planned job."""
    return {
        "mission_id": record.id,
        "template_id": record.template_id,
        "status": record.status.value,
        "created": created,
        "config": record.config,
        "deadline": record.deadline.isoformat(),
        "outcome_logic_hash": record.outcome_logic_hash,
        "jobs": [
            {
                "id": job.id,
                "department": job.department,
                "role": job.role,
                "agent": job.agent,
                "status": job.status.value,
                "depends_on": [f"{record.id}:{r}" for r in job.depends_on],
                "budget": str(job.budget.allocated),
            }
            for job in record.jobs
        ],
    }


class MissionService:
    """Templates, deployment, cancellation and reads of missions, over one Redis."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: TemplateRegistry | None = None,
        redis: Redis | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else TemplateRegistry.load(settings.templates_path)
        self.keys = Keys(settings.key_prefix, settings.queue)
        self._own_redis = redis is None
        self.redis = redis if redis is not None else redis_client(settings, "mission-service")
        self.store = MissionStore(self.redis, self.keys)
        self._default_plans: dict[str, Plan] = {}  # template id -> the plan of a deploy without overrides

    async def close(self) -> None:
        if self._own_redis:
            await self.redis.aclose(close_connection_pool=True)

    # --- templates ---

    def get_all_templates(self, sector: str | None = None) -> list[dict[str, Any]]:
        """Every template (or one sector's, case-insensitive) as plain dicts."""
        return [template_summary(t) for t in self.registry.all(sector)]

    def get_template(self, template_id: str) -> Template:
        return self.registry.get(template_id)

    # --- missions ---

    async def deploy_mission(
        self,
        template_id: str,
        config: Mapping[str, Any] | None = None,
        arq_pool: Redis | None = None,
        *,
        tenant: str = DEFAULT_TENANT,
        idempotency_key: str | None = None,
        deployed_by: str = "",
    ) -> dict[str, Any]:
        """Validate overrides, store the mission, queue its first jobs; returns `mission_summary`.

        ``arq_pool`` (an ARQ pool or any redis client on the same Redis) carries the writes when
        given. With an ``idempotency_key`` already used by this tenant, the existing mission comes
        back (``created`` is False) and nothing new is queued.
        """
        record, created = await self.deploy(
            template_id, config, arq_pool, tenant=tenant, idempotency_key=idempotency_key, deployed_by=deployed_by
        )
        return mission_summary(record, created=created)

    def plan(self, template_id: str, config: Mapping[str, Any] | None = None) -> Plan:
        """The plan a deploy with these overrides runs (a dry run: nothing is written).
        `TemplateNotFound` or `InvalidConfig` as the deploy would raise them."""
        template = self.registry.get(template_id)
        if not config:  # the template's defaults: the same (immutable) plan every time
            known = self._default_plans.get(template_id)
            if known is not None and known.template is template:
                return known
        merged = merge_config(template, config, max_inputs_bytes=self.settings.max_inputs_bytes)
        plan = build_plan(template, merged)
        if not config:
            self._default_plans[template_id] = plan
        return plan

    async def deploy(
        self,
        template_id: str,
        config: Mapping[str, Any] | None = None,
        arq_pool: Redis | None = None,
        *,
        tenant: str = DEFAULT_TENANT,
        idempotency_key: str | None = None,
        admit: Callable[[], Awaitable[None]] | None = None,
        deployed_by: str = "",
    ) -> tuple[MissionRecord, bool]:
        """`deploy_mission`, returning the stored mission and whether it was created now.

        ``admit`` runs once the deploy is known to be valid and new (not an idempotent replay),
        just before anything is written: a rate limit raises `RateLimited` there. ``deployed_by``
        (the deploying key's id) may not approve the mission unless self-approval is allowed.
        """
        self.registry.get(template_id)  # an unknown template is the first thing said
        if idempotency_key is not None and not (
            0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY and is_text(idempotency_key)
        ):
            raise InvalidConfig([Problem("idempotencyKey", f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters of text")])
        plan = self.plan(template_id, config)
        if idempotency_key is not None:
            known = await self.store.idempotent(tenant, idempotency_key)
            replay = await self.store.read_one(known) if known else None
            if replay is not None:
                return replay, False
        if admit is not None:
            await admit()
        created = await self.store.create(
            new_mission_id(),
            tenant,
            plan,
            idempotency_key=idempotency_key,
            retention_seconds=self.settings.retention_seconds,
            deployed_by=deployed_by,
            client=arq_pool,
        )
        if isinstance(created, MissionRecord):
            return created, True
        record = await self.store.read_one(created)  # the key was used meanwhile: that mission
        if record is None:
            raise MissionNotFound(created)
        return record, False

    async def get_mission(
        self, mission_id: str, *, tenant: str | None = None, outputs: bool = False
    ) -> MissionRecord | None:
        """The mission, or None when unknown or (with ``tenant``) another tenant's."""
        if not is_mission_id(mission_id):
            return None
        record = await self.store.read_one(mission_id, outputs=outputs)
        if record is None or (tenant is not None and record.tenant != tenant):
            return None
        return record

    async def read(self, mission_ids: Sequence[str], *, outputs: bool = False) -> list[MissionRecord | None]:
        """Whole missions with their jobs, in one round trip; None for unknown ids (no tenant check:
        callers check `MissionRecord.tenant`)."""
        return await self.store.read(mission_ids, outputs=outputs)

    async def outputs(self, mission_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Each mission's job outputs (role -> decoded JSON), in one round trip."""
        return await self.store.outputs(mission_ids)

    async def page(
        self,
        scope: str,
        *,
        status: MissionStatus | None = None,
        template_id: str | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Page:
        """Mission ids of a scope (a tenant, or ``*``), newest first; `MissionError` for a bad cursor."""
        try:
            return await self.store.page(scope, status=status, template_id=template_id, first=first, after=after)
        except InvalidCursor as exc:
            raise MissionError(f"after: {exc}") from None

    async def version(self, mission_id: str) -> tuple[int, int, bool] | None:
        """(seq of its last event, cents spent, outputs still kept): a read of the mission changes
        only with these."""
        return await self.store.version(mission_id) if is_mission_id(mission_id) else None

    async def tenant_of(self, mission_id: str) -> str | None:
        """The mission's tenant; None when there is no such mission."""
        return await self.store.tenant_of(mission_id) if is_mission_id(mission_id) else None

    def events(self, hub: PubSubHub, mission_id: str, after_seq: int = 0) -> AsyncIterator[Event]:
        """The mission's events after ``after_seq``, then live ones, each once; ends with the mission."""
        return mission_events(hub, self.store, mission_id, after_seq)

    async def last_change(self) -> int:
        """The newest change number (stamped as ``Event.change`` on the tracker's feed)."""
        return await self.store.last_change()

    async def changed_since(self, scope: str, after: int) -> AsyncIterator[tuple[MissionRecord | None, int]]:
        """Each mission of ``scope`` changed after change ``after``, a page at a time, with its latest
        change number (None for a mission gone meanwhile)."""
        if await self.store.last_change() < after:  # the counter started again (a Redis that lost its data)
            after = 0
        while True:
            page = await self.store.changed_since(scope, after, MAX_PAGE)
            if not page:
                return
            for record, (_, change) in zip(await self.store.read([m for m, _ in page]), page, strict=True):
                yield record, change
            after = page[-1][1]
            if len(page) < MAX_PAGE:
                return

    async def stats(self, now_ms: int) -> Stats:
        """Cluster-wide figures for /metrics."""
        return await self.store.stats(now_ms)

    async def cancel_mission(self, mission_id: str, *, tenant: str | None = None) -> MissionRecord:
        """Cancel the whole graph; running agents stop within a second. Idempotent: a mission
        that already ended is returned as it is."""
        if not is_mission_id(mission_id):
            raise MissionNotFound(mission_id[:100])
        owner = await self.store.tenant_of(mission_id)
        if owner is None or (tenant is not None and owner != tenant):
            raise MissionNotFound(mission_id)
        await self.store.stop(mission_id, MissionStatus.CANCELLED)
        record = await self.store.read_one(mission_id)
        if record is None:
            raise MissionNotFound(mission_id)
        return record

    # --- approval gates ---

    async def approve_mission(
        self,
        mission_id: str,
        *,
        by: str,
        comment: str | None = None,
        tenant: str | None = None,
        allow_self: bool = False,
    ) -> MissionRecord:
        """Approve the mission's pending gate: its gated jobs queue. ``by`` is the deciding key's id
        (the key that deployed the mission may not, unless ``allow_self`` or the setting
        ``allow_self_approval``).
        `MissionNotFound`, `NotAwaitingApproval` (none pending, or decided already: a decision is
        taken once), `ApprovalDenied`."""
        return await self._decide(mission_id, "approve", by, comment or "", tenant, allow_self)

    async def reject_mission(
        self, mission_id: str, reason: str, *, by: str, tenant: str | None = None, allow_self: bool = False
    ) -> MissionRecord:
        """Reject the mission's pending gate: its gated jobs and their dependents are skipped with
        ``reason``, and the outcome policy decides the end. Errors as for `approve_mission`."""
        if not reason.strip():
            raise MissionError("reason: say why the mission is rejected")
        return await self._decide(mission_id, "reject", by, reason.strip(), tenant, allow_self)

    async def _decide(
        self, mission_id: str, verb: str, by: str, note: str, tenant: str | None, allow_self: bool
    ) -> MissionRecord:
        if len(note) > MAX_DECISION_NOTE or not is_text(note):
            field = "reason" if verb == "reject" else "comment"
            raise MissionError(f"{field}: at most {MAX_DECISION_NOTE} characters of text")
        if not by:
            raise ApprovalDenied("a decision needs the id of who decides")
        if not is_mission_id(mission_id):
            raise MissionNotFound(mission_id[:100])
        owner = await self.store.tenant_of(mission_id)
        if owner is None or (tenant is not None and owner != tenant):
            raise MissionNotFound(mission_id)
        allow_self = allow_self or self.settings.allow_self_approval
        result, state, status = await self.store.decide(mission_id, verb, by, note, allow_self=allow_self)
        if result == "gone":
            raise MissionNotFound(mission_id)
        if result == "denied":
            raise ApprovalDenied(
                "four-eyes rule: the key that deployed this mission may not decide its approval "
                "(another approver must, or set MISSION_ALLOW_SELF_APPROVAL for a single-person setup)"
            )
        if result != "ok":
            raise NotAwaitingApproval(mission_id, state, status)
        record = await self.store.read_one(mission_id)
        if record is None:
            raise MissionNotFound(mission_id)
        return record


@cache
def get_mission_service() -> MissionService:
    """The process-wide service, configured from the environment (``MISSION_*``)."""
    return MissionService(Settings())
