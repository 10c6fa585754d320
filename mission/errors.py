"""The expected failures of the mission engine, each carrying the fields a caller needs."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


class MissionError(Exception):
    """Base of every expected failure; ``message`` is safe to show a user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _shown(value: str, limit: int = 100) -> str:
    """An id as a message may quote it: short, whatever the caller sent."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


class TemplateNotFound(MissionError):
    def __init__(self, template_id: str) -> None:
        super().__init__(f"no template with id {_shown(template_id)}")
        self.template_id = template_id


class MissionNotFound(MissionError):
    def __init__(self, mission_id: str) -> None:
        super().__init__(f"no mission with id {_shown(mission_id)}")
        self.mission_id = mission_id


@dataclass(frozen=True)
class Problem:
    """One bad field: where it is and what is wrong with it."""

    field: str
    message: str


class InvalidConfig(MissionError):
    """User overrides that break the template's rules; one problem per bad field."""

    def __init__(self, problems: list[Problem]) -> None:
        summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
        super().__init__(f"invalid mission config: {summary}")
        self.problems = problems


@dataclass(frozen=True)
class TemplateProblem:
    """One reason a templates file is refused."""

    template_id: str
    field: str
    reason: str

    def __str__(self) -> str:
        return f"template {self.template_id}: {self.field}: {self.reason}"


class TemplateFileError(MissionError):
    def __init__(self, path: str, problems: list[TemplateProblem]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"templates file {path} is invalid:\n{lines}")
        self.path = path
        self.problems = problems


class RateLimited(MissionError):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AgentNotFound(MissionError):
    def __init__(self, ref: str, reason: str) -> None:
        super().__init__(f"agent {ref!r} cannot be loaded: {reason}")
        self.ref = ref


class BudgetExceeded(MissionError):
    """Raised by ``AgentContext.spend`` when a charge would pass the agent's allocation."""

    def __init__(self, requested: Decimal, spent: Decimal, allocated: Decimal) -> None:
        super().__init__(f"spending {requested} would exceed the allocation of {allocated} ({spent} already spent)")
        self.requested = requested
        self.spent = spent
        self.allocated = allocated


class JobStopped(MissionError):
    """The job's attempt is no longer current: the mission ended or another attempt took over."""


class NotAwaitingApproval(MissionError):
    """The mission's approval gate is not waiting for a decision (none, not reached, or decided)."""

    def __init__(self, mission_id: str, state: str, status: str) -> None:
        gate = {
            "": "has no approval gate",
            "NOT_REACHED": "has not reached its approval gate yet",
            "WITHDRAWN": f"ended ({status}) before its approval decision",
        }.get(state, f"was already decided: {state}")
        super().__init__(f"mission {mission_id} is not awaiting approval: it {gate}")
        self.mission_id = mission_id
        self.state = state
        self.status = status


class ApprovalDenied(MissionError):
    """This caller may not decide: its role may not, or it deployed the mission (four-eyes)."""
