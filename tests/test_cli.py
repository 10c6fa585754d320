"""`mission-service` as a user runs it: real processes against a real API, worker and Redis."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from config.settings import ApiKeyGrant, Settings
from mission.models import MissionStatus
from mission.service import MissionService
from server.redis_local import free_port
from tests.conftest import REPO, TEST_TEMPLATES, RunningApi, StartWorker, serve_api

pytestmark = pytest.mark.timeout(60)

CLI = [sys.executable, "-m", "server.cli"]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "MISSION_TEMPLATES_PATH": str(TEST_TEMPLATES)}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """For commands that need no server in this process."""
    return subprocess.run([*CLI, *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=30)


async def cli_async(*args: str, timeout: float = 40, **env: str) -> tuple[int, str, str]:
    """For commands talking to the `api` fixture, whose server runs in this event loop."""
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(*CLI, *args, cwd=REPO, env={**ENV, **env}, stdout=pipe, stderr=pipe)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def mission_id_of(stdout: str) -> str:
    match = re.search(r"^mission (\S+) (deployed|already deployed)", stdout, re.MULTILINE)
    assert match, stdout
    return match.group(1)


# --- templates ---


def two_stage() -> dict[str, Any]:
    templates: list[dict[str, Any]] = json.loads(TEST_TEMPLATES.read_text())["templates"]
    return next(t for t in templates if t["id"] == "two_stage")


def with_cycle(t: dict[str, Any]) -> None:
    t["dependencies"] = {"Down": ["Up"], "Up": ["Down"]}


def with_duplicate_role(t: dict[str, Any]) -> None:
    t["squad"][1]["role"] = "left"


def with_wrong_hash(t: dict[str, Any]) -> None:
    t["outcome_logic_hash"] = "sha256:" + "0" * 64


@pytest.mark.parametrize(
    ("spoil", "field", "reason"),
    [
        (with_cycle, "dependencies", "cycle"),
        (with_duplicate_role, "squad[1].role", "duplicate role"),
        (with_wrong_hash, "outcome_logic_hash", "declared sha256:000"),
    ],
)
def test_templates_validate_names_template_field_and_reason(
    tmp_path: Path, spoil: Any, field: str, reason: str
) -> None:
    template = two_stage()
    spoil(template)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"templates": [template]}))
    result = cli("templates", "validate", str(path))
    assert result.returncode == 1, result
    assert f"template two_stage: {field}: " in result.stderr
    assert reason in result.stderr


def test_templates_validate_shows_every_problem_and_exits_1(tmp_path: Path) -> None:
    template = two_stage()
    with_cycle(template)
    del template["limits"]  # optional: not a problem
    template["defaults"]["ttl"] = "soon"
    other = {**two_stage(), "id": "second"}
    with_duplicate_role(other)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"templates": [template, other]}))
    result = cli("templates", "validate", str(path))
    assert result.returncode == 1, result
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert [line.split(": ")[:2] for line in problems] == [
        ["  - template two_stage", "defaults.ttl"],
        ["  - template two_stage", "dependencies"],
        ["  - template second", "squad[1].role"],
    ], result.stderr
    assert "dependency cycle" in problems[1] and "duplicate role" in problems[2]


def test_templates_validate_accepts_a_good_file() -> None:
    result = cli("templates", "validate", str(TEST_TEMPLATES))
    assert result.returncode == 0, result
    assert "all valid" in result.stdout


def test_templates_list_prints_every_id() -> None:
    result = cli("templates", "list")
    assert result.returncode == 0, result
    listed = {line.split()[0] for line in result.stdout.splitlines()}
    assert listed == {t["id"] for t in json.loads(TEST_TEMPLATES.read_text())["templates"]}


# --- deploy ---


async def test_deploy_watch_follows_the_mission_to_success(
    api: RunningApi, start_worker: StartWorker, service: MissionService
) -> None:
    await start_worker()
    args = ["two_stage", "--budget", "20", "--input", "greeting=hi", "--watch", "--url", api.url]
    code, out, err = await cli_async("deploy", *args)
    assert code == 0, (out, err)
    mission_id = mission_id_of(out)
    assert re.search(rf"^mission {mission_id} SUCCEEDED in \d+\.\d\ds$", out, re.MULTILINE), out
    assert "budget: 0.00 spent of 20.00" in out
    assert re.search(r"join\s+succeeded\s+SUCCEEDED\s+\[3/3 done\]", out), out
    record = await service.get_mission(mission_id)
    assert record is not None
    assert record.status is MissionStatus.SUCCEEDED
    assert record.budget.allocated == Decimal("20.00")
    assert record.config["inputs"] == {"greeting": "hi"}


async def test_deploy_without_watch_prints_the_plan_and_parses_inputs(api: RunningApi, service: MissionService) -> None:
    inputs = ["seconds=2", "region=EU", "region=US", "tags=[1, 2]"]
    code, out, err = await cli_async("deploy", "two_stage", *(f"--input={i}" for i in inputs), "--url", api.url)
    assert code == 0, (out, err)
    for role, department, status in [("left", "Up", "QUEUED"), ("right", "Up", "QUEUED"), ("join", "Down", "WAITING")]:
        assert re.search(rf"^\s+{role}\s+{department}\s+{status}$", out, re.MULTILINE), out
    record = await service.get_mission(mission_id_of(out))
    assert record is not None
    assert record.config["inputs"] == {"greeting": "hello", "seconds": 2, "region": "US", "tags": [1, 2]}


async def test_deploy_watch_reports_a_failure_and_exits_1(api: RunningApi, start_worker: StartWorker) -> None:
    await start_worker()
    code, out, err = await cli_async("deploy", "fail_upstream", "--watch", "--url", api.url)
    assert code == 1, (out, err)
    assert re.search(r"^mission \S+ FAILED in ", out, re.MULTILINE), out
    assert re.search(r"^  reason: .*this agent always fails", out, re.MULTILINE), out
    assert re.search(r"third\s+skipped\s+SKIPPED", out), out


async def test_refused_deploys_exit_2_with_the_reason(api: RunningApi) -> None:
    code, out, err = await cli_async("deploy", "nope", "--url", api.url)
    assert (code, out) == (2, ""), (out, err)
    assert "no template" in err
    code, out, err = await cli_async("deploy", "two_stage", "--budget", "$20,000", "--url", api.url)
    assert (code, out) == (2, ""), (out, err)
    assert re.search(r"^  budget: 20000 is outside this template's range 1\.\.10000$", err, re.MULTILINE), err


def test_a_malformed_option_is_a_usage_error() -> None:
    cases = [
        (["--budget", "abc"], "'abc' is not an amount of money"),
        (["--budget", "-1"], "'-1' is not an amount of money"),
        (["--budget", "1.005"], "more than two decimal places"),
        (["--ttl", "5 fortnights"], "'5 fortnights' is not a duration"),
        (["--input", "no-equals-sign"], "expected K=V"),
    ]
    for args, reason in cases:
        result = cli("deploy", "two_stage", *args)
        assert result.returncode == 2, result
        assert "Traceback" not in result.stderr
        assert "usage: mission-service deploy" in result.stderr
        assert reason in result.stderr, result.stderr


async def test_deploy_takes_durations_and_money_as_the_api_does(api: RunningApi, service: MissionService) -> None:
    for budget, ttl, allocated, seconds in [
        ("$5,000", "5 minutes", "5000.00", 300),
        ("1250.50", "1 hour", "1250.50", 3600),
        ("9.5", "15m", "9.50", 900),
        ("20", "45", "20.00", 45),
    ]:
        code, out, err = await cli_async("deploy", "two_stage", "--budget", budget, "--ttl", ttl, "--url", api.url)
        assert code == 0, (out, err)
        assert f"budget {allocated}, ttl {seconds}s" in out, out
        record = await service.get_mission(mission_id_of(out))
        assert record is not None
        assert record.budget.allocated == Decimal(allocated)
        assert record.config["ttl"] == seconds


async def test_an_unreachable_api_is_one_clear_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/graphql"
    code, out, err = await cli_async("deploy", "two_stage", "--watch", "--url", url)
    assert code == 2, (out, err)
    assert err.strip() == f"error: cannot reach the Mission Service API at {url} (All connection attempts failed)"
    assert "Traceback" not in out + err


async def test_ctrl_c_leaves_the_mission_running_and_the_hint_resumes_watching(
    api: RunningApi, start_worker: StartWorker, service: MissionService
) -> None:
    await start_worker()
    args = ["deploy", "hang", "--input", "note=a b", "--watch", "--url", api.url]
    pipe = asyncio.subprocess.PIPE
    proc = await asyncio.create_subprocess_exec(*CLI, *args, cwd=REPO, env=ENV, stdout=pipe, stderr=pipe)
    assert proc.stdout is not None and proc.stderr is not None
    out = ""
    async with asyncio.timeout(20):
        while not re.search(r"hanger\s+started", out):
            line = await proc.stdout.readline()
            assert line, out
            out += line.decode()
    proc.send_signal(signal.SIGINT)
    rest, err_bytes = await asyncio.wait_for(proc.communicate(), 20)
    err = err_bytes.decode()
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in out + rest.decode() + err
    mission_id = mission_id_of(out)
    assert f"mission {mission_id} keeps running" in err
    record = await service.get_mission(mission_id)
    assert record is not None and record.status is MissionStatus.RUNNING

    await service.cancel_mission(mission_id)
    resume = next(line for line in err.splitlines() if "watch it again:" in line).split(": ", 1)[1]
    code, out, err = await cli_async(*shlex.split(resume)[1:])  # same deploy, same key: the same mission
    assert code == 1, (out, err)
    assert f"mission {mission_id} already deployed" in out
    assert f"mission {mission_id} CANCELLED in " in out


async def test_a_keyed_api_needs_the_key_over_http_and_websocket(
    settings: Settings, start_worker: StartWorker, service: MissionService
) -> None:
    key = "operator-key-0123456789"
    viewer = "viewer-key-0123456789"
    grants = {key: ApiKeyGrant(tenant="acme", role="operator"), viewer: ApiKeyGrant(tenant="acme", role="viewer")}
    keyed = settings.model_copy(update={"api_keys": grants})
    await start_worker()
    async with serve_api(keyed) as api:
        code, out, err = await cli_async("deploy", "two_stage", "--url", api.url)
        assert code == 2, (out, err)
        assert "missing or invalid API key" in err and "--api-key" in err
        code, out, err = await cli_async("deploy", "two_stage", "--url", api.url, "--api-key", viewer)
        assert code == 2, (out, err)
        assert "forbidden" in err
        code, out, err = await cli_async("deploy", "two_stage", "--url", api.url, "--api-key", key)
        assert code == 0, (out, err)
        code, out, err = await cli_async("deploy", "two_stage", "--watch", "--url", api.url, MISSION_API_KEY=key)
        assert code == 0, (out, err)
        assert key not in out + err
        record = await service.get_mission(mission_id_of(out))
        assert record is not None and record.tenant == "acme" and record.status is MissionStatus.SUCCEEDED
