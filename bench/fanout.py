"""4. Subscription fan-out: 1,000 websocket subscribers (4 client processes) on one mission whose agent
reports progress twice a second (2,000 deliveries/s), ours vs a naive subscription (one Redis pub/sub
connection per subscriber) and vs ours with sharing off (`MISSION_SHARE_SUBSCRIPTIONS=false`: one
execution per subscriber). Lost events, publish -> receive latency, server CPU per delivery, and
the Redis pub/sub connections each server holds. Then 10,000 subscribers of one mission on a fresh
server process (5 pulses, one a second): lost, p99 and the server's memory per subscriber."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from bench.agents import go_key
from bench.procs import (
    LOGS,
    TEMPLATES,
    Child,
    Procs,
    Server,
    base_env,
    mission_server,
    python,
    start_worker,
    until,
    wait_http,
    wait_workers,
)
from bench.stats import Metric, Metrics, Target, percentile
from config.settings import Settings
from mission.service import MissionService
from server.redis_local import LocalRedis, free_port

NAME = "fanout"
SUBSCRIBERS = 1000
PROCESSES = 4
PULSES = 10
INTERVAL = 0.5  # 2 events/s to 1,000 subscribers: 2,000 deliveries/s
READY_TIMEOUT = 240.0
MANY = 10_000  # subscribers of one mission on one server process
MANY_PULSES, MANY_INTERVAL = 5, 1.0  # 10,000 deliveries/s


@dataclass(frozen=True)
class Outcome:
    subscribers: int
    rss_per_subscriber: float  # bytes the server grew by, per subscriber, once all were subscribed
    expected: int
    delivered: int
    completed: int
    latencies: list[float]
    server_cpu: float
    client_cpu: float
    channel_subscribers: int
    server_pubsub_connections: int
    errors: list[str]

    @property
    def lost(self) -> int:
        return self.expected - self.delivered

    @property
    def cpu_ms_per_delivery(self) -> float:
        return self.server_cpu * 1000 / max(self.delivered, 1)

    @property
    def client_cpu_ms_per_delivery(self) -> float:
        return self.client_cpu * 1000 / max(self.delivered, 1)


async def start_clients(
    ws_url: str, mission_id: str, wait_first: bool, subscribers: int
) -> list[asyncio.subprocess.Process]:
    LOGS.mkdir(parents=True, exist_ok=True)
    clients = []
    with (LOGS / "subscribers.log").open("ab") as log:
        for _ in range(PROCESSES):
            argv = python("-m", "bench.subscribers", ws_url, mission_id, str(subscribers // PROCESSES))
            if wait_first:
                argv.append("--wait-first")
            clients.append(
                await asyncio.create_subprocess_exec(*argv, env=base_env(), stdout=asyncio.subprocess.PIPE, stderr=log)
            )
    return clients


async def wait_ready(client: asyncio.subprocess.Process) -> None:
    assert client.stdout is not None
    line = await asyncio.wait_for(client.stdout.readline(), READY_TIMEOUT)
    if line.strip() != b"READY":
        raise RuntimeError(f"a subscriber process did not get ready: {line[:500]!r} (see {LOGS / 'subscribers.log'})")


async def result_of(client: asyncio.subprocess.Process) -> dict[str, Any]:
    assert client.stdout is not None
    out = await asyncio.wait_for(client.stdout.read(), READY_TIMEOUT)
    await client.wait()
    lines = out.decode().strip().splitlines()
    if not lines:
        raise RuntimeError(f"a subscriber process printed no result (see {LOGS / 'subscribers.log'})")
    found: dict[str, Any] = json.loads(lines[-1])
    return found


async def pubsub_connections(redis: Redis, name: str) -> int:
    """Connections named ``name`` subscribed to at least one channel or pattern."""
    clients = await redis.client_list()
    return sum(1 for c in clients if c.get("name") == name and (int(c["sub"]) > 0 or int(c["psub"]) > 0))


async def broadcast(
    redis: Redis,
    service: MissionService,
    server: Server,
    ws_url: str,
    naive: bool,
    on_go: Callable[[], Awaitable[None]] | None = None,
    subscribers: int = SUBSCRIBERS,
    pulses: int = PULSES,
    interval: float = INTERVAL,
) -> Outcome:
    """One mission pulsing to ``subscribers`` subscribers; ``on_go`` runs as the pulses start."""
    summary = await service.deploy_mission("bench_pulse", {"inputs": {"count": pulses, "interval": interval}})
    mission_id = str(summary["mission_id"])
    channel = service.keys.mission_channel(mission_id)
    rss_before = server.child.ps.memory_info().rss
    clients = await start_clients(ws_url, mission_id, wait_first=not naive, subscribers=subscribers)
    try:
        await asyncio.gather(*(wait_ready(c) for c in clients))
        if naive:  # its subscriptions say nothing until an event comes: ask Redis

            async def subscribed() -> bool:
                return int((await redis.pubsub_numsub(channel))[0][1]) >= subscribers

            await until(subscribed, "naive subscriptions", timeout=READY_TIMEOUT, watch=[server.child])
        rss_after = server.child.ps.memory_info().rss
        before = server.child.cpu()
        await redis.set(go_key(mission_id), "1")
        if on_go is not None:
            await on_go()
        await asyncio.sleep(2.0)
        channel_subscribers = int((await redis.pubsub_numsub(channel))[0][1])
        server_connections = await pubsub_connections(redis, "mission-api")
        results = await asyncio.gather(*(result_of(c) for c in clients))
        cpu = server.child.cpu() - before
    finally:
        for client in clients:
            if client.returncode is None:
                client.kill()
                await client.wait()
    return Outcome(
        subscribers=subscribers,
        rss_per_subscriber=(rss_after - rss_before) / subscribers,
        expected=subscribers * pulses,
        delivered=sum(r["progress_received"] for r in results),
        completed=sum(r["completed"] for r in results),
        latencies=[v for r in results for v in r["latencies_ms"]],
        server_cpu=cpu,
        client_cpu=sum(r["cpu_seconds"] for r in results),
        channel_subscribers=channel_subscribers,
        server_pubsub_connections=server_connections,
        errors=[e for r in results for e in r["errors"]],
    )


def record(metrics: Metrics, label: str, outcome: Outcome, ours: bool) -> None:
    metrics.add(f"{label}: lost deliveries", outcome.lost, "events", Target("<=", 0) if ours else None)
    metrics.add(f"{label}: completed subscriptions", outcome.completed, f"of {outcome.subscribers}")
    metrics.add(f"{label}: p50 publish->receive", percentile(outcome.latencies, 50), "ms")
    metrics.add(
        f"{label}: p99 publish->receive", percentile(outcome.latencies, 99), "ms", Target("<=", 150) if ours else None
    )
    metrics.add(f"{label}: server CPU per delivery", outcome.cpu_ms_per_delivery, "ms")
    metrics.add(f"{label}: subscriber clients' CPU per delivery", outcome.client_cpu_ms_per_delivery, "ms")
    metrics.add(f"{label}: Redis subscriptions to the mission channel", outcome.channel_subscribers, "conns")
    if outcome.errors:
        print(f"   {label}: subscriber errors: {outcome.errors[:3]}", file=sys.stderr)


async def run(reps: int) -> list[Metric]:
    metrics = Metrics(NAME)
    with LocalRedis() as redis_server, Procs() as procs:
        redis = Redis.from_url(redis_server.url, decode_responses=True)
        service = MissionService(Settings(redis_url=redis_server.url, templates_path=TEMPLATES))
        try:
            worker = start_worker(procs, redis_server.url, "fanout-worker")
            await wait_workers(redis, worker)
            ours = await mission_server(procs, redis_server.url, "fanout-server")
            unshared = await mission_server(
                procs, redis_server.url, "fanout-server-unshared", share_subscriptions=False
            )
            naive = await naive_server(procs, redis_server.url)
            for _ in range(reps):
                started = time.monotonic()
                mine = await broadcast(redis, service, ours, ours.ws_url, naive=False)
                apart = await broadcast(redis, service, unshared, unshared.ws_url, naive=False)
                theirs = await broadcast(redis, service, naive, naive.ws_url, naive=True)
                record(metrics, "ours", mine, ours=True)
                record(metrics, "ours, sharing off", apart, ours=False)
                record(metrics, "naive", theirs, ours=False)
                metrics.ratio(
                    "ours / naive: server CPU per delivery",
                    mine.cpu_ms_per_delivery,
                    theirs.cpu_ms_per_delivery,
                    Target("<=", 0.25),
                )
                metrics.ratio(
                    "ours, sharing off / naive: server CPU per delivery",
                    apart.cpu_ms_per_delivery,
                    theirs.cpu_ms_per_delivery,
                )
                metrics.add(
                    "ours: Redis pub/sub connections per server process",
                    mine.server_pubsub_connections,
                    "conns",
                    Target("<=", 1),
                )
                print(f"   fan-out repetition: {time.monotonic() - started:.0f} s", flush=True)
            for server in (ours, unshared, naive):
                procs.stop(server.child)
            for _ in range(reps):  # 10,000 subscribers, each time on a fresh server process
                started = time.monotonic()
                fresh = await mission_server(procs, redis_server.url, "fanout-server-10k")
                many = await broadcast(
                    redis,
                    service,
                    fresh,
                    fresh.ws_url,
                    naive=False,
                    subscribers=MANY,
                    pulses=MANY_PULSES,
                    interval=MANY_INTERVAL,
                )
                procs.stop(fresh.child)
                label = f"ours, {MANY:,} subscribers"
                metrics.add(f"{label}: lost deliveries", many.lost, "events", Target("<=", 0))
                metrics.add(f"{label}: completed subscriptions", many.completed, f"of {MANY}")
                metrics.add(f"{label}: p50 publish->receive", percentile(many.latencies, 50), "ms")
                metrics.add(f"{label}: p99 publish->receive", percentile(many.latencies, 99), "ms")
                metrics.add(f"{label}: server CPU per delivery", many.cpu_ms_per_delivery, "ms")
                metrics.add(f"{label}: server memory per subscriber", many.rss_per_subscriber / 1024, "KiB")
                if many.errors:
                    print(f"   {label}: subscriber errors: {many.errors[:3]}", file=sys.stderr)
                print(f"   {MANY:,} subscribers: {time.monotonic() - started:.0f} s", flush=True)
        finally:
            await service.close()
            await redis.aclose()
    return metrics.all()


async def naive_server(procs: Procs, redis_url: str) -> Server:
    port = free_port()
    child: Child = procs.start(
        "naive-subscription",
        python("-m", "bench.baselines.naive_subscription", "--port", str(port)),
        base_env(BENCH_REDIS_URL=redis_url),
    )
    await wait_http(f"http://127.0.0.1:{port}/healthz", child)
    return Server(child, port)
