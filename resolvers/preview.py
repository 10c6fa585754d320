"""Resolvers for the page's own needs: a dry-run plan and who the caller is."""

from __future__ import annotations

import strawberry

from mission import errors
from resolvers.context import Context
from schema.errors import FieldProblem, InvalidConfig, TemplateNotFound
from schema.inputs import MissionConfigInput
from schema.preview import MissionPlan, PlanMissionResult, Viewer

Info = strawberry.Info[Context, None]


def plan_mission(info: Info, template_id: strawberry.ID, config: MissionConfigInput | None = None) -> PlanMissionResult:
    """The squad a deploy would make, from the same code the deploy runs; nothing is written."""
    info.context.caller  # noqa: B018 — authenticated callers only, like every other field
    try:
        plan = info.context.service.plan(template_id, config.overrides() if config is not None else None)
    except errors.TemplateNotFound as exc:
        return TemplateNotFound(message=exc.message, template_id=strawberry.ID(template_id[:200]))
    except errors.InvalidConfig as exc:
        return InvalidConfig(
            message=exc.message, problems=[FieldProblem(field=p.field, message=p.message) for p in exc.problems]
        )
    return MissionPlan.of(plan)


def viewer(info: Info) -> Viewer:
    caller = info.context.caller
    return Viewer(tenant=caller.tenant, role=caller.role, can_operate=caller.can_operate)
