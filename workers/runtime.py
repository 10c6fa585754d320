"""A worker process's shared state: Redis, the pub/sub hub, its running agents and their leases."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from config.settings import Settings
from mission.connections import redis_client
from mission.events import RESYNC, PubSubHub
from mission.keys import Keys
from mission.store import MissionStore
from mission.supervisor import Supervisor
from workers.models import ModelProvider
from workers.surface import public_surface

log = logging.getLogger("mission.worker")

Attempt = tuple[str, str, int]  # mission id, role, attempt


class WorkerRuntime:
    """Opened in the worker's startup, closed in its shutdown."""

    def __init__(self, settings: Settings, on_fatal: Callable[[str], None] | None = None) -> None:
        """``on_fatal`` is called with a background task's name when it keeps crashing."""
        self.settings = settings
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.keys = Keys(settings.key_prefix, settings.queue)
        self.redis: Redis = redis_client(settings, "mission-worker")
        self.store = MissionStore(self.redis, self.keys)
        self.service = public_surface(settings)  # what agents see of the service: no secret
        self.supervisor = Supervisor(on_fatal)
        self.hub = PubSubHub(self.redis, supervisor=self.supervisor)
        self.models = ModelProvider(settings)  # holds the model endpoint's key: never handed to agents
        self.wake = asyncio.Event()
        self.running: dict[Attempt, asyncio.Task[Any]] = {}
        self._stopped: dict[str, float] = {}  # recently ended missions -> when (monotonic)
        self.listening = {"wake": asyncio.Event(), "control": asyncio.Event()}  # set while subscribed
        # The reaper waits a lease after start and after an outage (see redis_back): a lease that
        # lapsed while this worker could not see Redis says nothing yet about the worker holding it.
        self.reap_after = time.monotonic() + settings.lease_seconds

    def redis_back(self) -> None:
        """Redis answers again after an outage: leases lapsed meanwhile are not a sign of dead
        workers until the live ones have had a lease's time to renew theirs."""
        self.reap_after = time.monotonic() + self.settings.lease_seconds

    @property
    def may_reap(self) -> bool:
        return time.monotonic() >= self.reap_after

    @property
    def lease_ms(self) -> int:
        return int(self.settings.lease_seconds * 1000)

    async def start(self, timeout: float = 30.0) -> None:
        """Start the background loops; returns once the wake and control channels are subscribed."""
        await self.hub.start()
        await self.models.start()
        self.supervisor.spawn("wake-listener", self._listen_wake)
        self.supervisor.spawn("control-listener", self._listen_control)
        self.supervisor.spawn("heartbeat", self._renew_leases)
        for listening in self.listening.values():
            await asyncio.wait_for(listening.wait(), timeout)

    async def close(self) -> None:
        await self.supervisor.close()
        await self.hub.close()
        await self.models.close()
        await self.redis.aclose(close_connection_pool=True)

    # --- running agents ---

    def track(self, attempt: Attempt, task: asyncio.Task[Any]) -> None:
        self.running[attempt] = task
        if attempt[0] in self._stopped:  # the stop arrived while this attempt was starting
            task.cancel("mission ended")

    def untrack(self, attempt: Attempt) -> None:
        self.running.pop(attempt, None)

    def stop_mission(self, mission_id: str) -> int:
        """Cancel the running agents of a mission that ended; returns how many. The mission is
        remembered for two leases, so an attempt still starting when the stop arrives stops too."""
        now = time.monotonic()
        self._stopped = {m: at for m, at in self._stopped.items() if now - at < 2 * self.settings.lease_seconds}
        self._stopped[mission_id] = now
        stopped = 0
        for (mid, _, _), task in list(self.running.items()):
            if mid == mission_id and not task.done():
                task.cancel("mission ended")
                stopped += 1
        return stopped

    # --- background loops (supervised: see mission/supervisor.py) ---

    async def _listen_wake(self) -> None:
        try:
            async with self.hub.subscribe(self.keys.wake_channel, maxsize=1) as sub:
                self.listening["wake"].set()
                while True:
                    item = await sub.get()
                    self._woken(item)
        finally:
            self.listening["wake"].clear()

    def _woken(self, item: Any) -> None:
        self.wake.set()

    async def _listen_control(self) -> None:
        try:
            async with self.hub.subscribe(self.keys.control_channel) as sub:
                self.listening["control"].set()
                while True:
                    item = await sub.get()
                    self._control(item)
        finally:
            self.listening["control"].clear()

    def _control(self, item: Any) -> None:
        """A mission was cancelled or expired: stop its agents running here."""
        if item is RESYNC:
            return  # the heartbeat catches any stop missed meanwhile
        try:
            mission_id = json.loads(item)["missionId"]
        except (ValueError, KeyError, TypeError):
            return
        if not isinstance(mission_id, str):
            return
        if stopped := self.stop_mission(mission_id):
            log.info("stopped %d agent(s) of %s", stopped, mission_id)

    async def _renew_leases(self) -> None:
        """Heartbeat: renew every running attempt's lease; stop attempts no longer current."""
        period = self.settings.lease_seconds / 3
        while True:  # renewing at once when (re)started: after a crash, the leases are due
            if self.running:
                await self._renew_once()
            await asyncio.sleep(period)

    async def _renew_once(self) -> None:
        attempts = list(self.running)
        try:
            stale = set(await self.store.heartbeat(attempts, self.lease_ms))
        except (RedisError, OSError) as exc:
            log.warning("lease renewal failed (%s); retrying", exc)
            self.redis_back()  # when Redis answers again, give the leases time to be renewed
            return
        for attempt in attempts:
            task = self.running.get(attempt)
            if self.keys.lease_member(*attempt) in stale and task is not None and not task.done():
                task.cancel("attempt no longer current")
