"""The engines the engine benchmarks drive: ours, bare ARQ and Celery, each with one worker process."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from bench.baselines import bare_arq
from bench.procs import CELERY_PYTHON, TEMPLATES, Child, Procs, base_env, python, start_worker, until, wait_workers
from config.settings import Settings
from mission.keys import Keys
from mission.service import MissionService

TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED")


class Arrivals:
    """When each mission's terminal message arrived (perf_counter), by mission id."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._changed = asyncio.Event()

    def record(self, mission_id: str) -> None:
        self.at[mission_id] = time.perf_counter()
        self._changed.set()

    async def wait(self, mission_id: str, timeout: float = 30.0) -> float:
        async with asyncio.timeout(timeout):
            while mission_id not in self.at:
                self._changed.clear()
                await self._changed.wait()
        return self.at.pop(mission_id)


@dataclass
class Listener:
    """A pub/sub reader task recording arrivals on one channel."""

    pubsub: PubSub
    task: asyncio.Task[None]
    arrivals: Arrivals

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.pubsub.aclose()  # type: ignore[no-untyped-call]


class Engine:
    """One engine on a Redis: start its worker, deploy missions, count the finished ones."""

    name = ""
    worker: Child

    def __init__(self, redis_url: str, redis: Redis, procs: Procs) -> None:
        self.redis_url = redis_url
        self.redis = redis
        self.procs = procs

    async def start(self) -> None:
        raise NotImplementedError

    async def deploy(self, shape: str) -> str:
        """Queue one mission: ``fanout`` (4 parallel no-ops, then 1) or ``two_stage`` (1, then 1)."""
        raise NotImplementedError

    async def finished(self) -> int:
        raise NotImplementedError

    async def listen(self) -> Listener:
        """Record each mission's arrival at a terminal state, as it is published."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop the worker, if started (again: nothing more happens)."""
        worker: Child | None = getattr(self, "worker", None)
        if worker is not None:
            self.procs.stop(worker)

    async def _listen(self, channel: str, parse: type[_Parse]) -> Listener:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(channel)
        arrivals = Arrivals()

        async def read() -> None:
            async for message in pubsub.listen():
                if message["type"] == "message" and (mission_id := parse.terminal_id(message["data"])):
                    arrivals.record(mission_id)

        return Listener(pubsub, asyncio.create_task(read()), arrivals)


class _Parse:
    @staticmethod
    def terminal_id(data: bytes | str) -> str | None:
        return data.decode() if isinstance(data, bytes) else data


class _ParseEvent(_Parse):
    @staticmethod
    def terminal_id(data: bytes | str) -> str | None:
        event = json.loads(data)
        if event["type"].startswith("mission.") and event["status"] in TERMINAL:
            return str(event["missionId"])
        return None


class Ours(Engine):
    """`mission-service worker`; missions deployed with `MissionService.deploy_mission` in this process."""

    name = "ours"
    templates: ClassVar[dict[str, str]] = {
        "fanout": "bench_fanout",
        "two_stage": "bench_two_stage",
        "single": "bench_single",
    }

    def __init__(
        self, redis_url: str, redis: Redis, procs: Procs, key_prefix: str = "ms", queue: str = "mission:queue"
    ) -> None:
        super().__init__(redis_url, redis, procs)
        self.settings = {"key_prefix": key_prefix, "queue": queue}
        self.keys = Keys(key_prefix, queue)
        self.service = MissionService(self.service_settings())
        self._closed = False

    def service_settings(self, **overrides: Any) -> Settings:
        """Settings for a `MissionService` in this process, on this engine's keys and queue."""
        return Settings.model_validate(
            {"redis_url": self.redis_url, "templates_path": TEMPLATES, **self.settings, **overrides}
        )

    async def start(self) -> None:
        self.worker = start_worker(self.procs, self.redis_url, f"worker-{self.keys.prefix}", **self.settings)
        await wait_workers(self.redis, self.worker, self.keys.wake_channel)

    async def deploy(self, shape: str) -> str:
        summary = await self.service.deploy_mission(self.templates[shape])
        return str(summary["mission_id"])

    async def finished(self) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:
            for status in TERMINAL:
                pipe.zcard(self.keys.index("*", status))
            counts = await pipe.execute()
        succeeded = int(counts[TERMINAL.index("SUCCEEDED")])
        if sum(counts) != succeeded:
            raise RuntimeError(f"missions ended other than SUCCEEDED: {dict(zip(TERMINAL, counts, strict=True))}")
        return succeeded

    async def listen(self) -> Listener:
        return await self._listen(self.keys.events_channel, _ParseEvent)

    async def stop(self) -> None:
        await super().stop()
        if not self._closed:
            self._closed = True
            await self.service.close()


class BareArq(Engine):
    """`bench.baselines.bare_arq`; its jobs enqueued with ARQ's `enqueue_job` from this process."""

    name = "bare ARQ"
    widths: ClassVar[dict[str, int]] = {"fanout": 4, "two_stage": 1, "single": 1}
    pool: ArqRedis

    async def start(self) -> None:
        self.worker = self.procs.start(
            "bare-arq-worker", python("-m", "bench.baselines.bare_arq"), base_env(BENCH_REDIS_URL=self.redis_url)
        )
        self.pool = await create_pool(RedisSettings.from_dsn(self.redis_url))

        async def polling() -> bool:
            return bool(await self.redis.exists(bare_arq.HEALTH_KEY))

        await until(polling, "the bare ARQ worker to poll", watch=[self.worker])

    async def deploy(self, shape: str) -> str:
        return await bare_arq.deploy(self.pool, self.widths[shape])

    async def finished(self) -> int:
        return int(await self.redis.get(bare_arq.DONE_KEY) or 0)

    async def listen(self) -> Listener:
        return await self._listen(bare_arq.DONE_CHANNEL, _Parse)

    async def stop(self) -> None:
        await super().stop()
        await self.pool.aclose()


class CeleryChord(Engine):
    """`bench.baselines.celery_chord` in the Celery virtualenv; chords deployed by a child process."""

    name = "Celery"
    deployer: Child | None = None

    @staticmethod
    def available() -> bool:
        return CELERY_PYTHON.exists()

    def _env(self) -> dict[str, str]:
        return base_env(BENCH_REDIS_URL=self.redis_url)

    async def start(self) -> None:
        argv = [str(CELERY_PYTHON), "-m", "celery", "-A", "bench.baselines.celery_chord", "worker"]
        argv += ["--pool", "prefork", "--concurrency", "2", "--loglevel", "WARNING"]
        self.worker = self.procs.start("celery-worker", argv, self._env())

        async def ready() -> bool:
            return bool(await self.redis.exists("celery:ready"))

        await until(ready, "the Celery worker to start", watch=[self.worker])

    def deploy_many(self, count: int, width: int = 4) -> Child:
        argv = [str(CELERY_PYTHON), "-m", "bench.baselines.celery_chord", str(count), str(width)]
        self.deployer = self.procs.start("celery-deploy", argv, self._env())
        return self.deployer

    async def started_at(self) -> float:
        """Wall-clock time of the deployer's first chord."""

        async def known() -> bool:
            return bool(await self.redis.exists("celery:t0"))

        await until(known, "the Celery deployer to start", watch=[self.deployer] if self.deployer else [])
        return float(await self.redis.get("celery:t0") or 0)

    async def finished(self) -> int:
        return int(await self.redis.get("celery:done") or 0)

    async def stop(self) -> None:
        if self.deployer is not None:
            self.procs.stop(self.deployer)
        await super().stop()
