"""One subscriber process of the fan-out benchmark: N websockets (graphql-transport-ws), each
subscribed to one mission's events until the mission ends.

    python -m bench.subscribers URL MISSION_ID COUNT [--wait-first]

Prints ``READY`` once every subscription is open (with ``--wait-first``: once each has received its
first event, i.e. the server has subscribed it), then one JSON line: how many subscriptions
completed, the progress events received, each one's publish -> receive latency in ms, and this
process's CPU time from ``READY`` on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime
from typing import Any

import websockets

QUERY = "subscription ($id: ID!) { missionEvents(missionId: $id) { seq type status at } }"
CONNECT_AT_ONCE = 50


class Subscriber:
    def __init__(self) -> None:
        self.progress: set[int] = set()
        self.latencies: list[float] = []
        self.completed = False
        self.errors: list[str] = []


async def subscribe(
    url: str, mission_id: str, wait_first: bool, gate: asyncio.Semaphore, ready: asyncio.Queue[bool]
) -> Subscriber:
    sub = Subscriber()
    async with gate:
        ws = await websockets.connect(url, subprotocols=["graphql-transport-ws"], open_timeout=60)  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if ack["type"] != "connection_ack":
            raise RuntimeError(f"no connection_ack: {ack}")
        payload = {"query": QUERY, "variables": {"id": mission_id}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    first = True
    if not wait_first:
        await ready.put(True)
    try:
        async for raw in ws:
            received = time.time() * 1000
            message: dict[str, Any] = json.loads(raw)
            if message["type"] == "complete":
                sub.completed = True
                break
            if message["type"] == "error":
                sub.errors.append(json.dumps(message["payload"])[:300])
                break
            if message["type"] != "next":
                continue
            if "errors" in message["payload"]:
                sub.errors.append(json.dumps(message["payload"]["errors"])[:300])
            event = message["payload"]["data"]["missionEvents"]
            if first and wait_first:
                await ready.put(True)
            first = False
            if event["type"] == "job.progress" and event["seq"] not in sub.progress:
                sub.progress.add(event["seq"])
                sub.latencies.append(received - datetime.fromisoformat(event["at"]).timestamp() * 1000)
    finally:
        await ws.close()
    return sub


async def announce_ready(ready: asyncio.Queue[bool], count: int, cpu: list[float]) -> None:
    for _ in range(count):
        await ready.get()
    cpu.append(time.process_time())
    print("READY", flush=True)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("mission_id")
    p.add_argument("count", type=int)
    p.add_argument("--wait-first", action="store_true")
    p.add_argument("--timeout", type=float, default=180)
    args = p.parse_args()
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    ready: asyncio.Queue[bool] = asyncio.Queue()
    cpu_at_ready: list[float] = []
    announcer = asyncio.create_task(announce_ready(ready, args.count, cpu_at_ready))
    tasks = [
        asyncio.create_task(subscribe(args.url, args.mission_id, args.wait_first, gate, ready))
        for _ in range(args.count)
    ]
    done, pending = await asyncio.wait(tasks, timeout=args.timeout)
    for task in pending:
        task.cancel()
    announcer.cancel()
    subs = [t.result() for t in done if t.exception() is None]
    failures = [repr(t.exception()) for t in done if t.exception() is not None]
    result = {
        "subscribers": args.count,
        "completed": sum(s.completed for s in subs),
        "progress_received": sum(len(s.progress) for s in subs),
        "latencies_ms": [round(v, 2) for s in subs for v in s.latencies],
        "errors": (failures + [e for s in subs for e in s.errors])[:20],
        "timed_out": len(pending),
        "cpu_seconds": time.process_time() - (cpu_at_ready[0] if cpu_at_ready else 0.0),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
