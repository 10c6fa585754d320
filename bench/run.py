"""`make bench`: run the benchmarks, print one table, write bench/results/<name>.json.

    python -m bench.run                   # everything
    python -m bench.run --only fanout     # one benchmark (repeat --only for more)
    python -m bench.run --reps 1          # quicker, noisier

The whole run stays within ``--budget`` seconds (default 900): on a slow machine the benchmarks
still to run get fewer repetitions (said in the output and in the JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from bench import fanout, growth, http_deploy, latency, network, reads, scaling, throughput, ui
from bench.procs import RESULTS
from bench.report import payload, table, write
from bench.stats import Metric

Benchmark = Callable[[int], Awaitable[list[Metric]]]

BENCHMARKS: dict[str, Benchmark] = {
    throughput.NAME: throughput.run,
    latency.NAME: latency.run,
    http_deploy.NAME: http_deploy.run,
    fanout.NAME: fanout.run,
    growth.NAME: growth.run,
    reads.NAME: reads.run,
    scaling.NAME: scaling.run,
    ui.NAME: ui.run,
    network.NAME: network.run,
}

# Rough seconds each benchmark takes here: (fixed, per repetition). Only used to keep within the budget.
COST: dict[str, tuple[float, float]] = {
    throughput.NAME: (0, 28),
    latency.NAME: (0, 21),
    http_deploy.NAME: (8, 12),
    fanout.NAME: (5, 75),
    growth.NAME: (60, 8),
    reads.NAME: (10, 6),
    scaling.NAME: (2, 30),
    ui.NAME: (8, 25),
    network.NAME: (5, 25),
}


def cost(planned: dict[str, int]) -> float:
    """Expected seconds for these benchmarks at these repetitions."""
    return sum(COST[name][0] + COST[name][1] * reps for name, reps in planned.items())


def plan_reps(remaining: Sequence[str], reps: int, elapsed: float, pace: float, budget: float) -> int:
    """The most repetitions (at most ``reps``) that let every remaining benchmark end within the budget."""
    chosen = reps
    while chosen > 1 and elapsed + pace * cost(dict.fromkeys(remaining, chosen)) > budget:
        chosen -= 1
    return chosen


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    p.add_argument("--only", action="append", choices=list(BENCHMARKS), help="run just this benchmark")
    p.add_argument("--reps", type=int, default=3, help="repetitions of each measurement (default 3)")
    p.add_argument("--budget", type=float, default=900, help="seconds the whole run may take (default 900)")
    return p.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    names = args.only or list(BENCHMARKS)
    started = time.monotonic()
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    everything: list[Metric] = []
    failed: list[str] = []
    used: dict[str, int] = {}
    for index, name in enumerate(names):
        elapsed = time.monotonic() - started
        pace = max(elapsed / cost(used), 1.0) if used else 1.0  # how much slower than usual this machine is now
        reps = used[name] = plan_reps(names[index:], args.reps, elapsed, pace, args.budget)
        note = f" (reps={reps} to end within {args.budget:.0f} s)" if reps < args.reps else ""
        print(f"== {name} ...{note}", flush=True)
        began = time.monotonic()
        try:
            metrics = await BENCHMARKS[name](reps)
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        seconds = time.monotonic() - began
        print(f"   {name}: {seconds:.0f} s", flush=True)
        write(
            RESULTS / f"{name}.json",
            payload(metrics, benchmark=name, started=stamp, seconds=round(seconds, 1), reps=reps),
        )
        everything.extend(metrics)
    total = time.monotonic() - started
    print()
    print(table(everything))
    verdicts = [m.verdict for m in everything if m.verdict]
    print()
    reps_used = ", ".join(f"{name} {reps}" for name, reps in used.items())
    print(
        f"{verdicts.count('PASS')} PASS, {verdicts.count('MISS')} MISS of {len(verdicts)} targets "
        f"(judged on the median); {total:.0f} s; repetitions: {reps_used}; JSON in bench/results/"
    )
    if failed:
        print(f"benchmarks that failed to run: {', '.join(failed)}")
    if len(names) > 1:
        write(RESULTS / "all.json", payload(everything, started=stamp, seconds=round(total, 1), reps=used))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
