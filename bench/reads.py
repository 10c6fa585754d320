"""6. Reads: `mission(id)` of a finished 50-job mission (every job with its output) against a
`{ __typename }` query on the same server, interleaved; p50 of each and server CPU per request."""

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
TYPENAME = "{ __typename }"


async def run(reps: int) -> list[Metric]:
    metrics = Metrics(NAME)
    with LocalRedis() as redis_server, Procs() as procs:
        redis = Redis.from_url(redis_server.url)
        engine = Ours(redis_server.url, redis, procs)
        client: Client | None = None
        try:
            await engine.start()
            server = await mission_server(procs, redis_server.url, "reads-server")
            summary = await engine.service.deploy_mission("bench_fifty")
            mission_id = str(summary["mission_id"])

            async def finished() -> bool:
                return await engine.finished() >= 1

            await until(finished, "the 50-job mission to finish", watch=[engine.worker])
            await engine.stop()  # nothing else runs while reading
            client = Client(server.url)
            data = await client.query(MISSION, id=mission_id)
            if len(data["mission"]["jobs"]) != 50:
                raise RuntimeError(f"expected 50 jobs, got {len(data['mission']['jobs'])}")
            for _ in range(20):  # warm-up
                await client.timed(MISSION, id=mission_id)
                await client.timed(TYPENAME)
            for _ in range(reps):
                reads: list[float] = []
                typenames: list[float] = []
                cpu = {"mission": 0.0, "typename": 0.0}
                for _ in range(SAMPLES // BLOCK):  # alternate blocks, so both see the same noise
                    before = server.child.cpu()
                    reads += [await client.timed(MISSION, id=mission_id) for _ in range(BLOCK)]
                    middle = server.child.cpu()
                    typenames += [await client.timed(TYPENAME) for _ in range(BLOCK)]
                    cpu["mission"] += middle - before
                    cpu["typename"] += server.child.cpu() - middle
                mission_p50, typename_p50 = percentile(reads, 50), percentile(typenames, 50)
                metrics.add("mission(id), 50 jobs: p50", mission_p50, "ms")
                metrics.add("{ __typename }: p50", typename_p50, "ms")
                metrics.ratio("mission(id) / __typename p50", mission_p50, typename_p50, Target("<=", 2.0))
                metrics.add("mission(id), 50 jobs: server CPU per request", cpu["mission"] * 1000 / len(reads), "ms")
                metrics.add("{ __typename }: server CPU per request", cpu["typename"] * 1000 / len(typenames), "ms")
        finally:
            if client is not None:
                await client.close()
            await engine.stop()
            await redis.aclose()
    return metrics.all()
