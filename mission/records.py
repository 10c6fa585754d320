"""Read models: missions, jobs and events as stored in Redis, parsed into typed records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from mission import codec
from mission.models import ApprovalState, JobStatus, MissionStatus
from mission.money import from_cents


def ms_to_datetime(value: Any) -> datetime | None:
    if value in (None, "", b""):
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


@dataclass(frozen=True)
class Budget:
    allocated_cents: int
    spent_cents: int

    @property
    def allocated(self) -> Decimal:
        return from_cents(self.allocated_cents)

    @property
    def spent(self) -> Decimal:
        return from_cents(self.spent_cents)

    @property
    def remaining(self) -> Decimal:
        return from_cents(self.allocated_cents - self.spent_cents)


@dataclass(frozen=True)
class ApprovalRecord:
    """A mission's approval gate: which departments it holds, and where its decision is."""

    state: ApprovalState
    departments: tuple[str, ...]
    roles: tuple[str, ...]
    timeout: int  # seconds from the moment the gate is reached
    on_timeout: str  # approve | reject
    requested_at: datetime | None
    deadline: datetime | None
    decided_at: datetime | None
    decided_by: str | None  # the deciding key's id; none for the timeout
    comment: str | None  # the approval's comment, the rejection's reason, or what the timeout did
    approved: bool | None  # the decision, once taken

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> ApprovalRecord | None:
        if not raw.get("approval_state"):
            return None
        approved = raw.get("approval_approved")
        return cls(
            state=ApprovalState(raw["approval_state"]),
            departments=tuple(codec.loads(raw["gate_departments"])),
            roles=tuple(codec.loads(raw["gate_roles"])),
            timeout=int(raw["gate_timeout"]),
            on_timeout=raw["gate_on_timeout"],
            requested_at=ms_to_datetime(raw.get("approval_requested_at")),
            deadline=ms_to_datetime(raw.get("approval_deadline")),
            decided_at=ms_to_datetime(raw.get("approval_decided_at")),
            decided_by=raw.get("approval_decided_by") or None,
            comment=raw.get("approval_comment") or None,
            approved=None if approved is None else approved == "1",
        )


@dataclass(frozen=True)
class TokenUsage:
    """Model calls and their tokens, as settled (mission/lua/llm_settle.lua)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> TokenUsage:
        return cls(int(raw.get("prompt_tokens", 0)), int(raw.get("completion_tokens", 0)), int(raw.get("llm_calls", 0)))


@dataclass(frozen=True)
class JobRecord:
    mission_id: str
    role: str
    department: str
    agent: str
    status: JobStatus
    attempt: int  # the current attempt number (ARQ job ids end with it)
    attempts: int  # tries started so far
    failures: int
    depends_on: tuple[str, ...]
    dependents: tuple[str, ...]
    budget: Budget
    progress: float
    message: str
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    timeout: float | None
    max_tries: int
    stage: int
    output: Any = None
    usage: TokenUsage = TokenUsage()

    @property
    def id(self) -> str:
        return f"{self.mission_id}:{self.role}"

    @classmethod
    def parse(cls, mission_id: str, raw: dict[str, str], output: Any = None) -> JobRecord:
        return cls(
            mission_id=mission_id,
            role=raw["role"],
            department=raw["department"],
            agent=raw["agent"],
            status=JobStatus(raw["status"]),
            attempt=int(raw.get("attempt", 0)),
            attempts=int(raw.get("tries", 0)),
            failures=int(raw.get("failures", 0)),
            depends_on=tuple(codec.loads(raw["depends_on"])),
            dependents=tuple(codec.loads(raw["dependents"])),
            budget=Budget(int(raw["allocated"]), int(raw.get("spent", 0))),
            progress=float(raw.get("progress") or 0),
            message=raw.get("message", ""),
            started_at=ms_to_datetime(raw.get("started_at")),
            finished_at=ms_to_datetime(raw.get("finished_at")),
            error=raw.get("error") or None,
            timeout=float(raw["timeout"]) if raw.get("timeout") else None,
            max_tries=int(raw.get("max_tries", 1)),
            stage=int(raw.get("stage", 0)),
            output=output,
            usage=TokenUsage.parse(raw),
        )


@dataclass(frozen=True)
class MissionRecord:
    id: str
    tenant: str
    template_id: str
    status: MissionStatus
    created_at: datetime
    started_at: datetime | None
    deadline: datetime
    finished_at: datetime | None
    failure_reason: str | None
    outcome_logic_hash: str
    config: dict[str, Any]  # budget (string), ttl, risk, inputs
    budget: Budget
    policy: str
    seq: int
    stages: tuple[tuple[str, ...], ...]
    dependencies: dict[str, list[str]]
    jobs: tuple[JobRecord, ...]
    idempotency_key: str | None
    approval: ApprovalRecord | None = None  # none: no gate (the template has none, or its `when` was not met)
    deployed_by: str | None = None  # the deploying key's id
    outputs_loaded: bool = False  # whether the jobs' `output` were read (else they are None)
    usage: TokenUsage = TokenUsage()

    @property
    def job_ids(self) -> list[str]:
        return [job.id for job in self.jobs]

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> MissionRecord:
        outputs = raw.get("outputs") or {}
        mission_id = raw["id"]
        graph = codec.loads(raw["graph"])
        return cls(
            id=mission_id,
            tenant=raw["tenant"],
            template_id=raw["template_id"],
            status=MissionStatus(raw["status"]),
            created_at=ms_to_datetime(raw["created_at"]) or datetime.now(UTC),
            started_at=ms_to_datetime(raw.get("started_at")),
            deadline=ms_to_datetime(raw["deadline"]) or datetime.now(UTC),
            finished_at=ms_to_datetime(raw.get("finished_at")),
            failure_reason=raw.get("failure_reason") or None,
            outcome_logic_hash=raw["outcome_logic_hash"],
            config=codec.loads(raw["config"]),
            budget=Budget(int(raw["budget"]), int(raw.get("spent", 0))),
            policy=raw.get("policy", "all"),
            seq=int(raw.get("seq", 0)),
            stages=tuple(tuple(s) for s in graph["stages"]),
            dependencies=graph["dependencies"],
            jobs=tuple(JobRecord.parse(mission_id, job, _output(outputs.get(job["role"]))) for job in raw["jobs"]),
            idempotency_key=raw.get("idempotency_key") or None,
            approval=ApprovalRecord.parse(raw),
            deployed_by=raw.get("deployed_by") or None,
            outputs_loaded="outputs" in raw,
            usage=TokenUsage.parse(raw),
        )


def _output(raw: str | None) -> Any:
    return None if raw is None else codec.loads(raw)


@dataclass(frozen=True)
class Event:
    """One entry of a mission's event log (``seq`` from 1, no gaps)."""

    seq: int
    mission_id: str
    tenant: str
    type: str
    status: str
    job_id: str | None
    at: datetime
    message: str
    data: Any
    change: int = 0  # the change number, on the tracker's feed only (``ms:chg``)

    @classmethod
    def parse(cls, raw: str | bytes) -> Event:
        d = codec.loads(raw)
        return cls(
            seq=d["seq"],
            mission_id=d["missionId"],
            tenant=d.get("tenant", ""),
            type=d["type"],
            status=d["status"],
            job_id=d.get("jobId"),
            at=ms_to_datetime(d["at"]) or datetime.now(UTC),
            message=d.get("message", ""),
            data=d.get("data"),
            change=d.get("chg", 0),
        )

    @property
    def terminal(self) -> bool:
        """The event that ends its mission (the last one in the log)."""
        return self.type.startswith("mission.") and MissionStatus(self.status).terminal
