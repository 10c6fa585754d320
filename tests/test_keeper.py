"""`up` keeps its worker running (server/keeper.py): real child processes, killed or exiting."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable

import psutil

from server.keeper import Keeper

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
EXITS_AT_ONCE = [sys.executable, "-c", "raise SystemExit(3)"]


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not come true in time")
        time.sleep(0.01)


def test_a_child_that_dies_is_started_again_and_stop_ends_it() -> None:
    gave_up = threading.Event()
    keeper = Keeper("sleeper", SLEEPER, dict(os.environ), gave_up.set, first_delay=0.01)
    try:
        first = keeper.pid
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: keeper.pid != first)
        assert keeper.restarts == 1 and psutil.pid_exists(keeper.pid)
        assert psutil.Process(keeper.pid).status() != psutil.STATUS_ZOMBIE
    finally:
        second = keeper.pid
        keeper.stop(timeout=5)
    assert not gave_up.is_set()
    # stopped: the child is gone and nothing starts it again
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == psutil.STATUS_ZOMBIE
    assert keeper.pid == second


def test_a_child_that_keeps_exiting_makes_the_keeper_give_up() -> None:
    gave_up = threading.Event()
    keeper = Keeper("quitter", EXITS_AT_ONCE, dict(os.environ), gave_up.set, most_exits=2, first_delay=0.01)
    try:
        assert gave_up.wait(15), "the keeper never gave up"
        assert keeper.gave_up and keeper.restarts == 2  # started three times, exited three times
    finally:
        keeper.stop(timeout=5)
