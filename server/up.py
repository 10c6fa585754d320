"""`mission-service up`: Redis (the configured one if it answers, else a local one), the model
endpoint (the configured one, else the embedded model), a worker (started again should it exit) and
the API, in one process tree; Ctrl-C stops all of it."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from config.settings import Settings
from server import model_local
from server.app import create_app, serve
from server.auth import Authenticator, ExposedWithoutKeys
from server.keeper import Keeper
from server.model_local import LocalModel
from server.redis_local import LocalRedis, answers


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


def _pick_model(settings: Settings) -> tuple[dict[str, str], LocalModel | None]:
    """The worker's model settings: the configured endpoint, else the embedded model, priced 0."""
    if settings.llm_base_url is not None:
        print(f"Model agents use {settings.llm_base_url}", flush=True)
        return {}, None
    if not model_local.available():
        print("No MISSION_LLM_BASE_URL and no embedded model: model agents will fail", flush=True)
        return {}, None
    local = LocalModel().start()
    prices = {name: price.model_dump(mode="json") for name, price in settings.llm_prices.items()}
    prices[model_local.MODEL_NAME] = {"input": "0", "output": "0"}  # it runs on this machine
    print(f"Started the embedded model ({model_local.MODEL_NAME}) at {local.base_url}, priced 0", flush=True)
    env = {"MISSION_LLM_BASE_URL": local.base_url, "MISSION_LLM_PRICES": json.dumps(prices)}
    if "MISSION_LLM_MODEL" not in os.environ:
        env["MISSION_LLM_MODEL"] = model_local.MODEL_NAME
    return env, local


class Terminated(Exception):
    """SIGTERM: stop everything as Ctrl-C does."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    # uvicorn handles SIGTERM while it serves, then raises it again once shut down: this handler
    # turns it (then, or during start-up) into an exception, so the children are stopped too.
    raise Terminated


def _stop_everything() -> None:
    """What a worker that keeps exiting does to `up`: the same as a SIGTERM."""
    os.kill(os.getpid(), signal.SIGTERM)


def run_everything(settings: Settings, *, host: str | None, port: int | None, data_dir: Path) -> int:
    host = host or settings.host
    try:
        Authenticator(settings).check_exposure(host, warn=False)  # the app warns
    except ExposedWithoutKeys as exc:
        print(f"mission-service: {exc}", file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, _terminate)
    local: LocalRedis | None = None
    model: LocalModel | None = None
    worker: Keeper | None = None
    code = 0
    try:
        redis_url, local = _pick_redis(settings, data_dir)
        settings = settings.model_copy(update={"redis_url": redis_url, "host": host})
        try:
            model_env, model = _pick_model(settings)
        except RuntimeError as exc:
            print(f"The embedded model did not start ({exc}): model agents will fail", flush=True)
            model_env, model = {}, None
        env = {**os.environ, "MISSION_REDIS_URL": redis_url, **model_env}
        worker = Keeper("worker", [sys.executable, "-m", "server.cli", "worker"], env, _stop_everything)
        port = settings.port if port is None else port
        print(f"\n  Mission Control: http://{host}:{port}/\n  GraphiQL: http://{host}:{port}/graphql\n", flush=True)
        code = serve(create_app(settings), settings, port=port)
    except Terminated:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # stopping: a second SIGTERM must not cut it short
        if worker is not None:
            worker.stop(timeout=30)  # a worker finishing its jobs' bookkeeping
        if model is not None:
            model.stop()
        if local is not None:
            local.stop()
        signal.signal(signal.SIGTERM, previous)
    if worker is not None and worker.gave_up:
        return code or 1
    return code
