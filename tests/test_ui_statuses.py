"""Mission Control's statuses and event types come from the service's own definitions: ui/src/statuses.ts is what
server/ui_statuses.py writes from mission/models.py (`make schema`), so a status added on one side
shows on the other, or this fails. No Node needed."""

from __future__ import annotations

import re

from mission.models import TERMINAL_JOB_STATUSES, TERMINAL_MISSION_STATUSES, EventType, JobStatus, MissionStatus
from server.ui_statuses import TS_PATH, render


def test_committed_statuses_file_is_what_the_generator_writes() -> None:
    assert TS_PATH.read_text() == render(), "mission/models.py changed: run `make schema` (then `make ui`) and commit"


def test_the_file_lists_every_status_the_terminal_ones_and_every_event_type() -> None:
    text = render()

    def listed(constant: str) -> list[str]:
        found = re.search(rf"export const {constant}\b[^\[]*\[([^\]]*)\]", text)
        assert found is not None, constant
        return re.findall(r'"([A-Z_]+)"', found.group(1))

    assert listed("MISSION_STATUSES") == [s.value for s in MissionStatus]
    assert "AWAITING_APPROVAL" in listed("MISSION_STATUSES") and "AWAITING_APPROVAL" in listed("JOB_STATUSES")
    assert set(listed("TERMINAL_MISSION_STATUSES")) == {s.value for s in TERMINAL_MISSION_STATUSES}
    assert set(listed("TERMINAL_JOB_STATUSES")) == {s.value for s in TERMINAL_JOB_STATUSES}
    assert listed("JOB_STATUSES") == [s.value for s in JobStatus]
    assert re.findall(r'^  ([A-Z_]+): "([a-z_.]+)",$', text, re.M) == [(e.name, e.value) for e in EventType]
