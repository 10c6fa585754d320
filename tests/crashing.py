"""`mission-service` with one background task made to crash at every start, for the tests that a
process stops (non-zero exit) when a supervised task keeps failing.

    python -m tests.crashing <task> <mission-service arguments…>
"""

from __future__ import annotations

import sys

from mission.events import PubSubHub
from server import cli
from workers.runtime import WorkerRuntime


async def _crash(self: object) -> None:
    raise RuntimeError("injected crash")


# task name -> (class, method) of its body
BODIES: dict[str, tuple[type, str]] = {
    "heartbeat": (WorkerRuntime, "_renew_leases"),
    PubSubHub.READER: (PubSubHub, "_read_forever"),
}

if __name__ == "__main__":
    task, *argv = sys.argv[1:]
    owner, body = BODIES[task]
    setattr(owner, body, _crash)
    sys.exit(cli.main(argv))
