"""Supervised background tasks: a crash injected into each (the worker's heartbeat, reaper, wake-up
and control listeners; the API's pub/sub reader) is logged with its traceback, the task starts again
and does its work, /readyz answers 503 naming it while it is down, and a task that keeps crashing
stops a real `mission-service worker` or `serve` with a non-zero exit."""

from __future__ import annotations

import asyncio
import inspect
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.settings import Settings
from mission.events import PubSubHub
from mission.models import MissionStatus
from mission.service import MissionService
from mission.supervisor import Supervisor
from server.redis_local import free_port, stop_process
from tests import agents
from tests.conftest import REPO, StartWorker, eventually, run_to_end, serve_api
from tests.processes import service_env
from tests.test_tracker_resync import Tracker
from workers.runtime import WorkerRuntime
from workers.settings import MissionWorker

pytestmark = pytest.mark.timeout(90)

INJECTED = "injected failure"


class Faulty:
    """Wraps a function (plain or async): its first ``times`` calls raise, the later ones call
    through; ``calls`` records the arguments of those."""

    def __init__(self, original: Callable[..., Any], times: int) -> None:
        self.original = original
        self.left = times
        self.calls: list[tuple[Any, ...]] = []
        self.called = asyncio.Event()
        self.is_async = inspect.iscoroutinefunction(original)

    def _through(self, args: tuple[Any, ...]) -> None:
        if self.left > 0:
            self.left -= 1
            raise RuntimeError(INJECTED)
        self.calls.append(args)
        self.called.set()

    def __call__(self, *args: Any) -> Any:
        if self.is_async:
            return self._async(*args)
        self._through(args)
        return self.original(*args)

    async def _async(self, *args: Any) -> Any:
        self._through(args)
        return await self.original(*args)


def crash_records(caplog: pytest.LogCaptureFixture, task: str) -> list[logging.LogRecord]:
    """The supervisor's log records of ``task``'s injected crashes, each with its traceback."""
    return [
        r
        for r in caplog.records
        if r.name == "mission.supervisor"
        and r.args
        and r.args[0] == task
        and r.exc_info is not None
        and INJECTED in str(r.exc_info[1])
    ]


def runtime_of(worker: MissionWorker) -> WorkerRuntime:
    runtime: WorkerRuntime = worker.ctx["runtime"]
    return runtime


# --- the supervisor itself ---


async def test_a_task_that_crashes_a_few_times_is_restarted_with_growing_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fatal: list[str] = []
    supervisor = Supervisor(fatal.append, max_crashes=3, window=60, backoff=0.01, max_backoff=0.02)
    starts = 0
    running = asyncio.Event()

    async def body() -> None:
        nonlocal starts
        starts += 1
        if starts <= 2:
            raise RuntimeError(INJECTED)
        running.set()
        await asyncio.Event().wait()

    supervisor.spawn("flaky", body)
    await asyncio.wait_for(running.wait(), 10)
    assert starts == 3 and supervisor.down == [] and fatal == [] and supervisor.failed is None
    assert len(crash_records(caplog, "flaky")) == 2
    await supervisor.close()
    # the delay doubles from `backoff` up to `max_backoff`
    delays = Supervisor(max_crashes=10, backoff=0.1, max_backoff=0.3)
    assert [delays.crashed("t", RuntimeError()) for _ in range(4)] == [0.1, 0.2, 0.3, 0.3]


async def test_a_task_that_keeps_crashing_stays_down_and_is_fatal(caplog: pytest.LogCaptureFixture) -> None:
    gave_up = asyncio.get_running_loop().create_future()
    supervisor = Supervisor(gave_up.set_result, max_crashes=4, window=60, backoff=0.01, max_backoff=0.01)

    async def body() -> None:
        raise RuntimeError(INJECTED)

    supervisor.spawn("broken", body)
    assert await asyncio.wait_for(gave_up, 10) == "broken"
    assert supervisor.down == ["broken"] and supervisor.failed == "broken"
    records = crash_records(caplog, "broken")
    assert [r.levelno for r in records] == [logging.ERROR] * 3 + [logging.CRITICAL]
    await supervisor.close()


# --- the API's pub/sub reader ---


async def test_the_api_pubsub_reader_restarts_after_crashes_and_readyz_names_it_while_down(
    settings: Settings,
    service: MissionService,
    start_worker: StartWorker,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await start_worker()
    async with serve_api(settings) as api, httpx.AsyncClient(timeout=5) as http:
        resources = api.server.config.app.state.resources
        hub: PubSubHub = resources.hub
        supervisor: Supervisor = resources.supervisor
        supervisor.backoff, supervisor.max_crashes = 0.2, 10_000  # crash as often as the test needs
        readyz = api.url.removesuffix("/graphql") + "/readyz"
        tracker = await Tracker.connect(api.ws_url)
        try:
            (probe, _) = await service.deploy("two_stage")
            await tracker.until(lambda last: last.get(probe.id) == "SUCCEEDED")

            # Every message makes the reader crash (it gets one at each restart: its subscriptions'
            # confirmations), until the test has seen /readyz report it down.
            breaking = Faulty(hub._dispatch, times=1_000_000)
            monkeypatch.setattr(hub, "_dispatch", breaking)
            (during, _) = await service.deploy("two_stage")

            async def down() -> bool:
                answer = await http.get(readyz)
                return answer.status_code == 503 and answer.json()["down"] == [PubSubHub.READER]

            await eventually(down)
            breaking.left = 0
            await eventually(lambda: supervisor.down == [])

            async def ready() -> bool:
                return (await http.get(readyz)).status_code == 200

            await eventually(ready)
            (after, _) = await service.deploy("two_stage")
            # the mission that ended while the reader was down (sent again on the resync), and live
            # events again
            await tracker.until(lambda last: last.get(during.id) == last.get(after.id) == "SUCCEEDED")
            assert breaking.calls  # messages dispatched again
        finally:
            await tracker.close()
    assert crash_records(caplog, PubSubHub.READER)


# --- the worker's tasks ---


async def test_the_heartbeat_restarts_after_crashes_and_keeps_the_lease(
    service: MissionService,
    hub: PubSubHub,
    start_worker: StartWorker,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = runtime_of(await start_worker())
    renew = Faulty(runtime.store.heartbeat, times=2)
    monkeypatch.setattr(runtime.store, "heartbeat", renew)
    (record, _) = await service.deploy("slow_chain", {"inputs": {"seconds": 3}})  # 2 leases long
    events = await run_to_end(service, hub, record.id, timeout=30)
    assert events[-1].status == MissionStatus.SUCCEEDED.value
    final = await service.store.read_one(record.id)
    assert final is not None
    middle = next(job for job in final.jobs if job.role == "middle")
    assert middle.attempts == 1  # its lease never lapsed: not run again
    assert renew.calls  # leases renewed after the crashes
    assert len(crash_records(caplog, "heartbeat")) == 2
    assert runtime.supervisor.down == []


async def test_the_control_listener_restarts_after_a_crash_and_stops_agents_again(
    service: MissionService,
    start_worker: StartWorker,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = runtime_of(await start_worker())
    control = Faulty(runtime._control, times=1)
    monkeypatch.setattr(runtime, "_control", control)
    first, second = [(await service.deploy("hang"))[0].id for _ in range(2)]
    for mission_id in (first, second):
        await asyncio.wait_for(agents.started(f"{mission_id}:hanger").wait(), 10)

    await service.cancel_mission(first)  # its stop message crashes the listener
    await eventually(lambda: crash_records(caplog, "control-listener"))
    await eventually(lambda: runtime.listening["control"].is_set())  # started and subscribed again
    await service.cancel_mission(second)
    await eventually(lambda: any(second in str(args[0]) for args in control.calls))  # handled again
    await asyncio.wait_for(agents.cancelled(f"{second}:hanger").wait(), 10)
    assert runtime.supervisor.down == []


async def test_the_wake_listener_restarts_after_a_crash_and_wakes_the_worker_again(
    service: MissionService,
    hub: PubSubHub,
    start_worker: StartWorker,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = runtime_of(await start_worker())
    woken = Faulty(runtime._woken, times=1)
    monkeypatch.setattr(runtime, "_woken", woken)
    (first, _) = await service.deploy("two_stage")  # its wake-up crashes the listener
    await eventually(lambda: crash_records(caplog, "wake-listener"))
    await eventually(lambda: runtime.listening["wake"].is_set())  # started and subscribed again
    (second, _) = await service.deploy("two_stage")
    await asyncio.wait_for(woken.called.wait(), 10)  # a wake-up handled again
    for mission_id in (first.id, second.id):
        assert (await run_to_end(service, hub, mission_id))[-1].status == MissionStatus.SUCCEEDED.value
    assert runtime.supervisor.down == []


async def test_the_reaper_keeps_running_after_crashes_and_reruns_a_lapsed_attempt(
    service: MissionService,
    start_worker: StartWorker,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An attempt taken by a worker that died at once: its lease lapses and nobody renews it.
    (record, _) = await service.deploy("hang")
    assert not isinstance(await service.store.start_job(record.id, "hanger", 1, 100, "gone"), str)
    worker = await start_worker()
    runtime = runtime_of(worker)
    lapsed = Faulty(runtime.store.lapsed_leases, times=2)
    monkeypatch.setattr(runtime.store, "lapsed_leases", lapsed)
    # the reaper (ARQ's cron, every second here) crashes twice, then runs the attempt again here
    await asyncio.wait_for(agents.started(f"{record.id}:hanger").wait(), 30)
    final = await service.store.read_one(record.id)
    assert final is not None and next(j for j in final.jobs if j.role == "hanger").attempt == 2
    assert len(crash_records(caplog, "reaper")) == 2
    assert runtime.supervisor.down == []
    await service.cancel_mission(record.id)


# --- a task that keeps crashing stops the process ---


def crashing(task: str, argv: list[str], settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """`mission-service <argv>` as a child whose ``task`` crashes at every start (tests/crashing.py)."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.crashing", task, "--log-level", "INFO", *argv],
            env=service_env(settings.redis_url),
            cwd=REPO,
            stdout=log,
            stderr=log,
        )


async def exit_code(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    try:
        return await asyncio.wait_for(asyncio.to_thread(process.wait), timeout)
    finally:
        stop_process(process, timeout=5)


@pytest.mark.parametrize(
    ("argv", "task"),
    [(["worker"], "heartbeat"), (["worker"], PubSubHub.READER), (["serve", "--port", "0"], PubSubHub.READER)],
    ids=["worker-heartbeat", "worker-pubsub-reader", "serve-pubsub-reader"],
)
async def test_a_task_that_keeps_crashing_stops_the_process_with_a_non_zero_exit(
    settings: Settings, tmp_path: Path, argv: list[str], task: str
) -> None:
    if argv[0] == "serve":
        argv = ["serve", "--port", str(free_port())]
    log_path = tmp_path / "child.log"
    assert await exit_code(crashing(task, argv, settings, log_path)) == 1
    log = log_path.read_text()
    assert f"task {task} crashed" in log and "giving up" in log
    assert "RuntimeError: injected crash" in log  # with its traceback
    assert f"its {task} task keeps crashing" in log
