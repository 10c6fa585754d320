"""8. The ceiling of one Redis, and two primaries (docs/scaling.md).

One primary: five-job missions (`bench_fanout`) deployed back to back from this process while one
worker runs them and a tracker (a websocket `missionUpdates` subscription on an API server) watches.
Redis's own counters (`CONFIG RESETSTAT` before, `INFO commandstats` and `INFO stats` after) give
the commands, the Lua calls and the bytes in and out per mission; Redis's CPU (psutil) per mission
gives what one primary carries at most (1 s of one core / CPU per mission).

Two primaries: the same missions spread over two Redis servers (alternately, as a hash of the id
would), one worker each, against one Redis and one worker in the same repetition: the aggregate
missions/s measured, and the ceiling (each primary's missions / its Redis CPU, summed) of each.
Every process shares this machine's 2 cores, so the measured rate shows what a second primary adds
while the cores last (one worker already keeps about one busy); the ceiling shows what the primaries
themselves carry, which is what a second machine's cores would let through.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import websockets
from redis.asyncio import Redis

from bench.engines import Ours
from bench.procs import Procs, mission_server, redis_cpu, until
from bench.stats import Metric, Metrics
from server.redis_local import LocalRedis

NAME = "scaling"
MISSIONS = 300  # per measured run
TIMEOUT = 120.0
TRACKER = "subscription { missionUpdates { id status jobs { id status progress } } }"


@dataclass(frozen=True)
class Counts:
    commands: int  # commands Redis ran: those clients sent and those their scripts called
    lua_calls: int  # EVALSHA + EVAL
    bytes_in: int
    bytes_out: int
    redis_cpu: float
    top: list[tuple[str, int]]  # the commands run most, scripts' included


async def counts(redis: Redis, server: LocalRedis, cpu0: float) -> Counts:
    stats = await redis.info("stats")
    commandstats = await redis.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in commandstats.items()}
    lua = calls.get("evalsha", 0) + calls.get("eval", 0)
    return Counts(
        commands=sum(calls.values()),
        lua_calls=lua,
        bytes_in=int(stats["total_net_input_bytes"]),
        bytes_out=int(stats["total_net_output_bytes"]),
        redis_cpu=redis_cpu(server) - cpu0,
        top=sorted(calls.items(), key=lambda kv: -kv[1])[:12],
    )


async def tracker(ws_url: str, ready: asyncio.Event, seen: list[int]) -> None:
    """A live tracker: one missionUpdates subscription, counting the updates it receives."""
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        await ws.recv()
        await ws.send(json.dumps({"id": "t", "type": "subscribe", "payload": {"query": TRACKER}}))
        ready.set()
        async for raw in ws:
            if json.loads(raw).get("type") == "next":
                seen[0] += 1


async def run_missions(engines: list[Ours], count: int) -> float:
    """Deploy ``count`` missions spread over the engines in turn; seconds until all finished."""
    start = time.perf_counter()

    async def deploy_all() -> None:
        for i in range(count):
            await engines[i % len(engines)].deploy("fanout")

    deploying = asyncio.create_task(deploy_all())

    async def all_done() -> bool:
        return sum([await e.finished() for e in engines]) >= count

    await until(
        all_done, f"{count} missions to finish", timeout=TIMEOUT, interval=0.01, watch=[e.worker for e in engines]
    )
    await deploying
    return time.perf_counter() - start


async def run(reps: int) -> list[Metric]:
    metrics = Metrics(NAME)
    with LocalRedis() as first, LocalRedis() as second, Procs() as procs:
        one = Redis.from_url(first.url)
        two = Redis.from_url(second.url)
        try:
            for _ in range(reps):
                # one primary, a tracker watching
                await one.flushall()
                engine = Ours(first.url, one, procs)
                await engine.start()
                server = await mission_server(procs, first.url, "scaling-server")
                ready, seen = asyncio.Event(), [0]
                watching = asyncio.create_task(tracker(server.ws_url, ready, seen))
                await asyncio.wait_for(ready.wait(), 30)
                await asyncio.sleep(0.5)  # its subscription registered
                await one.config_resetstat()
                cpu0 = redis_cpu(first)
                seconds = await run_missions([engine], MISSIONS)
                found = await counts(one, first, cpu0)
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
                await engine.stop()
                procs.stop(server.child)
                per = 1 / MISSIONS
                metrics.add(
                    "one primary: missions/s (one worker, a tracker watching)", MISSIONS / seconds, "missions/s"
                )
                metrics.add("per mission: commands Redis ran (scripts' included)", found.commands * per, "commands")
                metrics.add("per mission: Lua calls", found.lua_calls * per, "calls")
                metrics.add("per mission: bytes into Redis", found.bytes_in * per / 1024, "KiB")
                metrics.add("per mission: bytes out of Redis (replies, pub/sub)", found.bytes_out * per / 1024, "KiB")
                metrics.add("per mission: Redis CPU", found.redis_cpu * per * 1000, "ms")
                metrics.add(
                    "one primary's ceiling: 1 core / Redis CPU per mission",
                    MISSIONS / max(found.redis_cpu, 1e-9),
                    "missions/s",
                )
                metrics.add("tracker updates received per mission", seen[0] * per, "updates")
                print(
                    f"   commands run most (per mission): {[(n, round(c * per, 1)) for n, c in found.top]}", flush=True
                )

                # one primary vs two, no tracker
                single = await alone(procs, [(first, one)])
                double = await alone(procs, [(first, one), (second, two)])
                metrics.add("one primary, one worker: missions/s", single.rate, "missions/s")
                metrics.add("two primaries, a worker each: missions/s (the same 2 cores)", double.rate, "missions/s")
                metrics.ratio("two primaries / one: missions/s measured", double.rate, single.rate)
                metrics.add("one primary: ceiling from its Redis CPU per mission", single.ceiling, "missions/s")
                metrics.add("two primaries: ceiling, each one's summed", double.ceiling, "missions/s")
                metrics.ratio("two primaries / one: ceiling", double.ceiling, single.ceiling)
                metrics.add("two primaries: busiest one's share of the missions", double.busiest_share, "")
        finally:
            await one.aclose()
            await two.aclose()
    return metrics.all()


@dataclass(frozen=True)
class Spread:
    seconds: float
    missions: list[int]  # each primary's
    redis_cpu: list[float]  # each primary's, seconds

    @property
    def rate(self) -> float:
        return sum(self.missions) / self.seconds

    @property
    def ceiling(self) -> float:
        """Missions/s the primaries carry at most: each one's 1 s / its Redis CPU per mission, summed."""
        return sum(n / max(cpu, 1e-9) for n, cpu in zip(self.missions, self.redis_cpu, strict=True))

    @property
    def busiest_share(self) -> float:
        return max(self.missions) / sum(self.missions)


async def alone(procs: Procs, primaries: list[tuple[LocalRedis, Redis]]) -> Spread:
    """``MISSIONS`` missions over these primaries (a worker each): time, missions and Redis CPU of each."""
    engines: list[Ours] = []
    for server, client in primaries:
        await client.flushall()
        engine = Ours(server.url, client, procs)
        await engine.start()
        engines.append(engine)
    cpu0 = [redis_cpu(server) for server, _ in primaries]
    try:
        seconds = await run_missions(engines, MISSIONS)
        missions = [await engine.finished() for engine in engines]
    finally:
        for engine in engines:
            await engine.stop()
    cpu = [redis_cpu(server) - before for (server, _), before in zip(primaries, cpu0, strict=True)]
    return Spread(seconds, missions, cpu)
