"""Domain models: templates as the registry file states them, mission config, status enums."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.settings import MODEL_PATTERN

# Names that end up inside Redis keys and job ids: keep them plain.
ROLE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
DEPARTMENT_PATTERN = r"^[A-Za-z][A-Za-z0-9 _&-]{0,63}$"
TEMPLATE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# A built-in agent name (`finance.liquidate`) or an import path (`package.module:function`).
AGENT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*)?$"


class MissionStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"  # its approval gate is reached and undecided
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_MISSION_STATUSES


class JobStatus(StrEnum):
    WAITING = "WAITING"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"  # upstream succeeded; held at the approval gate
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    SKIPPED = "SKIPPED"
    EXPIRED = "EXPIRED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_JOB_STATUSES


TERMINAL_MISSION_STATUSES = frozenset(
    {MissionStatus.SUCCEEDED, MissionStatus.FAILED, MissionStatus.CANCELLED, MissionStatus.EXPIRED}
)
TERMINAL_JOB_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.SKIPPED, JobStatus.EXPIRED}
)


class ApprovalState(StrEnum):
    """Where a mission's approval gate is: not reached yet, waiting for a decision, decided (by a
    person or by its timeout), or withdrawn because the mission ended before a decision."""

    NOT_REACHED = "NOT_REACHED"
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    WITHDRAWN = "WITHDRAWN"


class EventType(StrEnum):
    """Every type of event in a mission's log: ``mission.<verb>``, ``job.<verb>`` or
    ``approval.<verb>``. The Lua scripts write them; a test fails when a script writes one that is
    not listed here."""

    MISSION_DEPLOYED = "mission.deployed"
    MISSION_STARTED = "mission.started"
    MISSION_SUCCEEDED = "mission.succeeded"
    MISSION_FAILED = "mission.failed"
    MISSION_CANCELLED = "mission.cancelled"
    MISSION_EXPIRED = "mission.expired"
    JOB_AWAITING_APPROVAL = "job.awaiting_approval"
    JOB_QUEUED = "job.queued"
    JOB_STARTED = "job.started"
    JOB_SPENT = "job.spent"
    JOB_PROGRESS = "job.progress"
    JOB_LLM_CALL = "job.llm_call"
    JOB_SUCCEEDED = "job.succeeded"
    JOB_RETRYING = "job.retrying"
    JOB_REQUEUED = "job.requeued"
    JOB_FAILED = "job.failed"
    JOB_SKIPPED = "job.skipped"
    JOB_CANCELLED = "job.cancelled"
    JOB_EXPIRED = "job.expired"
    APPROVAL_REQUESTED = "approval.requested"
    APPROVAL_GRANTED = "approval.granted"
    APPROVAL_REJECTED = "approval.rejected"
    APPROVAL_TIMED_OUT = "approval.timed_out"


# Upper bounds (ms) of the job run-time histogram: the scripts count each attempt in one bucket
# (the `stats` hash, see mission/keys.py); /metrics makes them cumulative.
JOB_RUN_BUCKETS_MS = (10, 50, 100, 500, 1000, 5000, 10000, 30000, 60000, 300000)
# Upper bounds (ms) of the time-to-decision histogram of approval gates (requested to decided).
APPROVAL_WAIT_BUCKETS_MS = (1000, 10_000, 60_000, 300_000, 900_000, 3_600_000, 14_400_000, 86_400_000)
# Upper bounds (ms) of the model call latency histogram, counted the same way.
LLM_CALL_BUCKETS_MS = (100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# `{{ inputs.name }}`, `{{ upstream.role.field }}`: a path of keys (or list indexes), nothing else.
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
PLACEHOLDER_PATH = re.compile(r"^(inputs|upstream)(\.[A-Za-z0-9_-]+)*$")
LLM_AGENT = "llm"


class LLMSpec(_Strict):
    """What a model agent (`"agent": "llm"`) asks its model; part of the outcome-logic hash."""

    model: str | None = Field(None, pattern=MODEL_PATTERN, description="none: the service's default model")
    system: str = Field("", max_length=20_000)
    prompt: str = Field(min_length=1, max_length=50_000, description="with {{ inputs.x }} / {{ upstream.role.x }}")
    max_tokens: int = Field(256, ge=1, le=100_000)
    temperature: float | None = Field(None, ge=0, le=2)
    output: Literal["text", "json"] = "text"
    json_schema: dict[str, Any] | None = Field(None, description="the answer's JSON schema (output json)")

    @model_validator(mode="after")
    def _check(self) -> LLMSpec:
        for text in (self.system, self.prompt):
            for path in PLACEHOLDER.findall(text):
                if not PLACEHOLDER_PATH.match(path):
                    raise ValueError(
                        f"placeholder {{{{ {path} }}}}: only inputs.<key>… or upstream.<role>… paths are allowed"
                    )
        if self.json_schema is not None and self.output != "json":
            raise ValueError("json_schema only goes with output json")
        return self


class AgentSpec(_Strict):
    """One member of a squad."""

    role: str = Field(pattern=ROLE_PATTERN)
    department: str = Field(pattern=DEPARTMENT_PATTERN)
    agent: str = Field(pattern=AGENT_PATTERN)
    budget_share: float | None = Field(
        None, gt=0, le=1_000_000, description="a weight; none: an equal part of the rest"
    )
    timeout: float | None = Field(None, gt=0, le=86_400, description="seconds one try may run")
    max_tries: int = Field(1, ge=1, le=20)
    llm: LLMSpec | None = Field(None, description='what a model agent asks: only with "agent": "llm"')

    @model_validator(mode="after")
    def _llm_block(self) -> AgentSpec:
        if self.agent == LLM_AGENT and self.llm is None:
            raise ValueError('a model agent ("agent": "llm") needs an "llm" block')
        if self.agent != LLM_AGENT and self.llm is not None:
            raise ValueError('an "llm" block only goes with "agent": "llm"')
        return self


class Outcome(_Strict):
    """How the jobs' results make the mission's: every job, any job, or a quorum of them."""

    policy: Literal["all", "any", "quorum"] = "all"
    count: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _count_matches_policy(self) -> Outcome:
        if self.policy == "quorum" and self.count is None:
            raise ValueError("a quorum outcome needs a count")
        if self.policy != "quorum" and self.count is not None:
            raise ValueError("count only goes with the quorum policy")
        return self


MIN_BUDGET = Decimal("0.01")

RiskLevel = Literal["low", "medium", "high", "critical"]


class Risk(_Strict):
    level: RiskLevel = "medium"
    max_drawdown: float | None = Field(None, ge=0, le=1)


class Defaults(_Strict):
    budget: Decimal = Field(gt=0, decimal_places=2, max_digits=13)
    ttl: int = Field(gt=0, le=30 * 86_400, description="seconds")
    risk: Risk = Risk()
    inputs: dict[str, Any] = Field(default_factory=dict)


class MoneyRange(_Strict):
    min: Decimal = Field(gt=0, decimal_places=2, max_digits=13)
    max: Decimal = Field(gt=0, decimal_places=2, max_digits=13)


class SecondsRange(_Strict):
    min: int = Field(gt=0)
    max: int = Field(gt=0, le=30 * 86_400)


class Limits(_Strict):
    budget: MoneyRange
    ttl: SecondsRange

    @classmethod
    def up_to(cls, defaults: Defaults) -> Limits:
        """The limits of a template that states none: a deploy may lower its budget and time limit
        (down to a cent and a second), never raise them."""
        return cls.model_construct(
            budget=MoneyRange.model_construct(min=MIN_BUDGET, max=defaults.budget),
            ttl=SecondsRange.model_construct(min=1, max=defaults.ttl),
        )


class ApprovalWhen(_Strict):
    """Conditions on a mission's merged config; the gate applies when any one is met."""

    risk_levels: list[RiskLevel] | None = Field(None, min_length=1)
    budget_above: Decimal | None = Field(None, ge=0, decimal_places=2, max_digits=13)

    @model_validator(mode="after")
    def _some_condition(self) -> ApprovalWhen:
        if self.risk_levels is None and self.budget_above is None:
            raise ValueError("give risk_levels and/or budget_above (or leave `when` out: always gate)")
        return self

    def met_by(self, config: MissionConfig) -> bool:
        if self.risk_levels is not None and config.risk.level in self.risk_levels:
            return True
        return self.budget_above is not None and config.budget > self.budget_above


class Approval(_Strict):
    """A human decision the agents of ``before`` wait for once their upstream has succeeded."""

    before: list[str] = Field(min_length=1, max_length=100, description="departments held at the gate")
    when: ApprovalWhen | None = Field(None, description="none: every mission is gated")
    timeout: int = Field(gt=0, le=30 * 86_400, description="seconds from the moment the gate is reached")
    on_timeout: Literal["reject", "approve"] = "reject"

    def applies_to(self, config: MissionConfig) -> bool:
        return self.when is None or self.when.met_by(config)


class Template(_Strict):
    id: str = Field(pattern=TEMPLATE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    sector: str = Field(min_length=1, max_length=100)
    goal: str = Field(min_length=1, max_length=2000)
    squad: list[AgentSpec] = Field(min_length=1, max_length=500)
    dependencies: dict[str, list[str]] = Field(default_factory=dict)
    outcome: Outcome = Outcome()
    outcome_logic_hash: str | None = None
    defaults: Defaults
    limits: Limits | None = Field(None, description="bounds of overrides; none: `Limits.up_to` the defaults")
    approval: Approval | None = Field(None, description="a human decision some departments wait for")

    @property
    def bounds(self) -> Limits:
        """The bounds a deploy's overrides must stay in: the template's limits, or up to its defaults."""
        return self.limits if self.limits is not None else Limits.up_to(self.defaults)

    @property
    def departments(self) -> list[str]:
        """Departments in squad order, each once."""
        return list(dict.fromkeys(a.department for a in self.squad))


class MissionConfig(_Strict):
    """A template's defaults with the user's overrides applied and checked."""

    budget: Decimal
    ttl: int
    risk: Risk
    inputs: dict[str, Any]
