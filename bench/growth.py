"""5. Cost as work grows: deploy p50 and `missions(first: 20)` p50 over HTTP on a deployment holding
100 finished missions and on one holding 10,000, side by side on one Redis (two key prefixes, a
server and a worker each, measured in alternating blocks so both see the same machine); Redis bytes
per finished mission, kept and once its event log and outputs expired (retention)."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from bench.client import Client
from bench.engines import Ours
from bench.procs import Procs, Server, mission_server, until, used_memory
from bench.stats import Metric, Metrics, Target, percentile
from mission.service import MissionService
from server.redis_local import LocalRedis

NAME = "growth"
SMALL = 100
LARGE = 10_000
SAMPLES = 60  # per size and repetition
RETENTION_MISSIONS = 500

DEPLOY = (
    'mutation { deployMission(templateId: "bench_fanout") { __typename ... on MissionDeployed { mission { id } } } }'
)
MISSIONS = "{ missions(first: 20) { totalCount edges { cursor node { id status templateId createdAt finishedAt } } } }"


async def settled(engine: Ours, timeout: float = 240.0) -> None:
    """Until every mission deployed so far has finished."""

    async def done() -> bool:
        return await engine.finished() >= int(await engine.redis.zcard(engine.keys.index("*")))

    await until(
        done, f"{engine.keys.prefix}: missions to finish", timeout=timeout, interval=0.05, watch=[engine.worker]
    )


async def fill(engine: Ours, shape: str, count: int) -> None:
    for _ in range(count):
        await engine.deploy(shape)
    await settled(engine)


async def bytes_per_mission(engine: Ours, shape: str, count: int) -> float:
    before = await used_memory(engine.redis)
    await fill(engine, shape, count)
    return (await used_memory(engine.redis) - before) / count


async def after_retention(engine: Ours) -> float:
    """Bytes per finished five-job mission once its event log and outputs expired (retention 1 s)."""
    short = MissionService(engine.service_settings(retention_seconds=1))
    try:
        before = await used_memory(engine.redis)
        for _ in range(RETENTION_MISSIONS):
            await short.deploy_mission(Ours.templates["fanout"])
        await settled(engine)
        await asyncio.sleep(1.5)
        async for _ in engine.redis.scan_iter(count=1000):  # touching expired keys removes them now
            pass
        return (await used_memory(engine.redis) - before) / RETENTION_MISSIONS
    finally:
        await short.close()


async def sample(client: Client, engine: Ours) -> tuple[float, float]:
    """p50 of ``SAMPLES`` deploys (then let them finish) and of ``SAMPLES`` list queries, in ms."""
    deploys = [await client.timed(DEPLOY) for _ in range(SAMPLES)]
    await settled(engine)
    lists = [await client.timed(MISSIONS) for _ in range(SAMPLES)]
    return percentile(deploys, 50), percentile(lists, 50)


async def run(reps: int) -> list[Metric]:
    metrics = Metrics(NAME)
    with LocalRedis() as redis_server, Procs() as procs:
        redis = Redis.from_url(redis_server.url)
        small = Ours(redis_server.url, redis, procs, key_prefix="small", queue="q:small")
        large = Ours(redis_server.url, redis, procs, key_prefix="large", queue="q:large")
        clients: list[Client] = []
        try:
            servers: list[Server] = []
            for engine in (small, large):
                await engine.start()
                servers.append(
                    await mission_server(procs, redis_server.url, f"growth-{engine.keys.prefix}", **engine.settings)
                )
            clients = [Client(server.url) for server in servers]
            await fill(small, "single", SMALL)
            per_single = await bytes_per_mission(large, "single", LARGE - 100)
            per_fanout = await bytes_per_mission(large, "fanout", 100)
            for client in clients:  # warm-up
                await client.timed(DEPLOY)
                await client.timed(MISSIONS)
            for _ in range(reps):
                at_small = await sample(clients[0], small)
                at_large = await sample(clients[1], large)
                metrics.add(f"deploy p50 at {SMALL:,} missions", at_small[0], "ms")
                metrics.add(f"deploy p50 at {LARGE:,} missions", at_large[0], "ms")
                metrics.ratio(f"deploy p50: {LARGE:,} / {SMALL:,}", at_large[0], at_small[0], Target("<=", 1.2))
                metrics.add(f"missions(first: 20) p50 at {SMALL:,}", at_small[1], "ms")
                metrics.add(f"missions(first: 20) p50 at {LARGE:,}", at_large[1], "ms")
                metrics.ratio(
                    f"missions(first: 20) p50: {LARGE:,} / {SMALL:,}", at_large[1], at_small[1], Target("<=", 1.2)
                )
            metrics.add("Redis bytes per finished 1-job mission", per_single, "bytes")
            metrics.add("Redis bytes per finished 5-job mission", per_fanout, "bytes")
            metrics.add("Redis bytes per 5-job mission after retention", await after_retention(small), "bytes")
        finally:
            for client in clients:
                await client.close()
            await small.stop()
            await large.stop()
            await redis.aclose()
    return metrics.all()
