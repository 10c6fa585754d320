"""Mutation resolvers: deploy, cancel, approve and reject. Expected failures come back as union members."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from strawberry.permission import BasePermission

from mission import errors
from mission.logs import bound
from resolvers.context import Context
from schema.errors import (
    ApproveMissionResult,
    CancelMissionResult,
    DeployMissionResult,
    MissionApproved,
    MissionCancelled,
    MissionDeployed,
    MissionRejected,
    RejectMissionResult,
    member_of,
)
from schema.inputs import MissionConfigInput
from schema.types import Mission

Info = strawberry.Info[Context, None]
log = logging.getLogger("mission.api")


class CanOperate(BasePermission):
    """Deploying and cancelling need an ``operator`` or ``admin`` key; ``viewer`` keys only read."""

    message = "forbidden: this API key may only read (deploy and cancel need an operator key)"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return info.context.caller.can_operate


async def deploy_mission(
    info: Info,
    template_id: strawberry.ID,
    config: MissionConfigInput | None = None,
    idempotency_key: str | None = None,
) -> DeployMissionResult:
    ctx = info.context
    limiter = ctx.deploy_limiter

    async def admit() -> None:  # counted only for valid, new deploys
        retry_after = await limiter.hit(ctx.caller.key_id)
        if retry_after is not None:
            raise errors.RateLimited(
                f"too many deploys: at most {limiter.limit} per {limiter.window_ms // 1000} s; "
                f"retry in {retry_after:.1f} s",
                retry_after,
            )

    try:
        record, created = await ctx.service.deploy(
            template_id,
            config.overrides() if config is not None else None,
            tenant=ctx.caller.tenant,
            idempotency_key=idempotency_key,
            admit=admit,
            deployed_by=ctx.caller.key_id,
        )
    except (errors.RateLimited, errors.TemplateNotFound, errors.InvalidConfig) as exc:
        return member_of(exc)
    if created:
        with bound(mission_id=record.id, template=record.template_id, tenant=record.tenant, key_id=ctx.caller.key_id):
            log.info("mission %s deployed from %s for tenant %s", record.id, record.template_id, record.tenant)
    return MissionDeployed(mission=Mission.of(record), created=created)


async def cancel_mission(info: Info, id: strawberry.ID) -> CancelMissionResult:
    ctx = info.context
    tenant = None if ctx.caller.sees_all else ctx.caller.tenant
    try:
        record = await ctx.service.cancel_mission(id, tenant=tenant)
    except errors.MissionNotFound as exc:
        return member_of(exc)
    return MissionCancelled(mission=Mission.of(record))


def _decider(info: Info, verb: str, mission_id: str) -> tuple[str | None, errors.ApprovalDenied | None]:
    """The tenant a decider's decision is limited to (None: any), or why it may not decide."""
    caller = info.context.caller
    if not caller.can_approve:
        return None, errors.ApprovalDenied(
            f"forbidden: this API key's role ({caller.role}) may not decide approvals (approver or admin may)"
        )
    if caller.open:
        log.warning("%s of mission %s in open mode (no API keys): no four-eyes check", verb, mission_id)
    return (None if caller.sees_all else caller.tenant), None


async def approve_mission(info: Info, id: strawberry.ID, comment: str | None = None) -> ApproveMissionResult:
    ctx = info.context
    tenant, denied = _decider(info, "approval", id)
    if denied is not None:
        return member_of(denied)
    try:
        record = await ctx.service.approve_mission(
            id, by=ctx.caller.key_id, comment=comment, tenant=tenant, allow_self=ctx.caller.open
        )
    except (errors.MissionNotFound, errors.NotAwaitingApproval, errors.ApprovalDenied) as exc:
        return member_of(exc)
    with bound(mission_id=record.id, tenant=record.tenant, key_id=ctx.caller.key_id):
        log.info("mission %s approved by key %s", record.id, ctx.caller.key_id)
    return MissionApproved(mission=Mission.of(record))


async def reject_mission(info: Info, id: strawberry.ID, reason: str) -> RejectMissionResult:
    ctx = info.context
    tenant, denied = _decider(info, "rejection", id)
    if denied is not None:
        return member_of(denied)
    try:
        record = await ctx.service.reject_mission(
            id, reason, by=ctx.caller.key_id, tenant=tenant, allow_self=ctx.caller.open
        )
    except (errors.MissionNotFound, errors.NotAwaitingApproval, errors.ApprovalDenied) as exc:
        return member_of(exc)
    with bound(mission_id=record.id, tenant=record.tenant, key_id=ctx.caller.key_id):
        log.info("mission %s rejected by key %s", record.id, ctx.caller.key_id)
    return MissionRejected(mission=Mission.of(record))
