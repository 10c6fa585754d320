"""Mission state in Redis: every transition is one atomic Lua script; reads are one round trip."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from mission import codec
from mission.keys import Keys
from mission.logs import bound
from mission.models import ApprovalState, MissionStatus
from mission.money import from_cents
from mission.plan import Plan
from mission.records import Event, MissionRecord
from mission.scripts import Scripts

log = logging.getLogger("mission.store")

MAX_PAGE = 100
MAX_READY_COUNTED = 10_000  # queue_ready looks at most at this many due jobs


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_text(v) for v in value]
    return value


def _compact(value: Any) -> str:
    return codec.dumps(value)


def log_end(mission_id: str, status: str, ending: Sequence[str]) -> None:
    """The line saying a mission ended, written by the process whose script ended it; ``ending``
    is what the scripts return for it (created and finished ms, spent and budget cents, template,
    tenant)."""
    created, finished, spent, budget, template_id, tenant = ending
    duration = (int(finished) - int(created)) / 1000
    spent_money, budget_money = from_cents(int(spent)), from_cents(int(budget))
    fields = {"status": status, "duration_s": duration, "spent": str(spent_money), "budget": str(budget_money)}
    # bound, not extra=: extra may not name a field a surrounding `bound` has set (mission_id)
    with bound(mission_id=mission_id, template=template_id, tenant=tenant, **fields):
        log.info("mission %s %s after %.3f s, spent %s of %s", mission_id, status, duration, spent_money, budget_money)


@dataclass(frozen=True)
class Started:
    """What a worker needs to run an attempt it took."""

    config: dict[str, Any]
    deadline_ms: int
    remaining_ms: int  # until the deadline, by Redis's clock when the attempt started
    job: dict[str, str]
    upstream: dict[str, Any]  # role -> output


@dataclass(frozen=True)
class Reservation:
    """A model call's worst case, as llm_reserve.lua takes it (see mission/llm.py for units)."""

    worst_cents: int
    prompt_bound: int
    max_tokens: int
    min_tokens: int
    input_units: int
    output_units: int
    model: str


@dataclass(frozen=True)
class Settlement:
    """How a model call ended: ok (usage reported), refused (nothing generated), unknown (cut)."""

    outcome: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_cents: int = 0
    latency_ms: int = 0


@dataclass(frozen=True)
class Page:
    ids: list[str]
    cursors: list[str]
    has_next_page: bool
    total: int

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


@dataclass(frozen=True)
class Stats:
    counters: dict[str, int]  # the `stats` hash: see mission/keys.py
    queue_ready: int  # ARQ jobs due now that no worker has started (counted up to MAX_READY_COUNTED)
    running_jobs: int  # attempts holding a lease
    missions_by_status: dict[str, int]


class InvalidCursor(ValueError):
    """An ``after`` cursor this service did not make."""


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"n:{position}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    """The index position a cursor points after; ValueError for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode()[:64]).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor("not a cursor from this service") from None
    kind, _, number = text.partition(":")
    if kind != "n" or not (number.isascii() and number.isdigit()):
        raise InvalidCursor("not a cursor from this service")
    return int(number)


class MissionStore:
    """All reads and writes of mission state, on one Redis client."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.scripts = Scripts(redis, keys)

    # --- deployment ---

    async def create(
        self,
        mission_id: str,
        tenant: str,
        plan: Plan,
        *,
        idempotency_key: str | None,
        retention_seconds: int,
        deployed_by: str = "",
        client: Redis | None = None,
    ) -> MissionRecord | str:
        """Write the mission and queue its roots; returns it as the script stored it, or the id of
        the mission an already used idempotency key deployed. ``deployed_by`` is the deploying
        key's id (the four-eyes rule of approval gates)."""
        template, config = plan.template, plan.config
        config_json = config.model_dump(mode="json")
        fields = {
            "tenant": tenant,
            "template_id": template.id,
            "ttl": str(config.ttl),
            "budget": str(plan.budget_cents),
            "config": _compact(config_json),
            "outcome_logic_hash": template.outcome_logic_hash or "",
            "policy": template.outcome.policy,
            "quorum": str(template.outcome.count or 0),
            "roles": _compact([job.role for job in plan.jobs]),
            "graph": _compact({"stages": [list(s) for s in plan.stages], "dependencies": dict(template.dependencies)}),
            "retention": str(retention_seconds),
            "idempotency_key": idempotency_key or "",
            "deployed_by": deployed_by,
        }
        gate = template.approval
        if plan.gated and gate is not None:
            fields |= {
                "approval_state": ApprovalState.NOT_REACHED.value,
                "gate_roles": _compact(list(plan.gated)),
                "gate_departments": _compact(gate.before),
                "gate_timeout": str(gate.timeout),
                "gate_on_timeout": gate.on_timeout,
            }
        jobs = [
            {
                "role": job.role,
                "department": job.department,
                "agent": job.agent,
                "depends_on": _compact(list(job.depends_on)),
                "dependents": _compact(list(job.dependents)),
                "allocated": str(job.allocated_cents),
                "timeout": "" if job.timeout is None else str(job.timeout),
                "max_tries": str(job.max_tries),
                "stage": str(job.stage),
                "gated": "1" if job.role in plan.gated else "0",
                "llm": "" if job.llm is None else _compact(job.llm),
            }
            for job in plan.jobs
        ]
        deployed = {"templateId": template.id, "budget": str(config.budget), "ttl": config.ttl, "jobs": len(jobs)}
        idem = self.keys.idempotency(tenant, idempotency_key) if idempotency_key else ""
        result = _text(
            await self.scripts.run(
                "deploy",
                mission_id,
                _compact(fields),
                _compact(jobs),
                idem,
                max(retention_seconds, 86_400),
                _compact(deployed),
                client=client,
            )
        )
        if result[0] != "created":
            return str(result[1])
        return MissionRecord.parse(codec.loads(result[1]))

    # --- a worker's transitions ---

    async def start_job(self, mission_id: str, role: str, attempt: int, lease_ms: int, worker: str) -> Started | str:
        """Take a queued attempt; the reason as a string (``over``, ``stale``, ``gone``) when it may not run."""
        result = await self.scripts.run("start", mission_id, role, attempt, lease_ms, worker)
        result = _text(result)
        if result[0] != "ok":
            if len(result) > 2:  # it found the mission past its deadline and expired it
                log_end(mission_id, str(result[1]), result[2:])
            return str(result[0])
        _, config, deadline, flat, outputs, remaining = result
        job = dict(zip(flat[::2], flat[1::2], strict=True))
        roles = codec.loads(job["depends_on"])
        upstream = {r: (None if o is None else codec.loads(o)) for r, o in zip(roles, outputs, strict=True)}
        return Started(
            config=codec.loads(config),
            deadline_ms=int(deadline),
            remaining_ms=int(remaining),
            job=job,
            upstream=upstream,
        )

    async def finish_job(
        self,
        mission_id: str,
        role: str,
        attempt: int,
        outcome: str,
        payload: str,
        *,
        retryable: bool = False,
        retry_delay_ms: int = 0,
        lease_losses: int = 0,
    ) -> tuple[str, str]:
        """End an attempt (outcome ok|error|lost|release); returns (result, mission or job status)."""
        result = await self.scripts.run(
            "finish",
            mission_id,
            role,
            attempt,
            outcome,
            payload,
            "1" if retryable else "0",
            retry_delay_ms,
            lease_losses,
        )
        result = _text(result)
        if len(result) > 2:  # this attempt's end ended the mission
            log_end(mission_id, str(result[1]), result[2:])
        return str(result[0]), str(result[1])

    async def spend(
        self, mission_id: str, role: str, attempt: int, cents: int, note: str, seq: int
    ) -> tuple[str, int, int]:
        """(ok|exceeded|stale, spent, allocated) in cents. ``seq`` numbers the attempt's calls from 1:
        a call repeated with a seq already applied changes nothing."""
        result = _text(await self.scripts.run("spend", mission_id, role, attempt, cents, note, seq))
        return str(result[0]), int(result[1]), int(result[2])

    async def llm_reserve(
        self, mission_id: str, role: str, attempt: int, seq: int, reservation: Reservation
    ) -> tuple[str, int, int]:
        """Reserve a model call's worst case (mission/lua/llm_reserve.lua): (ok, cents, max_tokens
        granted) | (exceeded, spent, allocated) | (stale, 0, 0). Applied once per ``seq``."""
        r = reservation
        result = _text(
            await self.scripts.run(
                "llm_reserve",
                mission_id,
                role,
                attempt,
                seq,
                r.worst_cents,
                r.prompt_bound,
                r.max_tokens,
                r.min_tokens,
                r.input_units,
                r.output_units,
                r.model,
            )
        )
        return str(result[0]), int(result[1]), int(result[2])

    async def llm_settle(self, mission_id: str, role: str, attempt: int, seq: int, settlement: Settlement) -> int:
        """Settle the reservation made by call ``seq`` of the attempt (mission/lua/llm_settle.lua),
        once; returns the cents charged, or -1 when it was settled already."""
        st = settlement
        result = _text(
            await self.scripts.run(
                "llm_settle",
                mission_id,
                role,
                attempt,
                seq,
                st.outcome,
                st.prompt_tokens,
                st.completion_tokens,
                st.cost_cents,
                st.model,
                st.latency_ms,
            )
        )
        return int(result[2]) if result[0] == "ok" else -1

    async def progress(self, mission_id: str, role: str, attempt: int, fraction: float, message: str, seq: int) -> bool:
        """False when the attempt is no longer current; ``seq`` as for `spend`."""
        result = _text(await self.scripts.run("progress", mission_id, role, attempt, fraction, message, seq))
        return bool(result[0] == "ok")

    async def heartbeat(self, running: Sequence[tuple[str, str, int]], lease_ms: int) -> list[str]:
        """Renew leases of (mission, role, attempt); returns the lease members no longer current."""
        keys = self.keys
        args: list[Any] = [lease_ms, keys.leases, keys.queue, keys.arq_in_progress_prefix]
        for mission_id, role, attempt in running:
            args += [
                keys.lease_member(mission_id, role, attempt),
                keys.job(mission_id, role),
                str(attempt),
                keys.arq_job_id(mission_id, role, attempt),
            ]
        return [str(m) for m in _text(await self.scripts.run("heartbeat", *args))]

    async def claim(self, most: int, now_ms: int, in_progress_ms: int, scan: int = 4096) -> list[tuple[str, int]]:
        """Claim up to ``most`` due ARQ jobs for this worker (as ARQ's own start does), looking at
        no more than ``scan`` due jobs, in one round trip."""
        keys = self.keys
        flat = _text(
            await self.scripts.run("claim", keys.queue, keys.arq_in_progress_prefix, now_ms, in_progress_ms, most, scan)
        )
        return [(str(flat[i]), int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]

    async def lapsed_leases(self, now_ms: int, limit: int = 500) -> list[tuple[str, str, int]]:
        members = _text(await self.redis.zrangebyscore(self.keys.leases, "-inf", now_ms, start=0, num=limit))
        lapsed = []
        for member in members:
            mission_id, role, attempt = member.split("|")
            lapsed.append((mission_id, role, int(attempt)))
        return lapsed

    async def last_change(self) -> int:
        """The newest change number (``Keys.change_counter``); 0 before any change."""
        return int(await self.redis.get(self.keys.change_counter) or 0)

    async def changed_since(self, scope: str, after: int, limit: int = MAX_PAGE) -> list[tuple[str, int]]:
        """(mission id, latest change number) of a tenant's missions (``*``: all tenants') changed
        after change ``after``, oldest change first, at most ``limit``."""
        rows = await self.redis.zrangebyscore(
            self.keys.changes(scope), f"({after}", "+inf", start=0, num=limit, withscores=True
        )
        return [(str(_text(member)), int(score)) for member, score in rows]

    async def overdue_missions(self, now_ms: int, limit: int = 500) -> list[str]:
        """Active missions past their deadline (the deadline jobs' backstop)."""
        return [str(m) for m in _text(await self.redis.zrangebyscore(self.keys.deadlines, "-inf", now_ms, 0, limit))]

    async def sweep_finished(self, cutoff_ms: int, limit: int = 100) -> int:
        """Remove up to ``limit`` missions that finished at or before ``cutoff_ms`` (Redis's clock):
        every key of theirs, their idempotency key and their id from every set; returns how many."""
        keys = self.keys
        ids = [str(m) for m in _text(await self.redis.zrangebyscore(keys.finished, "-inf", cutoff_ms, 0, limit))]
        if not ids:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for mission_id in ids:
                pipe.hmget(keys.mission(mission_id), ["tenant", "template_id", "roles", "idempotency_key"])
            rows = _text(await pipe.execute())
        args: list[Any] = [keys.finished, cutoff_ms]
        for mission_id, (tenant, template_id, roles, idempotency_key) in zip(ids, rows, strict=True):
            doomed = keys.mission_keys(mission_id, codec.loads(roles) if roles else [])
            sets = keys.mission_sets(tenant, template_id) if tenant is not None else [keys.deadlines, keys.approvals]
            idem = keys.idempotency(tenant, idempotency_key) if tenant is not None and idempotency_key else ""
            args += [mission_id, idem, len(doomed), *doomed, len(sets), *sets]
        return int(await self.scripts.run("sweep", *args))

    async def stop(self, mission_id: str, status: MissionStatus, reason: str = "") -> tuple[str, str]:
        """Cancel or expire; (ok|noop|early|gone, status)."""
        result = _text(await self.scripts.run("stop", mission_id, status.value, reason))
        if len(result) > 2:
            log_end(mission_id, str(result[1]), result[2:])
        return str(result[0]), str(result[1])

    async def decide(self, mission_id: str, verb: str, by: str, note: str, *, allow_self: bool) -> tuple[str, str, str]:
        """A decision at the approval gate (approve|reject|timeout); returns (result, the gate's state,
        the mission's status). Result: ok (decided now), late (a person after the deadline: the
        timeout decided instead), not_pending, denied (four-eyes), early (a timeout before the
        deadline) or gone."""
        result = _text(await self.scripts.run("decide", mission_id, verb, by, note, "1" if allow_self else "0"))
        if len(result) > 3:  # the decision ended the mission (a rejection the outcome policy fails)
            log_end(mission_id, str(result[2]), result[3:])
        return str(result[0]), str(result[1]), str(result[2])

    async def overdue_approvals(self, now_ms: int, limit: int = 500) -> list[str]:
        """Missions whose approval gate is past its deadline (the approval timeout jobs' backstop)."""
        return [str(m) for m in _text(await self.redis.zrangebyscore(self.keys.approvals, "-inf", now_ms, 0, limit))]

    # --- reads ---

    async def read(self, mission_ids: Sequence[str], *, outputs: bool = False) -> list[MissionRecord | None]:
        """Whole missions with their jobs in one round trip; None for unknown ids."""
        if not mission_ids:
            return []
        args: list[Any] = ["1" if outputs else "0"]
        for mission_id in mission_ids:
            args += [self.keys.mission(mission_id), self.keys.job(mission_id, ""), self.keys.outputs(mission_id)]
        raw = codec.loads(_text(await self.scripts.run("read", *args)))
        if isinstance(raw, dict):  # cjson encodes an empty list as {}
            raw = []
        return [None if item is None else MissionRecord.parse(item) for item in raw]

    async def read_one(self, mission_id: str, *, outputs: bool = False) -> MissionRecord | None:
        return (await self.read([mission_id], outputs=outputs))[0]

    async def status(self, mission_id: str) -> MissionStatus | None:
        value = _text(await self.redis.hget(self.keys.mission(mission_id), "status"))  # type: ignore[misc]
        return None if value is None else MissionStatus(value)

    async def idempotent(self, tenant: str, key: str) -> str | None:
        """The mission an idempotency key already deployed for this tenant, if any."""
        value = _text(await self.redis.get(self.keys.idempotency(tenant, key)))
        return None if value is None else str(value)

    async def version(self, mission_id: str) -> tuple[int, int, bool] | None:
        """What a read of the mission depends on, in one round trip: the seq of its last event (every
        change of its state appends one), what it has spent (a model call's reservation changes it
        with no event until the call settles) and whether its outputs are still kept (they expire
        alone). None when there is no such mission."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self.keys.mission(mission_id), ["seq", "spent"])
            pipe.exists(self.keys.outputs(mission_id))
            (seq, spent), kept = await pipe.execute()
        return None if seq is None else (int(seq), int(spent or 0), bool(kept))

    async def tenant_of(self, mission_id: str) -> str | None:
        value = _text(await self.redis.hget(self.keys.mission(mission_id), "tenant"))  # type: ignore[misc]
        return None if value is None else str(value)

    async def page(
        self,
        tenant: str,
        *,
        status: MissionStatus | None = None,
        template_id: str | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Page:
        """Newest first, ``first`` at most ``MAX_PAGE``; `InvalidCursor` for a bad cursor."""
        first = max(0, min(first, MAX_PAGE))
        top = f"({decode_cursor(after)}" if after else "+inf"
        key = self.keys.index(tenant, status.value if status else None, template_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrevrangebyscore(key, top, "-inf", start=0, num=first + 1, withscores=True)
            pipe.zcard(key)
            rows, total = _text(await pipe.execute())
        has_next = len(rows) > first
        rows = rows[:first]
        return Page(
            ids=[str(member) for member, _ in rows],
            cursors=[encode_cursor(int(score)) for _, score in rows],
            has_next_page=has_next,
            total=int(total),
        )

    async def outputs(self, mission_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Each mission's job outputs (role -> decoded JSON), in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for mission_id in mission_ids:
                pipe.hgetall(self.keys.outputs(mission_id))
            rows = await pipe.execute()
        return [{_text(k): codec.loads(v) for k, v in row.items()} for row in rows]

    async def stats(self, now_ms: int) -> Stats:
        """Cluster-wide figures for /metrics, in two round trips."""
        statuses = list(MissionStatus)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.stats)
            pipe.zcard(self.keys.leases)
            for status in statuses:
                pipe.zcard(self.keys.index("*", status.value))
            counters, running, *by_status = _text(await pipe.execute())
        ready = await self.scripts.run(
            "ready", self.keys.queue, self.keys.arq_in_progress_prefix, now_ms, MAX_READY_COUNTED
        )
        return Stats(
            counters={str(k): int(v) for k, v in counters.items()},
            queue_ready=int(ready),
            running_jobs=int(running),
            missions_by_status={status.value: int(n) for status, n in zip(statuses, by_status, strict=True)},
        )

    async def events(self, mission_id: str, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """The logged events with ``seq > after_seq`` (all of them, or ``limit``), oldest first."""
        stop = -1 if limit is None else after_seq + limit - 1
        raw = await self.redis.lrange(self.keys.events(mission_id), max(after_seq, 0), stop)  # type: ignore[misc]
        return [Event.parse(item) for item in raw]
