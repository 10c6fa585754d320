"""6. Reads: `mission(id)` of a finished 50-job mission against a `{ __typename }` query on the
same server, interleaved; p50 of each and server CPU per request. Two selections: every field of
every job with its output (about 950 fields to resolve), and a live tracker's view (status and
progress of each job, about 200 fields). The mission does not change, so the server answers from
its read cache; a second server with the cache off (`MISSION_READ_CACHE_ENTRIES=0`) shows what a
read of a mission that just changed costs."""

from __future__ import annotations

from redis.asyncio import Redis

from bench.client import Client
from bench.engines import Ours
from bench.procs import Procs, mission_server, until
from bench.stats import Metric, Metrics, Target, percentile
from server.redis_local import LocalRedis

NAME = "reads"
SAMPLES = 100
BLOCK = 20

MISSION = """query ($id: ID!) { mission(id: $id) {
  id templateId status createdAt finishedAt budget { allocated spent remaining }
  jobs { id role department status attempts progress dependsOn startedAt finishedAt error output
         budget { allocated spent remaining } }
} }"""
TRACKER = "query ($id: ID!) { mission(id: $id) { id status jobs { id role status progress } } }"
TYPENAME = "{ __typename }"


async def run(reps: int) -> list[Metric]:
    metrics = Metrics(NAME)
    with LocalRedis() as redis_server, Procs() as procs:
        redis = Redis.from_url(redis_server.url)
        engine = Ours(redis_server.url, redis, procs)
        client: Client | None = None
        uncached: Client | None = None
        try:
            await engine.start()
            server = await mission_server(procs, redis_server.url, "reads-server")
            # the same server without its read cache: what every read of a changing mission costs
            bare = await mission_server(procs, redis_server.url, "reads-server-uncached", read_cache_entries=0)
            summary = await engine.service.deploy_mission("bench_fifty")
            mission_id = str(summary["mission_id"])

            async def finished() -> bool:
                return await engine.finished() >= 1

            await until(finished, "the 50-job mission to finish", watch=[engine.worker])
            await engine.stop()  # nothing else runs while reading
            client = Client(server.url)
            uncached = Client(bare.url)
            data = await client.query(MISSION, id=mission_id)
            if len(data["mission"]["jobs"]) != 50:
                raise RuntimeError(f"expected 50 jobs, got {len(data['mission']['jobs'])}")
            for _ in range(20):  # warm-up
                await client.timed(MISSION, id=mission_id)
                await client.timed(TYPENAME)
                await uncached.timed(MISSION, id=mission_id)
                await uncached.timed(TYPENAME)
            queries = {
                "mission(id), 50 jobs, every field": (client, server, MISSION, {"id": mission_id}),
                "mission(id), 50 jobs, tracker view": (client, server, TRACKER, {"id": mission_id}),
                "{ __typename }": (client, server, TYPENAME, {}),
                "uncached: mission(id), 50 jobs, every field": (uncached, bare, MISSION, {"id": mission_id}),
                "uncached: mission(id), 50 jobs, tracker view": (uncached, bare, TRACKER, {"id": mission_id}),
                "uncached: { __typename }": (uncached, bare, TYPENAME, {}),
            }
            for _ in range(reps):
                times: dict[str, list[float]] = {name: [] for name in queries}
                cpu = dict.fromkeys(queries, 0.0)
                for _ in range(SAMPLES // BLOCK):  # alternate blocks, so all see the same noise
                    for name, (who, where, query, variables) in queries.items():
                        before = where.child.cpu()
                        times[name] += [await who.timed(query, **variables) for _ in range(BLOCK)]
                        cpu[name] += where.child.cpu() - before
                p50 = {name: percentile(samples, 50) for name, samples in times.items()}
                for name in queries:
                    metrics.add(f"{name}: p50", p50[name], "ms")
                for name, goal in zip(list(queries)[:2], (2.0, 1.5), strict=True):
                    metrics.ratio(f"{name} / __typename p50", p50[name], p50["{ __typename }"], Target("<=", goal))
                for name in list(queries)[3:5]:
                    metrics.ratio(f"{name} / __typename p50", p50[name], p50["uncached: { __typename }"])
                for name in queries:
                    metrics.add(f"{name}: server CPU per request", cpu[name] * 1000 / len(times[name]), "ms")
        finally:
            for opened in (client, uncached):
                if opened is not None:
                    await opened.close()
            await engine.stop()
            await redis.aclose()
    return metrics.all()
