"""Statuses, event types and histogram buckets are defined once, in mission/models.py; the Lua
scripts get the sets and buckets generated from them, and every status or event type a script
writes must be one Python knows (and every one Python lists must be written by some script)."""

from __future__ import annotations

import re

from redis.asyncio import Redis

from mission.keys import Keys
from mission.models import (
    TERMINAL_JOB_STATUSES,
    TERMINAL_MISSION_STATUSES,
    ApprovalState,
    EventType,
    JobStatus,
    MissionStatus,
)
from mission.scripts import LUA_DIR, WITH_PRELUDE, generated, source
from server.redis_local import LocalRedis

LUA = {path.stem: path.read_text() for path in LUA_DIR.glob("*.lua")}
ALL_LUA = "\n".join(LUA.values())
# An upper-case string literal that is not a Redis command or option.
STATUS_LITERAL = re.compile(r"(?<!redis\.call\()'([A-Z][A-Z_]+)'")
REDIS_OPTIONS = {"EX", "PX", "XX", "LIMIT", "WITHSCORES"}
EVENT_LITERAL = re.compile(r"'((?:job|mission|approval)\.[a-z_]+)'")


def test_every_status_a_script_writes_is_a_python_status() -> None:
    written = set(STATUS_LITERAL.findall(ALL_LUA)) - REDIS_OPTIONS
    known = {s.value for s in JobStatus} | {s.value for s in MissionStatus} | {s.value for s in ApprovalState}
    assert written, "the pattern found nothing: it no longer matches how the scripts spell statuses"
    assert written <= known, written - known


def test_event_types_are_the_same_on_both_sides() -> None:
    literal = set(EVENT_LITERAL.findall(ALL_LUA))
    # close_job and finish_mission name the event after the status they set: job.<status>, mission.<status>
    assert "emit('job.' .. string.lower(status)" in LUA["lib"]
    assert "emit('mission.' .. string.lower(status)" in LUA["lib"]
    derived = {f"job.{s.lower()}" for s in TERMINAL_JOB_STATUSES} | {
        f"mission.{s.lower()}" for s in TERMINAL_MISSION_STATUSES
    }
    assert literal | derived == {e.value for e in EventType}


def test_the_scripts_get_the_python_definitions() -> None:
    prelude = generated()
    assert '["SKIPPED"] = true' in prelude and '["QUEUED"] = true' not in prelude
    for name in WITH_PRELUDE:
        assert source(name).startswith(prelude)
        assert Keys().lua_names() in source(name)
    # nothing in the hand-written Lua defines them again
    for name in ("TERMINAL_JOB", "TERMINAL_MISSION", "RUN_BUCKETS_MS", "APPROVAL_BUCKETS_MS"):
        assert not re.search(rf"local {name}\b", ALL_LUA), name


async def test_the_scripts_key_names_are_the_python_ones(redis_server: LocalRedis) -> None:
    """The names a script builds from the mission id are exactly what mission/keys.py builds, even
    for a prefix and queue that need escaping in Lua."""
    keys = Keys(prefix="p'x\\y\u00e9", queue="q\nueue")
    mission_id = "mssn_" + "ab" * 16
    lua = keys.lua_names() + "\nreturn {N.mid, N.m, N.jp .. 'role', N.out, N.ev, N.chm, N.q, N.leases, N.idx}"
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        got = await redis.eval(lua, 0, mission_id)  # type: ignore[misc]
    finally:
        await redis.aclose()
    expected = [
        mission_id,
        keys.mission(mission_id),
        keys.job(mission_id, "role"),
        keys.outputs(mission_id),
        keys.events(mission_id),
        keys.mission_channel(mission_id),
        keys.queue,
        keys.leases,
        f"{keys.prefix}:idx:",
    ]
    assert got == expected
