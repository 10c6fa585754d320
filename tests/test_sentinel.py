"""Redis Sentinel: clients find the primary through the Sentinels and follow a failover."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config.settings import Settings
from mission.events import PubSubHub
from mission.models import MissionStatus
from mission.service import MissionService
from server.redis_local import LocalRedis, find_redis_server, free_port
from tests.conftest import TEST_SETTINGS, eventually, run_to_end
from workers.settings import create_worker

pytestmark = pytest.mark.timeout(90)


@contextlib.contextmanager
def sentinel(primary_port: int, tmp_path: Path) -> Iterator[int]:
    """A real Sentinel (redis-server --sentinel) watching the primary, quorum 1, fast failover."""
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster 127.0.0.1 {primary_port} 1\n"
        "sentinel down-after-milliseconds mymaster 1000\n"
        "sentinel failover-timeout mymaster 5000\n"
    )
    binary = find_redis_server()
    assert binary is not None
    process = subprocess.Popen([binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        yield port
    finally:
        process.terminate()
        process.wait(10)


def primary_port(sentinel_port: int) -> int | None:
    client = redis.Redis(port=sentinel_port, decode_responses=True)
    try:
        address = client.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster")
        return int(address[1]) if address else None
    except redis.RedisError:
        return None
    finally:
        client.close()


async def test_missions_run_through_sentinel_and_survive_a_failover(tmp_path: Path) -> None:
    with (
        LocalRedis() as primary,
        LocalRedis(extra_args=["--replicaof", "127.0.0.1", str(primary.port)]) as replica,
        sentinel(primary.port, tmp_path) as sentinel_port,
    ):
        settings = Settings(
            redis_url="redis://sentinel-decides/0",  # with Sentinels, the URL gives only db/password/TLS
            redis_sentinels=[f"127.0.0.1:{sentinel_port}"],
            redis_max_connections=3,  # small: bursts must wait for a connection, not fail
            **TEST_SETTINGS,
        )
        await eventually(lambda: primary_port(sentinel_port) == primary.port)
        service = MissionService(settings)
        hub = PubSubHub(service.redis)
        await hub.start()
        worker = create_worker(settings, handle_signals=False)
        worker_task = asyncio.create_task(worker.async_run())
        try:
            await asyncio.wait_for(worker.ready.wait(), 15)
            before = (await service.deploy_mission("fanout"))["mission_id"]
            await run_to_end(service, hub, before)
            assert (await service.get_mission(before)).status is MissionStatus.SUCCEEDED  # type: ignore[union-attr]

            # the Sentinel must know the replica before it can promote it
            async def replica_known() -> bool:
                client = redis.Redis(port=sentinel_port, decode_responses=True)
                try:
                    replicas = client.execute_command("SENTINEL", "replicas", "mymaster")
                    return any(str(replica.port) in str(r) for r in replicas)
                finally:
                    client.close()

            await eventually(replica_known, timeout=30, interval=0.2)
            os.kill(primary.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
            primary.process.wait()  # type: ignore[union-attr]
            await eventually(lambda: primary_port(sentinel_port) == replica.port, timeout=30, interval=0.1)

            async def deploys() -> str | None:
                try:
                    return str((await service.deploy_mission("two_stage"))["mission_id"])
                except (redis.RedisError, OSError):
                    return None  # the client is still finding the new primary

            after: str | None = None

            async def deployed() -> bool:
                nonlocal after
                after = await deploys()
                return after is not None

            await eventually(deployed, timeout=30, interval=0.2)
            assert after is not None
            await run_to_end(service, hub, after, timeout=30)
            record = await service.get_mission(after)
            assert record is not None and record.status is MissionStatus.SUCCEEDED
        finally:
            await worker.close()
            worker_task.cancel()
            with contextlib.suppress(BaseException):
                await worker_task
            await hub.close()
            await service.close()
