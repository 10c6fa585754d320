"""`mission-service`: run the API, a worker, everything at once; check templates; deploy; approve or reject."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from config.settings import Settings, SettingsError, load_settings
from mission import logs
from mission.errors import TemplateFileError
from mission.templates import read_templates_file
from server import approve_cli, deploy_cli


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from server.app import create_app, serve
    from server.auth import ExposedWithoutKeys

    settings = settings.model_copy(update={"host": args.host or settings.host})
    port = args.port if args.port is not None else settings.port
    try:
        app = create_app(settings)
    except ExposedWithoutKeys as exc:
        print(f"mission-service: {exc}", file=sys.stderr)
        return 2
    return serve(app, settings, port=port, log_level=args.log_level)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from server.up import run_everything

    return run_everything(settings, host=args.host, port=args.port, data_dir=Path(args.data_dir))


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import uvloop

    from workers.settings import create_worker

    # ARQ's worker runs on the loop set here; uvloop's cuts the worker's CPU per job by about a fifth
    asyncio.set_event_loop(uvloop.new_event_loop())
    overrides = {"max_jobs": args.concurrency} if args.concurrency else {}
    worker = create_worker(settings, **overrides)
    worker.run()
    return 1 if worker.failed else 0  # stopped because a background task kept crashing


def _templates(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file) if args.file else settings.templates_path
    try:
        templates = read_templates_file(path)
    except TemplateFileError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    if args.action == "validate":
        print(f"{path}: {len(templates)} templates, all valid")
        return 0
    for t in templates:
        departments = " -> ".join(t.departments)
        print(f"{t.id:<14} {t.name:<24} {t.sector:<12} {len(t.squad):>2} agents  {departments}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mission-service", description=__doc__)
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING… (default INFO)")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the GraphQL API (uvicorn)")
    serve.add_argument("--host", help="address to listen on (MISSION_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (MISSION_PORT, default 8000)")
    serve.set_defaults(run=_serve)

    up = sub.add_parser("up", help="everything at once: Redis (local if none answers), a worker and the API")
    up.add_argument("--host", help="address for the API (MISSION_HOST, default 127.0.0.1)")
    up.add_argument("--port", type=int, help="port for the API (MISSION_PORT, default 8000)")
    up.add_argument("--data-dir", default=".mission-data", help="where a local Redis keeps its data")
    up.set_defaults(run=_up)

    worker = sub.add_parser("worker", help="run an ARQ worker for the mission queue")
    worker.add_argument("--concurrency", type=int, help="agent jobs at once (MISSION_WORKER_CONCURRENCY)")
    worker.set_defaults(run=_worker)

    templates = sub.add_parser("templates", help="list or validate a templates file")
    templates.add_argument("action", choices=["list", "validate"])
    templates.add_argument("file", nargs="?", help="the file (default MISSION_TEMPLATES_PATH)")
    templates.set_defaults(run=_templates)

    deploy_cli.add_parser(sub)
    approve_cli.add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"mission-service: {exc}", file=sys.stderr)
        return 2
    logs.configure(args.log_level, settings.log_format)
    code: int = args.run(args, settings)
    return code


if __name__ == "__main__":
    sys.exit(main())
