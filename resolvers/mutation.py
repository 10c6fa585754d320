"""Mutation resolvers: deploy and cancel. Expected failures come back as union members."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from strawberry.permission import BasePermission

from mission import errors
from mission.logs import bound
from resolvers.context import Context
from schema.errors import CancelMissionResult, DeployMissionResult, MissionCancelled, MissionDeployed, member_of
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
