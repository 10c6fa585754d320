"""API keys and hosts: an open API (no keys) is served on loopback only, with a loud warning; keys never
appear in logs, in the settings' repr, or in a refusal."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import websockets

from config.settings import ApiKeyGrant, Settings
from mission.logs import JsonFormatter
from mission.service import MissionService
from server.app import create_app
from server.auth import Authenticator, ExposedWithoutKeys
from server.redis_local import free_port
from tests.conftest import REPO, TEST_TEMPLATES, eventually, serve_api
from tests.gql import DEPLOY, EVENTS, LEGACY_WS, MISSION, OPERATOR, TRANSPORT_WS, VIEWER, WsClient, bearer

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "mission.internal"])
def test_no_keys_on_a_non_loopback_host_refuses(host: str) -> None:
    with pytest.raises(ExposedWithoutKeys, match=f"refusing to serve {host} with no API keys"):
        Authenticator(Settings(host=host, api_keys={})).check_exposure(host)


def test_create_app_refuses_a_non_loopback_host_without_keys(settings: Settings) -> None:
    with pytest.raises(ExposedWithoutKeys):
        create_app(settings.model_copy(update={"host": "0.0.0.0"}))
    keyed = settings.model_copy(
        update={"host": "0.0.0.0", "api_keys": {OPERATOR: ApiKeyGrant(tenant="t", role="admin")}}
    )
    assert create_app(keyed) is not None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_no_keys_on_loopback_serves_and_warns_loudly(host: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="mission.api")
    Authenticator(Settings(host=host, api_keys={})).check_exposure(host)
    [warning] = [r for r in caplog.records if r.name == "mission.api"]
    assert warning.levelno == logging.WARNING and "NO API KEYS CONFIGURED" in warning.getMessage()


def test_keys_on_any_host_serve_quietly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    keyed = Settings(api_keys={OPERATOR: ApiKeyGrant(tenant="t", role="viewer")})
    for host in ("0.0.0.0", "::", "127.0.0.1"):
        Authenticator(keyed).check_exposure(host)
    assert not caplog.records


def cli_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MISSION_")}
    env.update(
        PYTHONPATH=str(REPO),
        MISSION_TEMPLATES_PATH=str(TEST_TEMPLATES),
        MISSION_REDIS_URL=settings.redis_url,
        MISSION_LOG_FORMAT="json",
    )
    env.update(extra)
    return env


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_serve_without_keys_on_a_public_host_exits_with_a_clear_message(settings: Settings) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=cli_env(settings),
        cwd=REPO,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode != 0
    stderr = done.stderr.decode()
    assert "refusing to serve 0.0.0.0 with no API keys: set MISSION_API_KEYS, or serve on 127.0.0.1" in stderr
    assert "Traceback" not in stderr


@pytest.mark.timeout(60)
async def test_serve_with_keys_on_a_public_host_starts_and_never_logs_a_key(
    settings: Settings, processes: list[subprocess.Popen[bytes]]
) -> None:
    port = free_port()
    keys = {OPERATOR: {"tenant": "acme", "role": "operator"}}
    process = subprocess.Popen(  # noqa: ASYNC220 - a child that outlives this call; nothing blocks on it here
        [sys.executable, "-m", "server.cli", "--log-level", "DEBUG", "serve", "--host", "0.0.0.0", "--port", str(port)],
        env=cli_env(settings, MISSION_API_KEYS=json.dumps(keys)),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    processes.append(process)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=5) as http:

        async def healthy() -> bool:
            assert process.poll() is None, process.communicate()
            try:
                return (await http.get(f"{base}/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(healthy, timeout=30)
        assert (await http.post(f"{base}/graphql", json={"query": "{ __typename }"})).status_code == 401
        wrong = await http.post(f"{base}/graphql", json={"query": "{ __typename }"}, headers=bearer(OPERATOR[::-1]))
        assert wrong.status_code == 401
        ok = await http.post(
            f"{base}/graphql", json={"query": DEPLOY, "variables": {"t": "two_stage"}}, headers=bearer(OPERATOR)
        )
        assert ok.json()["data"]["deployMission"]["__typename"] == "MissionDeployed"
    for protocol in (TRANSPORT_WS, LEGACY_WS):
        ws = await WsClient.connect(f"ws://127.0.0.1:{port}/graphql", protocol, payload={"apiKey": OPERATOR})
        await ws.close()
    process.terminate()
    out, err = await asyncio.to_thread(process.communicate, timeout=20)
    logged = (out + err).decode()
    assert OPERATOR not in logged and OPERATOR[::-1] not in logged
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert any(line["logger"] == "uvicorn.access" and "/graphql" in line["message"] for line in lines)


async def test_keys_never_appear_in_logs_or_settings_repr(
    http: httpx.AsyncClient, settings: Settings, service: MissionService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-limits-key-77aa11bb22cc"
    keys = {OPERATOR: ApiKeyGrant(tenant="acme", role="operator"), VIEWER: ApiKeyGrant(tenant="acme", role="viewer")}
    keyed = settings.model_copy(update={"api_keys": keys})
    assert OPERATOR not in repr(keyed) and OPERATOR not in str(keyed)
    assert OPERATOR not in repr(Settings(api_keys={OPERATOR: {"tenant": "x", "role": "admin"}}))

    async with serve_api(keyed) as api:
        deployed = await http.post(
            api.url, json={"query": DEPLOY, "variables": {"t": "two_stage"}}, headers=bearer(OPERATOR)
        )
        mission_id = deployed.json()["data"]["deployMission"]["mission"]["id"]
        await http.post(api.url, json={"query": DEPLOY, "variables": {"t": "two_stage"}}, headers=bearer(VIEWER))
        await http.post(api.url, json={"query": "{ __typename }"}, headers=bearer(wrong))
        await http.post(api.url, json={"query": "{ nope }"}, headers=bearer(OPERATOR))
        await service.redis.hset(service.keys.mission(mission_id), "status", "BOGUS")  # type: ignore[misc]
        masked = await http.post(
            api.url, json={"query": MISSION, "variables": {"id": mission_id}}, headers=bearer(OPERATOR)
        )
        assert "errorId" in masked.json()["errors"][0]["extensions"]
        for protocol in (TRANSPORT_WS, LEGACY_WS):
            ws = await WsClient.connect(api.ws_url, protocol, payload={"Authorization": f"Bearer {OPERATOR}"})
            op = await ws.subscribe(EVENTS, id="mssn_" + "1" * 32)
            [_ async for _ in ws.results(op, timeout=10)]
            await ws.close()
            ws = await WsClient.connect(api.ws_url, protocol, init=False)
            await ws.send({"type": "connection_init", "payload": {"apiKey": wrong}})
            with pytest.raises(websockets.ConnectionClosed):  # refused: closed by the server
                while True:
                    await ws.receive(timeout=10)

    server_side = [r for r in caplog.records if not r.name.startswith(("websockets.client", "httpx", "httpcore"))]
    assert any(r.name == "mission.api" and r.levelno == logging.ERROR for r in server_side)  # logs were captured
    formatter = JsonFormatter()
    for record in server_side:
        text = formatter.format(record) + repr(record.__dict__)
        for secret in (OPERATOR, VIEWER, wrong):
            assert secret not in text, (record.name, record.getMessage())


def test_a_bad_key_grant_is_refused_without_printing_the_key(settings: Settings) -> None:
    keys = {OPERATOR: {"tenant": "acme", "role": "root"}}
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(free_port())],
        env=cli_env(settings, MISSION_API_KEYS=json.dumps(keys)),
        cwd=REPO,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode != 0
    output = (done.stdout + done.stderr).decode()
    assert "api_keys" in output or "MISSION_API_KEYS" in output
    assert OPERATOR not in output
    assert "Traceback" not in output
