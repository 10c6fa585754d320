"""Where the time goes: py-spy samples a server or worker under one benchmark's load.

    python -m bench.profile deploy     # the API server under 50 wrk clients deploying
    python -m bench.profile read       # the API server answering mission(id) of a 50-job mission
    python -m bench.profile fanout     # the API server relaying to 1,000 subscribers
    python -m bench.profile worker     # the worker running five-job missions back to back
    python -m bench.profile network    # the worker running 300 agents that each await a 1 s answer

Needs py-spy (``pip install py-spy`` into .venv). Prints the top frames by own time and by time
including callees, and writes the collapsed stacks to bench/results/profile-<scenario>.txt (open
them in speedscope or flamegraph.pl).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from collections import Counter
from pathlib import Path

from redis.asyncio import Redis

from bench import fanout, http_deploy, network, reads
from bench.engines import Ours
from bench.procs import REPO, RESULTS, TEMPLATES, Child, Procs, mission_server, until
from config.settings import Settings
from mission.service import MissionService
from server.redis_local import LocalRedis

SCENARIOS = ("deploy", "read", "fanout", "worker", "network")


async def record(child: Child, seconds: float, out: Path) -> asyncio.subprocess.Process:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    argv = [spy, "record", "--pid", str(child.pid), "--duration", str(int(seconds)), "--rate", "250"]
    argv += ["--nonblocking", "--format", "raw", "--output", str(out)]
    return await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL)


PROJECT = ("bench/", "config/", "mission/", "resolvers/", "schema/", "server/", "services/", "workers/")


def short(frame: str) -> str:
    """``fn (path:line)`` with the path cut to the repo or the installed package."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")")
    if path.startswith(f"{REPO}/"):
        path = path[len(f"{REPO}/") :]
    elif "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/lib/python3" in path:
        path = "stdlib/" + path.split("/lib/python3", 1)[1].split("/", 1)[1]
    return f"{name} ({path})"


def function(frame: str) -> str:
    """A frame without its line number: every line of a function counts for the function."""
    return frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") and ":" in frame else frame


def summarize(stacks: Path, top: int) -> str:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [function(short(f)) for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
            if frame.partition(" (")[2].startswith(PROJECT):
                ours[frame] += count
    lines = [f"{total} samples"]
    sections = (("own time", own), ("including callees", inclusive), ("project code, including callees", ours))
    for title, counter in sections:
        lines.append(f"\ntop {top} by {title}:")
        lines += [f"  {100 * n / max(total, 1):5.1f}%  {frame}" for frame, n in counter.most_common(top)]
    return "\n".join(lines)


async def profile_deploy(procs: Procs, redis_server: LocalRedis, out: Path, seconds: float) -> None:
    server = await mission_server(procs, redis_server.url, "profile-server")
    await http_deploy.wrk(server.url, http_deploy.OURS, "MissionDeployed", 2)
    spy = await record(server.child, seconds, out)
    await http_deploy.wrk(server.url, http_deploy.OURS, "MissionDeployed", int(seconds) + 1)
    await spy.wait()


async def profile_read(procs: Procs, redis_server: LocalRedis, out: Path, seconds: float) -> None:
    redis = Redis.from_url(redis_server.url)
    engine = Ours(redis_server.url, redis, procs)
    try:
        await engine.start()
        server = await mission_server(procs, redis_server.url, "profile-server")
        mission_id = str((await engine.service.deploy_mission("bench_fifty"))["mission_id"])

        async def finished() -> bool:
            return await engine.finished() >= 1

        await until(finished, "the 50-job mission to finish", watch=[engine.worker])
        await engine.stop()
        spy = await record(server.child, seconds, out)
        await http_deploy.wrk(server.url, reads.MISSION, '"jobs"', int(seconds) + 1, id=mission_id)
        await spy.wait()
    finally:
        await engine.stop()
        await redis.aclose()


async def profile_fanout(procs: Procs, redis_server: LocalRedis, out: Path, seconds: float) -> None:
    redis = Redis.from_url(redis_server.url, decode_responses=True)
    service = MissionService(Settings(redis_url=redis_server.url, templates_path=TEMPLATES))
    try:
        engine = Ours(redis_server.url, redis, procs)
        await engine.start()
        server = await mission_server(procs, redis_server.url, "profile-server")
        spies: list[asyncio.subprocess.Process] = []

        async def on_go() -> None:
            spies.append(await record(server.child, min(seconds, fanout.PULSES * fanout.INTERVAL), out))

        await fanout.broadcast(redis, service, server, server.ws_url, naive=False, on_go=on_go)
        await asyncio.gather(*(s.wait() for s in spies))
        await engine.stop()
    finally:
        await service.close()
        await redis.aclose()


async def profile_worker(procs: Procs, redis_server: LocalRedis, out: Path, seconds: float) -> None:
    redis = Redis.from_url(redis_server.url)
    engine = Ours(redis_server.url, redis, procs)
    try:
        await engine.start()
        spy = await record(engine.worker, seconds, out)
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            for _ in range(50):
                await engine.deploy("fanout")
            await asyncio.sleep(0.3)
        await spy.wait()
    finally:
        await engine.stop()
        await redis.aclose()


async def profile_network(procs: Procs, redis_server: LocalRedis, out: Path, seconds: float) -> None:
    redis = Redis.from_url(redis_server.url)
    try:
        _, base = await network.slow_server(procs)
        spies: list[asyncio.subprocess.Process] = []

        async def on_worker(worker: Child) -> None:
            spies.append(await record(worker, seconds, out))

        await network.ours(redis_server.url, redis, procs, base, on_worker=on_worker)
        await asyncio.gather(*(s.wait() for s in spies))
    finally:
        await redis.aclose()


async def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    p.add_argument("scenario", choices=SCENARIOS)
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args()
    out = RESULTS / f"profile-{args.scenario}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    run = {
        "deploy": profile_deploy,
        "read": profile_read,
        "fanout": profile_fanout,
        "worker": profile_worker,
        "network": profile_network,
    }[args.scenario]
    with LocalRedis() as redis_server, Procs() as procs:
        await run(procs, redis_server, out, args.seconds)
    print(summarize(out, args.top))
    print(f"\ncollapsed stacks: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
