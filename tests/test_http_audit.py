"""GraphQL over HTTP conformance: the reference audit suite (npm `graphql-http`, `auditServer`) run against
`mission-service serve`, a real server process on a free port with a real Redis. Every audit must pass:
no failure (a MUST) and no warning (a SHOULD).

The suite is a pinned npm package in tests/http_audit (package.json, package-lock.json); `npm ci` installs it
there when node_modules is missing or differs from the lock. Needs `node` and `npm` (.ci/run installs
Debian's); without them the test is skipped.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from server.redis_local import LocalRedis, free_port
from tests.processes import Processes

pytestmark = pytest.mark.timeout(300)

AUDIT_DIR = Path(__file__).resolve().parent / "http_audit"
MIN_AUDITS = 50  # graphql-http 1.23 runs 61: fewer would mean the suite did not really run


def installed_matches_lock() -> bool:
    """Whether node_modules holds exactly the versions package-lock.json names."""
    lock = json.loads((AUDIT_DIR / "package-lock.json").read_text())
    for path, entry in lock["packages"].items():
        if not path:
            continue  # the project itself
        manifest = AUDIT_DIR / path / "package.json"
        if not manifest.is_file() or json.loads(manifest.read_text()).get("version") != entry["version"]:
            return False
    return True


async def run(*argv: str, timeout: float) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=AUDIT_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def describe(result: dict[str, Any]) -> str:
    return f"{result['id']} {result['name']}: {result['reason']} (HTTP {result['httpStatus']})"


@pytest.fixture
def node() -> str:
    """The `node` binary, after `npm ci` if node_modules does not match the lock; skipped without Node."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("needs node and npm for the graphql-http audit suite (apt-get install nodejs npm)")
    if not installed_matches_lock():
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=AUDIT_DIR, capture_output=True, timeout=240)
        assert done.returncode == 0, f"npm ci failed ({done.returncode}):\n{done.stdout!r}\n{done.stderr!r}"
    return node


async def test_graphql_over_http_audit_has_no_failure_and_no_warning(
    node: str, redis_server: LocalRedis, procs: Processes
) -> None:
    api = procs.api(free_port(), redis_server.url)
    await api.wait_ready()

    code, out, err = await run(node, "audit.mjs", api.url, timeout=120)
    assert code == 0, f"audit.mjs exited with {code}:\n{err}"
    results: list[dict[str, Any]] = json.loads(out)

    assert len(results) >= MIN_AUDITS, results
    failures = [describe(r) for r in results if r["status"] == "error"]
    warnings = [describe(r) for r in results if r["status"] == "warn"]
    assert not failures, "MUST audits failed:\n" + "\n".join(failures)
    assert not warnings, "SHOULD audits warned:\n" + "\n".join(warnings)
    assert not procs.tracebacks(), procs.tracebacks()
