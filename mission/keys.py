"""Every Redis key and channel the service uses, in one place.

All names start with ``Settings.key_prefix`` (default ``ms``) so several deployments can share a
Redis. Lua scripts never spell a name themselves: their names are generated from here (``lua_names``).

Per mission ``<id>`` (``mssn_<32 hex>``):

- ``ms:m:<id>``            hash  the mission record: status, times, config JSON, budget and spent
                                 (cents), ``seq`` (last event number), ``pending`` (non-terminal jobs),
                                 ``roles`` JSON, ``n`` and ``nt`` (its deploy position among all
                                 tenants' missions and among its tenant's: the index scores)
- ``ms:m:<id>:j:<role>``   hash  one job: plan (agent, department, depends_on, allocation, timeout,
                                 max_tries) and state (status, attempt, failures, spent, progress…)
- ``ms:m:<id>:out``        hash  role -> output JSON of succeeded jobs (expires after retention)
- ``ms:m:<id>:ev``         list  the event log; event ``seq`` is at index ``seq - 1`` (expires
                                 after retention)

Shared:

- ``ms:n``, ``ms:n:<tenant>``     counters  deploy order, of all tenants and of one: the scores in the
                                           ``*`` indexes and in a tenant's (so a tenant's cursors
                                           reveal nothing of other tenants' activity)
- ``ms:idx:<tenant>:<filter>``   zset      mission ids by deploy order; ``<tenant>`` is a tenant or
                                           ``*`` (all); ``<filter>`` is ``all``, ``s:<STATUS>``,
                                           ``t:<template>`` or ``st:<STATUS>:<template>``
- ``ms:chg``                     counter   change number: one more for each script run that changes
                                           a mission (stamped as ``chg`` on the tracker's feed)
- ``ms:chg:<tenant>``            zset      mission id -> the number of its latest change; ``<tenant>``
                                           is a tenant or ``*`` (all). A tracker that missed live
                                           events reads the missions changed since the last it saw
- ``ms:idem:<tenant>:<sha256>``  string    idempotency key -> mission id
- ``ms:leases``                  zset      ``<mission>|<role>|<attempt>`` of running jobs by lease
                                           expiry (ms); the reaper re-runs lapsed ones
- ``ms:deadlines``               zset      active mission ids by deadline (ms), a backstop for the
                                           deadline jobs
- ``ms:approvals``               zset      mission ids whose approval gate is pending, by the gate's
                                           deadline (ms): a backstop for the approval timeout jobs
- ``ms:finished``                zset      finished mission ids by finish time (ms): the sweeper
                                           removes each mission (every key above and its id from
                                           every set, `Keys.mission_sets`) once
                                           ``Settings.summary_retention_seconds`` have passed
- ``ms:rate:<name>:<who>``       string    a rate limit's count in the current window (expires with it)
- ``ms:stats``                   hash      cluster-wide counters for /metrics (deploys, finishes by
                                           template and status, retries, reaps, spend, job run times)

Channels:

- ``ms:ch:m:<id>``       every event of one mission (JSON, as stored in the log)
- ``ms:ch:events``       every event of every mission (the tracker's feed)
- ``ms:ch:control``      ``{"missionId", "status"}`` when a mission is cancelled or expires, so
                         workers stop its running agents at once
- ``ms:ch:wake:<queue>`` published when jobs become ready, so idle workers poll at once

ARQ's own keys (``arq:job:<id>``, the queue zset ``Settings.queue``) are written by the scripts in
ARQ's format with a JSON serializer; ARQ job ids are ``<mission>:<role>:<attempt>`` for agent runs
``<mission>:deadline`` for the deadline job and ``<mission>:approval`` for the approval gate's
timeout job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cached_property

from arq.constants import in_progress_key_prefix, job_key_prefix

from mission.models import MissionStatus


class Keys:
    """Key and channel names for one key prefix and queue."""

    def __init__(self, prefix: str = "ms", queue: str = "mission:queue") -> None:
        self.prefix = prefix
        self.queue = queue
        self.counter = f"{prefix}:n"
        self.change_counter = f"{prefix}:chg"
        self.leases = f"{prefix}:leases"
        self.deadlines = f"{prefix}:deadlines"
        self.approvals = f"{prefix}:approvals"
        self.finished = f"{prefix}:finished"
        self.stats = f"{prefix}:stats"
        self.events_channel = f"{prefix}:ch:events"
        self.control_channel = f"{prefix}:ch:control"
        self.wake_channel = f"{prefix}:ch:wake:{queue}"
        self.arq_job_prefix = job_key_prefix
        self.arq_in_progress_prefix = in_progress_key_prefix

    def mission(self, mission_id: str) -> str:
        return f"{self.prefix}:m:{mission_id}"

    def job(self, mission_id: str, role: str) -> str:
        return f"{self.prefix}:m:{mission_id}:j:{role}"

    def outputs(self, mission_id: str) -> str:
        return f"{self.prefix}:m:{mission_id}:out"

    def events(self, mission_id: str) -> str:
        return f"{self.prefix}:m:{mission_id}:ev"

    def mission_channel(self, mission_id: str) -> str:
        return f"{self.prefix}:ch:m:{mission_id}"

    def index(self, tenant: str, status: str | None = None, template_id: str | None = None) -> str:
        """The index zset for a tenant (``*`` for all) filtered by status and/or template."""
        if status and template_id is not None:
            kind = f"st:{status}:{template_id}"
        elif status:
            kind = f"s:{status}"
        elif template_id is not None:
            kind = f"t:{template_id}"
        else:
            kind = "all"
        return f"{self.prefix}:idx:{tenant}:{kind}"

    def changes(self, tenant: str) -> str:
        """The zset of a tenant's missions (``*``: all tenants') by their latest change number."""
        return f"{self.prefix}:chg:{tenant}"

    def mission_keys(self, mission_id: str, roles: Iterable[str]) -> list[str]:
        """Every key of one mission: what removing a finished mission deletes."""
        jobs = [self.job(mission_id, role) for role in roles]
        return [self.mission(mission_id), *jobs, self.outputs(mission_id), self.events(mission_id)]

    def mission_sets(self, tenant: str, template_id: str) -> list[str]:
        """Every sorted set that may hold a mission's id (the finished set aside): removing a
        finished mission takes its id out of each. A new set of mission ids is added here."""
        sets = [self.deadlines, self.approvals]
        for scope in (tenant, "*"):
            sets += [self.index(scope), self.index(scope, template_id=template_id)]
            sets.append(self.changes(scope))
            for status in MissionStatus:
                sets += [self.index(scope, status.value), self.index(scope, status.value, template_id)]
        return sets

    def rate(self, name: str, who: str) -> str:
        return f"{self.prefix}:rate:{name}:{who}"

    def idempotency(self, tenant: str, key: str) -> str:
        return f"{self.prefix}:idem:{tenant}:{hashlib.sha256(key.encode()).hexdigest()}"

    @staticmethod
    def arq_job_id(mission_id: str, role: str, attempt: int) -> str:
        return f"{mission_id}:{role}:{attempt}"

    @staticmethod
    def parse_arq_job_id(job_id: str) -> tuple[str, str, int] | None:
        """(mission id, role, attempt) of an agent attempt's ARQ job id; None for any other job."""
        mission_id, _, rest = job_id.partition(":")
        role, _, attempt = rest.rpartition(":")
        if not mission_id.startswith("mssn_") or not role or not attempt.isdigit():
            return None
        return mission_id, role, int(attempt)

    @staticmethod
    def deadline_job_id(mission_id: str) -> str:
        return f"{mission_id}:deadline"

    @staticmethod
    def approval_job_id(mission_id: str) -> str:
        return f"{mission_id}:approval"

    @staticmethod
    def lease_member(mission_id: str, role: str, attempt: int) -> str:
        return f"{mission_id}|{role}|{attempt}"

    @cached_property
    def _shared_names(self) -> dict[str, str]:
        return {
            "idx": f"{self.prefix}:idx:",
            "counter": self.counter,
            "chg": self.change_counter,
            "chs": f"{self.prefix}:chg:",
            "leases": self.leases,
            "deadlines": self.deadlines,
            "approvals": self.approvals,
            "finished": self.finished,
            "stats": self.stats,
            "cha": self.events_channel,
            "ctl": self.control_channel,
            "wake": self.wake_channel,
            "q": self.queue,
            "aj": self.arq_job_prefix,
            "ip": self.arq_in_progress_prefix,
        }

    def lua_names(self) -> str:
        """Lua that defines ``N``, the names a mission script uses, from the mission id in ``ARGV[1]``:
        generated from the builders above, so the scripts never spell a key themselves (and building
        them costs a script less than decoding a blob of names would)."""
        sentinel = "\x00mid\x00"
        per_mission = {
            "mid": sentinel,
            "m": self.mission(sentinel),
            "jp": self.job(sentinel, ""),
            "out": self.outputs(sentinel),
            "ev": self.events(sentinel),
            "chm": self.mission_channel(sentinel),
        }

        fields = [f"{key} = {_lua_string(value)}" for key, value in self._shared_names.items()]
        fields += [f"{key} = {_joined(value, sentinel)}" for key, value in per_mission.items()]
        return "local MID = ARGV[1]\nlocal N = {\n  " + ",\n  ".join(fields) + "\n}"


def _lua_string(text: str) -> str:
    """A Lua string literal (decimal escapes for anything but printable ASCII)."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in "\\'" else f"\\{byte:03d}")
    return "'" + "".join(out) + "'"


def _joined(template: str, sentinel: str) -> str:
    """A Lua expression for ``template`` with each ``sentinel`` replaced by the mission id."""
    parts = template.split(sentinel)
    pieces = []
    for i, part in enumerate(parts):
        if part:
            pieces.append(_lua_string(part))
        if i < len(parts) - 1:
            pieces.append("MID")
    return " .. ".join(pieces)
