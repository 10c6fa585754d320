"""The statuses and event types Mission Control knows, written as TypeScript (ui/src/statuses.ts)
from their one definition in mission/models.py, so the page and the service cannot disagree. `make schema` writes
the file; a test fails when the committed file is not what `render()` gives.

    python -m server.ui_statuses   # rewrites ui/src/statuses.ts
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

from mission.models import (
    TERMINAL_JOB_STATUSES,
    TERMINAL_MISSION_STATUSES,
    ApprovalState,
    EventType,
    JobStatus,
    MissionStatus,
)

TS_PATH: Path = Path(__file__).resolve().parent.parent / "ui" / "src" / "statuses.ts"


def _list(values: Iterable[StrEnum]) -> str:
    return "[" + ", ".join(f'"{v.value}"' for v in values) + "]"


def _enum(constant: str, type_name: str, enum: type[StrEnum], doc: str) -> list[str]:
    return [
        f"/** {doc} */",
        f"export const {constant} = {_list(enum)} as const;",
        f"export type {type_name} = (typeof {constant})[number];",
        "",
    ]


def _terminal(constant: str, type_name: str, enum: type[StrEnum], members: frozenset[StrEnum], doc: str) -> list[str]:
    ordered = [v for v in enum if v in members]  # the enum's order: the output is stable
    return [
        f"/** {doc} */",
        f"export const {constant}: ReadonlySet<string> = new Set<{type_name}>({_list(ordered)});",
        "",
    ]


def _events() -> list[str]:
    members = "\n".join(f'  {e.name}: "{e.value}",' for e in EventType)
    return [
        "/** Every type of event in a mission's log. */",
        f"export const EVENT_TYPES = {{\n{members}\n}} as const;",
        "",
    ]


def render() -> str:
    """ui/src/statuses.ts as it must be."""
    lines = [
        "// Generated from mission/models.py by `make schema` (server/ui_statuses.py): do not edit.",
        "",
        *_enum("MISSION_STATUSES", "MissionStatus", MissionStatus, "Where a mission is in its life."),
        *_enum("JOB_STATUSES", "JobStatus", JobStatus, "Where one agent's job is."),
        *_enum("APPROVAL_STATES", "ApprovalState", ApprovalState, "Where a mission's approval gate is."),
        *_terminal(
            "TERMINAL_MISSION_STATUSES",
            "MissionStatus",
            MissionStatus,
            TERMINAL_MISSION_STATUSES,
            "A mission in one of these has ended.",
        ),
        *_terminal(
            "TERMINAL_JOB_STATUSES",
            "JobStatus",
            JobStatus,
            TERMINAL_JOB_STATUSES,
            "A job in one of these has ended.",
        ),
        *_events(),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def write(path: Path = TS_PATH) -> None:
    path.write_text(render())


if __name__ == "__main__":
    write()
