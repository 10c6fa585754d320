"""`mission-service up`: Redis (the configured one if it answers, else a local one), a worker and
the API, in one process tree; Ctrl-C stops all of it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from config.settings import Settings
from server.app import create_app, serve
from server.auth import Authenticator, ExposedWithoutKeys
from server.redis_local import LocalRedis, answers, stop_process


def _pick_redis(settings: Settings, data_dir: Path) -> tuple[str, LocalRedis | None]:
    if settings.redis_sentinels:
        print(f"Using Redis through the Sentinels at {', '.join(settings.redis_sentinels)}", flush=True)
        return settings.redis_url, None
    configured = "MISSION_REDIS_URL" in os.environ
    if configured and answers(settings.redis_url):
        print(f"Using Redis at {settings.redis_url}", flush=True)
        return settings.redis_url, None
    if configured:
        print("MISSION_REDIS_URL does not answer; starting a local Redis instead", flush=True)
    local = LocalRedis(data_dir=data_dir).start()
    print(f"Started a local Redis on port {local.port} (data in {data_dir}/, append-only)", flush=True)
    return local.url, local


def run_everything(settings: Settings, *, host: str | None, port: int | None, data_dir: Path) -> int:
    host = host or settings.host
    try:
        Authenticator(settings).check_exposure(host, warn=False)  # the app warns
    except ExposedWithoutKeys as exc:
        print(f"mission-service: {exc}", file=sys.stderr)
        return 2
    redis_url, local = _pick_redis(settings, data_dir)
    settings = settings.model_copy(update={"redis_url": redis_url, "host": host})
    env = {**os.environ, "MISSION_REDIS_URL": redis_url}
    worker = subprocess.Popen([sys.executable, "-m", "server.cli", "worker"], env=env)
    port = settings.port if port is None else port
    print(f"\n  Mission Control: http://{host}:{port}/\n  GraphiQL: http://{host}:{port}/graphql\n", flush=True)
    try:
        code = serve(create_app(settings), settings, port=port)
    finally:
        stop_process(worker, timeout=30)  # a worker finishing its jobs' bookkeeping
        if local is not None:
            local.stop()
    return code
