"""The ARQ worker: our functions, startup/shutdown, and a poll loop that new jobs wake at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from typing import Any

from arq.connections import create_pool
from arq.constants import in_progress_key_prefix, job_key_prefix, retry_key_prefix
from arq.cron import cron
from arq.utils import timestamp_ms
from arq.worker import Function, Retry, Worker, func
from redis.exceptions import RedisError

from config.settings import Settings
from mission.connections import arq_redis_settings
from mission.keys import Keys
from workers.jobs import approval_timeout, expire_mission, reap_leases, run_agent_logic, sweep_finished
from workers.runner import run_attempt
from workers.runtime import WorkerRuntime

log = logging.getLogger("mission.worker")

# Agents enforce their own timeouts and the mission deadline; ARQ's must never cut them short.
AGENT_JOB_TIMEOUT = 31 * 86_400

# A freed slot waits at most this long for others to free before the worker polls for queued jobs.
REFILL_DELAY_SECONDS = 0.01


def serialize_job(data: dict[str, Any]) -> bytes:
    """ARQ payloads as JSON (the Lua scripts write jobs in this format too)."""
    return json.dumps(data, separators=(",", ":"), default=str).encode()


def deserialize_job(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw)
    return data


FUNCTIONS: list[Function] = [
    # max_tries: ARQ may re-run a job after a worker shutdown or a Redis outage; a re-run of an
    # attempt that is no longer current does nothing, so let ARQ try as often as it needs.
    func(run_agent_logic, name="run_agent_logic", timeout=AGENT_JOB_TIMEOUT, max_tries=1000),
    func(expire_mission, name="expire_mission", timeout=60),
    func(approval_timeout, name="approval_timeout", timeout=60),
]


def _settings(ctx: dict[str, Any]) -> Settings:
    settings = ctx.get("settings")
    return settings if isinstance(settings, Settings) else Settings()


async def startup(ctx: dict[str, Any]) -> None:
    settings = _settings(ctx)
    runtime = WorkerRuntime(settings, on_fatal=ctx.get("on_fatal"))
    try:
        await runtime.start()
    except BaseException:
        await runtime.close()
        raise
    ctx["settings"] = settings
    ctx["runtime"] = runtime
    log.info("worker %s ready on queue %s", runtime.name, settings.queue)


async def shutdown(ctx: dict[str, Any]) -> None:
    runtime: WorkerRuntime | None = ctx.pop("runtime", None)
    if runtime is not None:
        await runtime.close()


class MissionWorker(Worker):
    """ARQ's worker, polling when woken (a job became ready or a slot freed) or every ``poll_delay``.

    Idle, it polls Redis twice a second; busy, it starts a job as soon as it is queued.
    ARQ's in-progress keys last one lease (renewed by the heartbeat), so a job whose worker died
    before it started is picked up again within a lease, not after the longest job timeout.
    """

    def __init__(self, *args: Any, lease_seconds: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_progress_timeout_s = lease_seconds
        self._refill_at = max(1, self.max_jobs // 10)
        self._more_due = False  # the last claim filled every free slot: more jobs may be waiting
        self._refill_timer: asyncio.TimerHandle | None = None
        self.ready = asyncio.Event()  # set once started up and polling
        self.failed: str | None = None  # a background task that kept crashing, which stopped the worker
        self.ctx["on_fatal"] = self.fatal

    def fatal(self, task: str) -> None:
        """A background task keeps crashing: stop the worker rather than run jobs without it (a
        worker without its heartbeat would let its leases lapse while its agents run on)."""
        self.failed = task
        log.critical("stopping the worker: its %s task keeps crashing", task)
        self.handle_sig(signal.SIGTERM)

    @property
    def _wake(self) -> asyncio.Event | None:
        runtime = self.ctx.get("runtime")
        return runtime.wake if isinstance(runtime, WorkerRuntime) else None

    def _release_sem_dec_counter_on_complete(self) -> None:
        """A full worker may have jobs waiting: poll again once a tenth of its slots are free, or
        `REFILL_DELAY_SECONDS` after a slot frees, whichever comes first (not at every freed slot:
        each poll walks the queue's head; and not only at a tenth, or the last few slots of a burst
        of endings would wait for the next timed poll)."""
        super()._release_sem_dec_counter_on_complete()
        wake = self._wake
        if wake is None:
            return
        if self.max_jobs - self.job_counter == self._refill_at:
            wake.set()
        elif self._more_due and self._refill_timer is None:
            self._refill_timer = self.loop.call_later(REFILL_DELAY_SECONDS, self._refill, wake)

    def _refill(self, wake: asyncio.Event) -> None:
        self._refill_timer = None
        wake.set()

    async def close(self) -> None:
        """ARQ's close, but a cancelled job does not abort it before the shutdown hooks run."""
        if not self._handle_signals:
            self.handle_sig(signal.SIGUSR1)
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):  # Redis may be away; shut down all the same
            await self.pool.delete(self.health_check_key)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        await self.pool.aclose(close_connection_pool=True)
        self._pool = None

    async def run_job(self, job_id: str, score: int) -> None:
        """An agent attempt runs without ARQ's bookkeeping around it: its job id says what to run
        (`Keys.arq_job_id`), so ARQ's read of the job and its try counter (a MULTI of three commands)
        are skipped, and the script that records the attempt's end also forgets its ARQ job (ARQ's
        end is a MULTI of four commands; here, when no end was recorded, a pipeline of two). Tries
        are counted by the mission's own state; a stale or cancelled attempt is a no-op of
        `run_attempt`. Any other job (deadlines, crons) runs through ARQ's `run_job`."""
        attempt = Keys.parse_arq_job_id(job_id)
        runtime = self.ctx.get("runtime")
        if attempt is None or not isinstance(runtime, WorkerRuntime) or self.allow_abort_jobs:
            await super().run_job(job_id, score)
            return
        mission_id, role, number = attempt
        task = self.loop.create_task(run_attempt(runtime, mission_id, role, number))
        self.job_tasks[job_id] = task
        try:
            ran = await task
        except asyncio.CancelledError:
            # shutting down (ARQ's `retry_jobs`): the job stays queued, for another worker to claim now
            self.jobs_retried += 1
            with contextlib.suppress(RedisError, OSError):
                await asyncio.shield(self._requeue(job_id, 0))
            return
        except Retry as retry:
            # Redis was away as the attempt started: the job stays queued, due again after the delay.
            # Should Redis still be away, its in-progress key lapses and a poll claims it again.
            self.jobs_retried += 1
            with contextlib.suppress(RedisError, OSError):
                await asyncio.shield(self._requeue(job_id, retry.defer_score or 1000))
            return
        except Exception:
            log.exception("attempt %s failed outside the agent", job_id)
            self.jobs_failed += 1
        else:
            self.jobs_complete += 1
            if ran.get("forgotten"):  # the attempt's end was recorded, and its ARQ job forgotten with it
                return
        finally:
            self.job_tasks.pop(job_id, None)
        await asyncio.shield(self._forget_job(job_id))

    async def _requeue(self, job_id: str, delay_ms: int) -> None:
        """Due again after ``delay_ms``, unless the job was forgotten meanwhile (its attempt handed
        back as a new one)."""
        async with self.pool.pipeline(transaction=False) as pipe:
            pipe.zadd(self.queue_name, {job_id: timestamp_ms() + delay_ms}, xx=True)
            pipe.delete(in_progress_key_prefix + job_id)
            await pipe.execute()

    async def _forget_job(self, job_id: str) -> None:
        """ARQ's clean-up of a finished job: out of the queue first (so no poll claims it again),
        then its keys."""
        async with self.pool.pipeline(transaction=False) as pipe:
            pipe.zrem(self.queue_name, job_id)
            pipe.delete(job_key_prefix + job_id, in_progress_key_prefix + job_id, retry_key_prefix + job_id)
            await pipe.execute()

    async def _poll_iteration(self) -> None:
        """ARQ's, except that due jobs are found and claimed by one script (`_claim_jobs`)."""
        if self.allow_pick_jobs and self.job_counter < self.max_jobs:
            await self._claim_jobs()
        elif self.allow_pick_jobs:
            self._more_due = True  # woken or polled while full: jobs may be waiting for a slot
        if self.allow_abort_jobs:
            await self._cancel_aborted_jobs()
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                task.result()  # an error in run_job surfaces here, as in ARQ
        await self.heart_beat()

    async def _claim_jobs(self) -> None:
        """Start as many due jobs as there are free slots. ARQ reads the queue's head and claims each
        job with a WATCH/MULTI transaction (four round trips); here one Lua script walks the due jobs,
        skipping those in progress anywhere (a head of long-running jobs hides nothing), and claims
        them. A job already running here is not started twice (its in-progress key may have lapsed
        during an outage; claiming it again only renews the key)."""
        runtime = self.ctx.get("runtime")
        if not isinstance(runtime, WorkerRuntime):
            return
        free = self.max_jobs - self.job_counter
        in_progress_ms = int(self.in_progress_timeout_s * 1000)
        claimed = await runtime.store.claim(free, timestamp_ms(), in_progress_ms)
        self._more_due = len(claimed) >= free
        for job_id, score in claimed:
            here = self.tasks.get(job_id)
            if here is not None and not here.done():
                continue
            await self.sem.acquire()  # never waits: at most `free` jobs are claimed
            self.job_counter += 1
            task = self.loop.create_task(self.run_job(job_id, score))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

    async def main(self) -> None:
        if self._pool is None:
            self._pool = await create_pool(
                self.redis_settings,
                job_deserializer=self.job_deserializer,
                job_serializer=self.job_serializer,
                default_queue_name=self.queue_name,
                expires_extra_ms=self.expires_extra_ms,
            )
        self.ctx["redis"] = self.pool
        if self.on_startup:
            await self.on_startup(self.ctx)
        wake = self._wake or asyncio.Event()
        self.ready.set()
        outage = 0.0
        while True:
            wake.clear()
            try:
                await self._poll_iteration()
            except (RedisError, OSError) as exc:
                # Redis restarting or unreachable: keep the worker, retry with backoff.
                outage = min(max(outage * 2, 0.1), 5.0)
                log.warning("Redis unavailable (%s); polling again in %.1fs", exc, outage)
                await asyncio.sleep(outage)
                continue
            if outage and isinstance(runtime := self.ctx.get("runtime"), WorkerRuntime):
                runtime.redis_back()
            outage = 0.0
            if self.burst:
                if 0 <= self.max_burst_jobs <= self._jobs_started():
                    await asyncio.gather(*self.tasks.values())
                    return
                if await self.pool.zcard(self.queue_name) == 0:
                    await asyncio.gather(*self.tasks.values())
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.poll_delay_s)


def worker_options(settings: Settings) -> dict[str, Any]:
    """Everything ARQ's `Worker` needs, from our settings."""
    every = settings.reap_every_seconds
    return {
        "functions": FUNCTIONS,
        "cron_jobs": [
            cron(reap_leases, name="reap_leases", second=set(range(0, 60, every)), run_at_startup=True),
            cron(sweep_finished, name="sweep_finished", second=set(range(0, 60, every))),
        ],
        "queue_name": settings.queue,
        "redis_settings": arq_redis_settings(settings),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "max_jobs": settings.worker_concurrency,
        "poll_delay": settings.poll_seconds,
        "keep_result": 0,
        "job_serializer": serialize_job,
        "job_deserializer": deserialize_job,
        "ctx": {"settings": settings},
        "lease_seconds": settings.lease_seconds,
        "log_results": False,
    }


def create_worker(settings: Settings, **overrides: Any) -> MissionWorker:
    return MissionWorker(**{**worker_options(settings), **overrides})


_FROM_ENVIRONMENT = worker_options(Settings())


class WorkerSettings:
    """For ARQ's own CLI (``arq workers.settings.WorkerSettings``), configured from ``MISSION_*``.

    Prefer ``mission-service worker``: ARQ's CLI runs ARQ's plain worker, which polls on a timer
    instead of being woken, and keeps a crashed job's in-progress key for the longest job timeout
    (the lease reaper still re-runs the job itself within a lease).
    """

    functions = _FROM_ENVIRONMENT["functions"]
    cron_jobs = _FROM_ENVIRONMENT["cron_jobs"]
    queue_name = _FROM_ENVIRONMENT["queue_name"]
    redis_settings = _FROM_ENVIRONMENT["redis_settings"]
    on_startup = startup
    on_shutdown = shutdown
    max_jobs = _FROM_ENVIRONMENT["max_jobs"]
    poll_delay = _FROM_ENVIRONMENT["poll_delay"]
    keep_result = 0
    job_serializer = serialize_job
    job_deserializer = deserialize_job
    ctx = _FROM_ENVIRONMENT["ctx"]
