"""Expected failures as union members (Strawberry's errors guide), and the mutation results.

`member_of` is the one place a domain error (`mission.errors`) becomes its union member.
"""

from __future__ import annotations

from typing import Annotated, overload

import strawberry

from mission import errors
from schema.types import Mission


@strawberry.type(description="One bad field of a config, and what is wrong with it.")
class FieldProblem:
    field: str
    message: str


@strawberry.type(description="No template has this id.")
class TemplateNotFound:
    message: str
    template_id: strawberry.ID


@strawberry.type(description="The overrides break the template's rules: one problem per bad field.")
class InvalidConfig:
    message: str
    problems: list[FieldProblem]


@strawberry.type(description="No mission has this id (or it is not yours).")
class MissionNotFound:
    message: str
    mission_id: strawberry.ID


@strawberry.type(description="Too many deploys with this key in the current window.")
class RateLimited:
    message: str
    retry_after: float = strawberry.field(description="Seconds until deploys are accepted again.")


@strawberry.type(description="The mission's approval gate is not waiting for a decision (none, not reached, decided).")
class NotAwaitingApproval:
    message: str
    mission_id: strawberry.ID
    state: str = strawberry.field(description="The gate's state (empty: the mission has no gate).")


@strawberry.type(description="You may not decide this approval: your role may not, or you deployed the mission.")
class ApprovalDenied:
    message: str


@strawberry.type(description="The mission is approved: its gated jobs are queued.")
class MissionApproved:
    mission: Mission


@strawberry.type(description="The mission is rejected: its gated jobs and their dependents are skipped.")
class MissionRejected:
    mission: Mission


@strawberry.type(description="The mission is stored and its first jobs are queued.")
class MissionDeployed:
    mission: Mission
    created: bool = strawberry.field(description="False when an idempotency key returned an existing mission.")


@strawberry.type(description="The mission is cancelled (or had already ended: it is returned as it is).")
class MissionCancelled:
    mission: Mission


DeployMissionResult = Annotated[
    MissionDeployed | TemplateNotFound | InvalidConfig | RateLimited, strawberry.union("DeployMissionResult")
]
CancelMissionResult = Annotated[MissionCancelled | MissionNotFound, strawberry.union("CancelMissionResult")]
ApproveMissionResult = Annotated[
    MissionApproved | MissionNotFound | NotAwaitingApproval | ApprovalDenied, strawberry.union("ApproveMissionResult")
]
RejectMissionResult = Annotated[
    MissionRejected | MissionNotFound | NotAwaitingApproval | ApprovalDenied, strawberry.union("RejectMissionResult")
]


@overload
def member_of(exc: errors.TemplateNotFound) -> TemplateNotFound: ...
@overload
def member_of(exc: errors.InvalidConfig) -> InvalidConfig: ...
@overload
def member_of(exc: errors.MissionNotFound) -> MissionNotFound: ...
@overload
def member_of(exc: errors.RateLimited) -> RateLimited: ...
@overload
def member_of(exc: errors.NotAwaitingApproval) -> NotAwaitingApproval: ...
@overload
def member_of(exc: errors.ApprovalDenied) -> ApprovalDenied: ...


def member_of(
    exc: errors.TemplateNotFound
    | errors.InvalidConfig
    | errors.MissionNotFound
    | errors.RateLimited
    | errors.NotAwaitingApproval
    | errors.ApprovalDenied,
) -> TemplateNotFound | InvalidConfig | MissionNotFound | RateLimited | NotAwaitingApproval | ApprovalDenied:
    """The union member that tells the caller of an expected failure."""
    match exc:
        case errors.TemplateNotFound():
            return TemplateNotFound(message=exc.message, template_id=strawberry.ID(exc.template_id[:200]))
        case errors.InvalidConfig():
            problems = [FieldProblem(field=p.field, message=p.message) for p in exc.problems]
            return InvalidConfig(message=exc.message, problems=problems)
        case errors.MissionNotFound():
            return MissionNotFound(message=exc.message, mission_id=strawberry.ID(exc.mission_id[:200]))
        case errors.RateLimited():
            return RateLimited(message=exc.message, retry_after=exc.retry_after)
        case errors.NotAwaitingApproval():
            return NotAwaitingApproval(message=exc.message, mission_id=strawberry.ID(exc.mission_id), state=exc.state)
        case errors.ApprovalDenied():
            return ApprovalDenied(message=exc.message)
