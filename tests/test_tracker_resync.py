"""`missionUpdates` across resyncs: a mission that ends while the server's pub/sub connection is down
is sent again once it is back, so no tracker is left showing a mission running after it ended."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio

from config.settings import ApiKeyGrant, Settings
from mission.models import MissionStatus
from mission.service import MissionService
from tests.conftest import StartWorker, eventually, serve_api
from tests.gql import LEGACY_WS, TRANSPORT_WS, WsClient

pytestmark = pytest.mark.timeout(120)

UPDATES = "subscription { missionUpdates { id status } }"
TENANT_A, TENANT_B = "tenant-a", "tenant-b"
VIEWER_A, ADMIN = "viewer-a-key-2f8e41c7d09b", "admin-key-7c1d9e3a5b60"
KEYS = {VIEWER_A: ApiKeyGrant(tenant=TENANT_A, role="viewer"), ADMIN: ApiKeyGrant(tenant="hq", role="admin")}
TERMINAL = {s.value for s in MissionStatus if s.terminal}


class Tracker:
    """One websocket subscriber to `missionUpdates`: the last status it received for each mission."""

    def __init__(self, ws: WsClient, op_id: str) -> None:
        self.ws = ws
        self.op_id = op_id
        self.last: dict[str, str] = {}
        self.errors: list[Any] = []
        self.changed = asyncio.Event()
        self._task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str, protocol: str = TRANSPORT_WS, key: str | None = None) -> Tracker:
        ws = await WsClient.connect(url, protocol, {"Authorization": f"Bearer {key}"} if key else None)
        return cls(ws, await ws.subscribe(UPDATES))

    async def _read(self) -> None:
        async for payload in self.ws.results(self.op_id, timeout=60):
            if "errors" in payload:
                self.errors.append(payload["errors"])
                continue
            mission = payload["data"]["missionUpdates"]
            self.last[mission["id"]] = mission["status"]
            self.changed.set()

    async def until(self, done: Any, timeout: float = 20.0) -> None:
        """Until ``done(self.last)`` holds, woken by each update received (bounded)."""
        async with asyncio.timeout(timeout):
            while not done(self.last):
                if self._task.done():
                    self._task.result()
                    raise AssertionError("the subscription ended")
                self.changed.clear()
                await self.changed.wait()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        await self.ws.close()


@contextlib.asynccontextmanager
async def trackers(url: str) -> AsyncIterator[dict[str, Tracker]]:
    opened = {
        "admin": await Tracker.connect(url, TRANSPORT_WS, ADMIN),
        "admin-legacy": await Tracker.connect(url, LEGACY_WS, ADMIN),
        "viewer-a": await Tracker.connect(url, TRANSPORT_WS, VIEWER_A),
    }
    try:
        yield opened
    finally:
        for tracker in opened.values():
            await tracker.close()


async def api_pubsub_clients(client: redis.asyncio.Redis) -> int:
    """The API's pub/sub connections to Redis (CLIENT LIST names each connection)."""
    listed = await client.execute_command("CLIENT", "LIST", "TYPE", "pubsub")
    text = listed.decode() if isinstance(listed, bytes) else str(listed)
    return sum("name=mission-api" in line for line in text.splitlines())


async def test_after_pubsub_drops_every_tracker_ends_with_each_missions_terminal_status(
    settings: Settings, service: MissionService, start_worker: StartWorker
) -> None:
    await start_worker()
    killer = redis.asyncio.Redis.from_url(settings.redis_url)
    async with serve_api(settings.model_copy(update={"api_keys": KEYS})) as api, trackers(api.ws_url) as subs:
        # Every subscription is live once each has received a first mission's update.
        (probe, _) = await service.deploy("two_stage", tenant=TENANT_A)
        for tracker in subs.values():
            await tracker.until(lambda last: last.get(probe.id) == "SUCCEEDED")

        tenant_of: dict[str, str] = {probe.id: TENANT_A}
        hanging: list[str] = []  # cancelled one by one, each while the API's pub/sub is down
        for i in range(6):
            tenant = TENANT_A if i % 2 == 0 else TENANT_B
            (record, _) = await service.deploy("hang", tenant=tenant)
            hanging.append(record.id)
            tenant_of[record.id] = tenant
            # ... while these finish on their own, in and out of the gaps
            (record, _) = await service.deploy("slow_chain", {"inputs": {"seconds": 0.1 * (i + 1)}}, tenant=tenant)
            tenant_of[record.id] = tenant

        drops = 0
        for mission_id in hanging:
            await eventually(lambda: api_pubsub_clients(killer))  # connected again
            await killer.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            drops += 1
            await service.cancel_mission(mission_id)  # its last events are published into the gap

        async def all_ended() -> bool:
            statuses = [await service.store.status(m) for m in tenant_of]
            return all(s is not None and s.terminal for s in statuses)

        await eventually(all_ended, timeout=30)
        final = {m: (await service.store.status(m)) for m in tenant_of}
        assert drops == len(hanging)
        assert {final[m] for m in hanging} == {MissionStatus.CANCELLED}

        def sees_every_end(tenants: set[str]) -> Any:
            visible = {m for m, t in tenant_of.items() if t in tenants}
            return lambda last: all(last.get(m) in TERMINAL for m in visible)

        await subs["admin"].until(sees_every_end({TENANT_A, TENANT_B}))
        await subs["admin-legacy"].until(sees_every_end({TENANT_A, TENANT_B}))
        await subs["viewer-a"].until(sees_every_end({TENANT_A}))
        for name, tracker in subs.items():
            assert not tracker.errors, (name, tracker.errors)
            for mission_id, status in tracker.last.items():
                assert status == final[mission_id].value, (name, mission_id)  # type: ignore[union-attr]
        # a tenant's tracker never hears of another tenant's missions, resyncs included
        assert {tenant_of[m] for m in subs["viewer-a"].last} == {TENANT_A}
    await killer.aclose()


async def test_each_script_run_takes_one_change_number_kept_per_mission_and_scope(service: MissionService) -> None:
    store = service.store
    before = await store.last_change()
    (a1, _) = await service.deploy("hang", tenant=TENANT_A)
    (b1, _) = await service.deploy("hang", tenant=TENANT_B)
    (a2, _) = await service.deploy("hang", tenant=TENANT_A)
    # one number per deploy, though each deploy emits several events
    assert await store.last_change() == before + 3
    assert await store.changed_since("*", before) == [(a1.id, before + 1), (b1.id, before + 2), (a2.id, before + 3)]
    assert await store.changed_since(TENANT_A, before) == [(a1.id, before + 1), (a2.id, before + 3)]
    await service.cancel_mission(a1.id)  # a later change moves the mission, which stays one member
    assert await store.changed_since(TENANT_A, before) == [(a2.id, before + 3), (a1.id, before + 4)]
    assert await store.changed_since(TENANT_A, before + 3) == [(a1.id, before + 4)]
    assert await store.changed_since("*", before, limit=2) == [(b1.id, before + 2), (a2.id, before + 3)]
