"""Department dependency graphs, for a template (no status) and for a running mission (live)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mission.models import JobStatus

# The order in which one job's status speaks for its whole department (every status is listed).
_PRECEDENCE = (
    JobStatus.RUNNING,
    JobStatus.RETRYING,
    JobStatus.QUEUED,
    JobStatus.AWAITING_APPROVAL,
    JobStatus.FAILED,
    JobStatus.EXPIRED,
    JobStatus.CANCELLED,
    JobStatus.SKIPPED,
    JobStatus.WAITING,
    JobStatus.SUCCEEDED,
)


def department_status(statuses: Iterable[JobStatus]) -> JobStatus | None:
    """One status for a department: active work first, then problems; SUCCEEDED only if all did."""
    present = set(statuses)
    if not present:
        return None
    if present == {JobStatus.SUCCEEDED}:
        return JobStatus.SUCCEEDED
    if JobStatus.SUCCEEDED in present and present <= {JobStatus.SUCCEEDED, JobStatus.WAITING}:
        return JobStatus.RUNNING  # cannot happen inside one department, but never claim success early
    return next(s for s in _PRECEDENCE if s in present and s is not JobStatus.SUCCEEDED)


@dataclass(frozen=True)
class Node:
    department: str
    roles: tuple[str, ...]
    status: JobStatus | None


@dataclass(frozen=True)
class Edge:
    upstream: str
    downstream: str


@dataclass(frozen=True)
class DepartmentGraph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    stages: tuple[tuple[str, ...], ...]


def build_graph(
    members: Sequence[tuple[str, str]],
    dependencies: Mapping[str, Sequence[str]],
    stages: Sequence[Sequence[str]],
    statuses: Mapping[str, JobStatus] | None = None,
) -> DepartmentGraph:
    """``members`` are (department, role) in squad order; ``statuses`` (role -> status) makes it live."""
    roles: dict[str, list[str]] = {}
    for department, role in members:
        roles.setdefault(department, []).append(role)
    nodes = tuple(
        Node(
            department=dept,
            roles=tuple(dept_roles),
            status=None if statuses is None else department_status(statuses[r] for r in dept_roles if r in statuses),
        )
        for dept, dept_roles in roles.items()
    )
    edges = tuple(
        Edge(upstream=up, downstream=dept) for dept in roles for up in dependencies.get(dept, ()) if up in roles
    )
    return DepartmentGraph(nodes=nodes, edges=edges, stages=tuple(tuple(s) for s in stages))
