"""The GraphQL object types: templates, missions, jobs, graphs, events."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import strawberry
from strawberry.scalars import JSON

from mission import graph as graphs
from mission import models
from mission.money import CENT
from mission.plan import job_graph
from mission.records import ApprovalRecord, Budget, Event, JobRecord, MissionRecord
from mission.records import TokenUsage as TokenCounts

if TYPE_CHECKING:
    from resolvers.context import Context

MissionStatus = strawberry.enum(models.MissionStatus, description="Where a mission is in its life.")
ApprovalState = strawberry.enum(models.ApprovalState, description="Where a mission's approval gate is.")
JobStatus = strawberry.enum(models.JobStatus, description="Where one agent job is in its life.")


@strawberry.type(description="Risk posture the agents work under.")
class Risk:
    level: str
    max_drawdown: float | None


@strawberry.type(description="Money: allocated, spent and what is left (Decimal strings).")
class BudgetUsage:
    allocated: Decimal
    spent: Decimal
    remaining: Decimal

    @classmethod
    def of(cls, budget: Budget) -> BudgetUsage:
        return cls(allocated=budget.allocated, spent=budget.spent, remaining=budget.remaining)


@strawberry.type(description="Model calls and their tokens, as settled.")
class TokenUsage:
    prompt_tokens: int
    completion_tokens: int
    calls: int

    @classmethod
    def of(cls, usage: TokenCounts) -> TokenUsage:
        return cls(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, calls=usage.calls)


@strawberry.type(description="One member of a template's squad.")
class SquadMember:
    role: str
    department: str
    agent: str
    budget_share: float | None
    timeout: float | None = strawberry.field(description="Seconds one try may run (none: the mission's TTL).")
    max_tries: int


@strawberry.type
class TemplateDefaults:
    budget: Decimal
    ttl: int = strawberry.field(description="Seconds.")
    risk: Risk
    inputs: JSON


@strawberry.type
class MoneyRange:
    min: Decimal
    max: Decimal


@strawberry.type
class SecondsRange:
    min: int
    max: int


@strawberry.type(description="The bounds users may override the defaults within.")
class TemplateLimits:
    budget: MoneyRange
    ttl: SecondsRange


@strawberry.type(description="How job results make the mission's result.")
class Outcome:
    policy: str = strawberry.field(description="all, any or quorum.")
    count: int | None = strawberry.field(description="Jobs that must succeed, for a quorum.")


@strawberry.type(description="Conditions on the merged config; a mission is gated when any one is met.")
class ApprovalWhen:
    risk_levels: list[str] | None
    budget_above: Decimal | None


@strawberry.type(description="A human decision the agents of `before` wait for once their upstream succeeded.")
class ApprovalGate:
    before: list[str] = strawberry.field(description="Departments held at the gate.")
    when: ApprovalWhen | None = strawberry.field(description="Null: every mission is gated.")
    timeout: int = strawberry.field(description="Seconds from the moment the gate is reached.")
    on_timeout: str = strawberry.field(description="approve or reject: what the timeout decides.")

    @classmethod
    def of(cls, gate: models.Approval) -> ApprovalGate:
        when = None
        if gate.when is not None:
            levels = gate.when.risk_levels
            when = ApprovalWhen(
                risk_levels=None if levels is None else list(levels), budget_above=gate.when.budget_above
            )
        return cls(before=list(gate.before), when=when, timeout=gate.timeout, on_timeout=gate.on_timeout)


@strawberry.type(description="A mission's approval gate and its decision.")
class MissionApproval:
    state: ApprovalState  # type: ignore[valid-type]
    departments: list[str] = strawberry.field(description="Departments held at the gate.")
    timeout: int = strawberry.field(description="Seconds from the moment the gate is reached.")
    on_timeout: str = strawberry.field(description="approve or reject: what the timeout decides.")
    requested_at: datetime | None = strawberry.field(description="When the gate was reached.")
    deadline: datetime | None = strawberry.field(description="When the timeout decides, if no one has.")
    decided_at: datetime | None
    decided_by: str | None = strawberry.field(
        description="The deciding API key's id (never the key); null: the timeout."
    )
    comment: str | None = strawberry.field(description="The approval's comment or the rejection's reason.")
    approved: bool | None = strawberry.field(description="The decision, once taken.")

    @classmethod
    def of(cls, approval: ApprovalRecord) -> MissionApproval:
        return cls(
            state=approval.state,
            departments=list(approval.departments),
            timeout=approval.timeout,
            on_timeout=approval.on_timeout,
            requested_at=approval.requested_at,
            deadline=approval.deadline,
            decided_at=approval.decided_at,
            decided_by=approval.decided_by,
            comment=approval.comment,
            approved=approval.approved,
        )


@strawberry.type(description="A department and its roles; `status` is live on a mission's graph.")
class DepartmentNode:
    department: str
    roles: list[str]
    status: JobStatus | None  # type: ignore[valid-type]


@strawberry.type(description="Upstream department `from` must finish before `to` starts.")
class DepartmentEdge:
    from_: str = strawberry.field(name="from")
    to: str


@strawberry.type(description="Departments, their dependencies, and the stages they run in.")
class DepartmentGraph:
    nodes: list[DepartmentNode]
    edges: list[DepartmentEdge]
    stages: list[list[str]] = strawberry.field(description="Topological layers: each runs after the previous.")

    @classmethod
    def of(cls, graph: graphs.DepartmentGraph) -> DepartmentGraph:
        return cls(
            nodes=[DepartmentNode(department=n.department, roles=list(n.roles), status=n.status) for n in graph.nodes],
            edges=[DepartmentEdge(from_=e.upstream, to=e.downstream) for e in graph.edges],
            stages=[list(s) for s in graph.stages],
        )


def template_graph(template: models.Template) -> DepartmentGraph:
    """A template's departments, dependencies and stages (no status: nothing runs yet)."""
    members = [(a.department, a.role) for a in template.squad]
    return DepartmentGraph.of(graphs.build_graph(members, template.dependencies, job_graph(template).stages))


@strawberry.type(description="A mission definition from the template registry.")
class MissionTemplate:
    _template: strawberry.Private[models.Template]
    id: strawberry.ID
    name: str
    goal: str
    sector: str

    @classmethod
    def of(cls, template: models.Template) -> MissionTemplate:
        return cls(
            _template=template,
            id=strawberry.ID(template.id),
            name=template.name,
            goal=template.goal,
            sector=template.sector,
        )

    @strawberry.field(description="Departments in squad order.")
    def departments(self) -> list[str]:
        return self._template.departments

    @strawberry.field
    def squad(self) -> list[SquadMember]:
        return [
            SquadMember(
                role=a.role,
                department=a.department,
                agent=a.agent,
                budget_share=a.budget_share,
                timeout=a.timeout,
                max_tries=a.max_tries,
            )
            for a in self._template.squad
        ]

    @strawberry.field(description="sha256 of the canonical squad + dependencies + outcome.")
    def outcome_logic_hash(self) -> str:
        return self._template.outcome_logic_hash or ""

    @strawberry.field
    def outcome(self) -> Outcome:
        return Outcome(policy=self._template.outcome.policy, count=self._template.outcome.count)

    @strawberry.field
    def defaults(self) -> TemplateDefaults:
        d = self._template.defaults
        return TemplateDefaults(
            budget=d.budget.quantize(CENT),
            ttl=d.ttl,
            risk=Risk(level=d.risk.level, max_drawdown=d.risk.max_drawdown),
            inputs=JSON(d.inputs),
        )

    @strawberry.field
    def limits(self) -> TemplateLimits:
        limits = self._template.bounds
        return TemplateLimits(
            budget=MoneyRange(min=limits.budget.min.quantize(CENT), max=limits.budget.max.quantize(CENT)),
            ttl=SecondsRange(min=limits.ttl.min, max=limits.ttl.max),
        )

    @strawberry.field
    def dependency_graph(self) -> DepartmentGraph:
        return template_graph(self._template)

    @strawberry.field(description="The template's approval gate, if it has one.")
    def approval(self) -> ApprovalGate | None:
        gate = self._template.approval
        return None if gate is None else ApprovalGate.of(gate)


@strawberry.type(description="The config a mission runs with: template defaults merged with overrides.")
class MissionConfig:
    budget: Decimal
    ttl: int = strawberry.field(description="Seconds.")
    risk: Risk
    inputs: JSON


@strawberry.type(description="One agent of a mission; `id` is `<mission id>:<role>`, stable across tries.")
class AgentJob:
    _job: strawberry.Private[JobRecord]
    _outputs_loaded: strawberry.Private[bool]
    id: strawberry.ID
    department: str
    role: str
    agent: str
    status: JobStatus  # type: ignore[valid-type]
    attempts: int = strawberry.field(description="Tries started so far.")
    progress: float = strawberry.field(description="0..1, as the agent last reported.")
    message: str = strawberry.field(description="The agent's last progress message.")
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    # Computed only when asked for: a mission's jobs are many, and most views select a few fields.
    @strawberry.field(description="Job ids that must succeed first.")
    def depends_on(self) -> list[strawberry.ID]:
        return [strawberry.ID(f"{self._job.mission_id}:{r}") for r in self._job.depends_on]

    @strawberry.field
    def budget(self) -> BudgetUsage:
        return BudgetUsage.of(self._job.budget)

    @strawberry.field(description="The agent's model calls (`ctx.llm`), over all its tries.")
    def usage(self) -> TokenUsage:
        return TokenUsage.of(self._job.usage)

    @classmethod
    def of(cls, job: JobRecord, outputs_loaded: bool = False) -> AgentJob:
        return cls(
            _job=job,
            _outputs_loaded=outputs_loaded,
            id=strawberry.ID(job.id),
            department=job.department,
            role=job.role,
            agent=job.agent,
            status=job.status,
            attempts=job.attempts,
            progress=job.progress,
            message=job.message,
            started_at=job.started_at,
            finished_at=job.finished_at,
            error=job.error,
        )

    @strawberry.field(description="The agent's result, once it succeeded (kept for the retention period).")
    def output(self, info: strawberry.Info[Context, None]) -> JSON | None:
        if self._job.status is not models.JobStatus.SUCCEEDED:
            return None
        if self._outputs_loaded:  # read with the mission, in the same round trip
            return JSON(self._job.output)
        # not read with the mission: one batched read for all the jobs that ask (GraphQL awaits it)
        pending = info.context.loaders.outputs.load(self._job.mission_id)
        return _role_output(pending, self._job.role)  # type: ignore[return-value]


async def _role_output(outputs: Awaitable[dict[str, Any]], role: str) -> Any:
    return (await outputs).get(role)


@strawberry.type(description="A deployed mission and its squad.")
class Mission:
    _record: strawberry.Private[MissionRecord]
    id: strawberry.ID
    template_id: strawberry.ID
    status: MissionStatus  # type: ignore[valid-type]
    created_at: datetime
    started_at: datetime | None
    deadline: datetime
    finished_at: datetime | None
    failure_reason: str | None
    outcome_logic_hash: str = strawberry.field(description="The logic hash this mission ran with.")
    config: MissionConfig
    budget: BudgetUsage
    usage: TokenUsage = strawberry.field(description="The squad's model calls and their tokens.")
    event_count: int = strawberry.field(description="Events so far: the `seq` of the latest one.")

    @classmethod
    def of(cls, record: MissionRecord) -> Mission:
        c = record.config
        risk = c.get("risk") or {}
        return cls(
            _record=record,
            id=strawberry.ID(record.id),
            template_id=strawberry.ID(record.template_id),
            status=record.status,
            created_at=record.created_at,
            started_at=record.started_at,
            deadline=record.deadline,
            finished_at=record.finished_at,
            failure_reason=record.failure_reason,
            outcome_logic_hash=record.outcome_logic_hash,
            config=MissionConfig(
                budget=Decimal(c["budget"]),
                ttl=int(c["ttl"]),
                risk=Risk(level=risk.get("level", "medium"), max_drawdown=risk.get("max_drawdown")),
                inputs=JSON(c.get("inputs") or {}),
            ),
            budget=BudgetUsage.of(record.budget),
            usage=TokenUsage.of(record.usage),
            event_count=record.seq,
        )

    @strawberry.field(description="The template as it is in the registry now (null if since removed).")
    def template(self, info: strawberry.Info[Context, None]) -> MissionTemplate | None:
        template = info.context.service.registry.find(self._record.template_id)
        return None if template is None else MissionTemplate.of(template)

    @strawberry.field(description="The approval gate; null when the mission has none (or its `when` was not met).")
    def approval(self) -> MissionApproval | None:
        approval = self._record.approval
        return None if approval is None else MissionApproval.of(approval)

    @strawberry.field(
        description="Whether you may decide its approval now: it awaits one, your role may decide, and "
        "you did not deploy it (unless self-approval is allowed)."
    )
    def can_decide(self, info: strawberry.Info[Context, None]) -> bool:
        ctx, approval = info.context, self._record.approval
        if approval is None or approval.state is not models.ApprovalState.PENDING or ctx.principal is None:
            return False
        caller = ctx.principal
        own = caller.key_id == self._record.deployed_by and not (caller.open or ctx.settings.allow_self_approval)
        return caller.can_approve and not own

    @strawberry.field
    def jobs(self) -> list[AgentJob]:
        r = self._record
        return [AgentJob.of(job, r.outputs_loaded) for job in r.jobs]

    @strawberry.field(description="The department graph with each department's live status.")
    def graph(self) -> DepartmentGraph:
        r = self._record
        members = [(j.department, j.role) for j in r.jobs]
        statuses = {j.role: j.status for j in r.jobs}
        return DepartmentGraph.of(graphs.build_graph(members, r.dependencies, r.stages, statuses))


@strawberry.type(description="One step of a mission; `seq` counts from 1 per mission with no gaps.")
class MissionEvent:
    seq: int
    mission_id: strawberry.ID
    type: str = strawberry.field(description="mission.<verb>, job.<verb> or approval.<verb>.")
    status: str = strawberry.field(description="The mission's status (mission.*) or the job's (job.*) after it.")
    job_id: strawberry.ID | None
    at: datetime
    message: str
    data: JSON | None

    @classmethod
    def of(cls, event: Event) -> MissionEvent:
        return cls(
            seq=event.seq,
            mission_id=strawberry.ID(event.mission_id),
            type=event.type,
            status=event.status,
            job_id=None if event.job_id is None else strawberry.ID(event.job_id),
            at=event.at,
            message=event.message,
            data=event.data,
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class MissionEdge:
    cursor: str
    node: Mission


@strawberry.type(description="A page of missions, newest first.")
class MissionConnection:
    edges: list[MissionEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Missions matching the filter, on every page.")

    @strawberry.field
    def nodes(self) -> list[Mission]:
        return [edge.node for edge in self.edges]
