"""Mutation resolvers: deploy and cancel. Expected failures come back as union members."""

from __future__ import annotations

import strawberry

from mission import errors
from resolvers.context import Context
from schema.errors import (
    CancelMissionResult,
    DeployMissionResult,
    FieldProblem,
    InvalidConfig,
    MissionCancelled,
    MissionDeployed,
    MissionNotFound,
    TemplateNotFound,
)
from schema.inputs import MissionConfigInput
from schema.types import Mission

Info = strawberry.Info[Context, None]


async def deploy_mission(
    info: Info,
    template_id: strawberry.ID,
    config: MissionConfigInput | None = None,
    idempotency_key: str | None = None,
) -> DeployMissionResult:
    ctx = info.context
    try:
        record, created = await ctx.service.deploy(
            template_id,
            config.overrides() if config is not None else None,
            tenant=ctx.principal.tenant,
            idempotency_key=idempotency_key,
        )
    except errors.TemplateNotFound as exc:
        return TemplateNotFound(message=exc.message, template_id=strawberry.ID(template_id[:200]))
    except errors.InvalidConfig as exc:
        return InvalidConfig(
            message=exc.message, problems=[FieldProblem(field=p.field, message=p.message) for p in exc.problems]
        )
    return MissionDeployed(mission=Mission.of(record), created=created)


async def cancel_mission(info: Info, id: strawberry.ID) -> CancelMissionResult:
    ctx = info.context
    tenant = None if ctx.principal.sees_all else ctx.principal.tenant
    try:
        record = await ctx.service.cancel_mission(id, tenant=tenant)
    except errors.MissionNotFound as exc:
        return MissionNotFound(message=exc.message, mission_id=strawberry.ID(id[:200]))
    return MissionCancelled(mission=Mission.of(record))
