"""Types for the page's own needs: a dry-run plan (the squad a deploy would make) and the caller."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from mission.money import from_cents
from mission.plan import Plan
from schema.errors import InvalidConfig, TemplateNotFound
from schema.types import ApprovalGate, Risk


@strawberry.type(description="One agent as a deploy would plan it.")
class PlannedAgent:
    role: str
    department: str
    agent: str
    stage: int = strawberry.field(description="0 runs first; each stage waits for the previous ones it depends on.")
    allocated: Decimal = strawberry.field(description="This agent's share of the budget.")
    depends_on: list[str] = strawberry.field(description="Roles that must succeed first.")
    max_tries: int
    timeout: float | None


@strawberry.type(description="What a deploy with this config would run; nothing is stored.")
class MissionPlan:
    template_id: strawberry.ID
    budget: Decimal
    ttl: int = strawberry.field(description="Seconds.")
    risk: Risk
    inputs: JSON
    stages: list[list[str]] = strawberry.field(description="Departments per stage.")
    agents: list[PlannedAgent]
    approval: ApprovalGate | None = strawberry.field(
        description="The approval gate a deploy with this config would wait at; null: none (the template has "
        "none, or its `when` is not met)."
    )

    @classmethod
    def of(cls, plan: Plan) -> MissionPlan:
        config = plan.config
        return cls(
            template_id=strawberry.ID(plan.template.id),
            budget=config.budget,
            ttl=config.ttl,
            risk=Risk(level=config.risk.level, max_drawdown=config.risk.max_drawdown),
            inputs=JSON(config.inputs),
            stages=[list(s) for s in plan.stages],
            agents=[
                PlannedAgent(
                    role=job.role,
                    department=job.department,
                    agent=job.agent,
                    stage=job.stage,
                    allocated=from_cents(job.allocated_cents),
                    depends_on=list(job.depends_on),
                    max_tries=job.max_tries,
                    timeout=job.timeout,
                )
                for job in plan.jobs
            ],
            approval=ApprovalGate.of(plan.template.approval) if plan.gated and plan.template.approval else None,
        )


PlanMissionResult = Annotated[MissionPlan | TemplateNotFound | InvalidConfig, strawberry.union("PlanMissionResult")]


@strawberry.type(description="The caller: the tenant and role of the API key in use.")
class Viewer:
    tenant: str
    role: str = strawberry.field(description="viewer, operator, approver or admin.")
    can_operate: bool = strawberry.field(description="Whether this key may deploy and cancel.")
