"""`mission-service deploy`: deploy a template through the GraphQL API and, with --watch, follow it live.

Exit codes: 0 the mission succeeded (or was deployed, without --watch); 1 it ended otherwise;
2 the deploy was refused or the API could not be reached; 130 interrupted (the mission keeps running).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from config.settings import Settings
from mission.models import TERMINAL_JOB_STATUSES, TERMINAL_MISSION_STATUSES
from mission.plan import parse_duration, parse_money

DEPLOY = """
mutation Deploy($templateId: ID!, $config: MissionConfigInput, $key: String) {
  deployMission(templateId: $templateId, config: $config, idempotencyKey: $key) {
    __typename
    ... on MissionDeployed {
      created
      mission { id status budget { allocated } config { ttl } jobs { role department status } }
    }
    ... on TemplateNotFound { message }
    ... on InvalidConfig { message problems { field message } }
    ... on RateLimited { message }
  }
}"""

EVENTS = """
subscription Events($id: ID!) {
  missionEvents(missionId: $id) { seq type status jobId at message data }
}"""

SUMMARY = """
query Summary($id: ID!) {
  mission(id: $id) { status failureReason createdAt finishedAt budget { allocated spent } jobs { role status } }
}"""

TERMINAL = {status.value for status in TERMINAL_MISSION_STATUSES}
TERMINAL_JOB = {status.value for status in TERMINAL_JOB_STATUSES}


class ApiError(Exception):
    """The API could not be reached or answered something unusable: exit 2."""


@dataclass
class Watch:
    """What the command knows so far, for the interrupt hint and the progress counter."""

    url: str
    api_key: str | None = None
    resume: str = ""
    mission_id: str | None = None
    jobs: dict[str, str] = field(default_factory=dict)  # role -> status


def add_parser(sub: Any) -> None:
    """Register `deploy` on the CLI's subparsers."""
    p = sub.add_parser(
        "deploy",
        help="deploy a template through the GraphQL API; --watch follows it live",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("template", help="template id (see `templates list`)")
    p.add_argument("--budget", type=_money, help='total budget: 5000, "$5,000", 1250.50 (default: the template\'s)')
    p.add_argument(
        "--ttl", type=_duration, help='time limit: 300, "90m", "5 minutes", "2 hours" (default: the template\'s)'
    )
    p.add_argument(
        "--input",
        dest="inputs",
        action="append",
        type=_key_value,
        default=[],
        metavar="K=V",
        help="a mission input; V is parsed as JSON when it can be, else a string (repeatable)",
    )
    p.add_argument("--idempotency-key", help="deploying again with the same key returns the same mission")
    p.add_argument("--watch", action="store_true", help="stream the mission's events until it ends")
    p.add_argument("--url", help="GraphQL endpoint (default http://MISSION_HOST:MISSION_PORT/graphql)")
    p.add_argument("--api-key", help="an operator key, if the API wants one (default: MISSION_API_KEY)")
    p.set_defaults(run=run)


def _money(text: str) -> Decimal:
    """A budget in the forms the API takes (the API's own parser)."""
    try:
        return parse_money(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _duration(text: str) -> int:
    """A time limit in the forms the API takes (the API's own parser), as seconds."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _key_value(text: str) -> tuple[str, str]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected K=V, got {text!r}")
    return key, raw


def _input_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def run(args: argparse.Namespace, settings: Settings) -> int:
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request would drown the display
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    url = args.url or f"http://{host}:{settings.port}/graphql"
    if args.watch and not args.idempotency_key:
        args.idempotency_key = uuid.uuid4().hex  # so the same command can resume watching
    watch = Watch(url=url, api_key=args.api_key or os.environ.get("MISSION_API_KEY"), resume=_resume_command(args))
    try:
        return asyncio.run(_deploy(args, watch))
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if watch.mission_id:
            print(_hint(watch), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted" + (f"; {_hint(watch)}" if watch.mission_id else ""), file=sys.stderr)
        return 130


def _resume_command(args: argparse.Namespace) -> str:
    parts = ["mission-service", "deploy", args.template]
    if args.budget is not None:
        parts += ["--budget", format(args.budget, "f")]
    if args.ttl is not None:
        parts += ["--ttl", str(args.ttl)]
    parts += [arg for key, raw in args.inputs for arg in ("--input", f"{key}={raw}")]
    parts += ["--idempotency-key", args.idempotency_key or "", "--watch"]
    if args.url:
        parts += ["--url", args.url]
    return shlex.join(parts) + (" --api-key <your key>" if args.api_key else "")  # never print a key


def _hint(watch: Watch) -> str:
    cancel = json.dumps({"query": f'mutation {{ cancelMission(id: "{watch.mission_id}") {{ __typename }} }}'})
    auth = ' -H "authorization: Bearer $MISSION_API_KEY"' if watch.api_key else ""
    curl = f"curl -s {shlex.quote(watch.url)}{auth} -H 'content-type: application/json' -d {shlex.quote(cancel)}"
    return f"mission {watch.mission_id} keeps running.\n  watch it again: {watch.resume}\n  cancel it:      {curl}"


async def post_graphql(client: httpx.AsyncClient, url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    try:
        response = await client.post(url, json={"query": query, "variables": variables})
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise ApiError(f"cannot reach the Mission Service API at {url} ({exc or type(exc).__name__})") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        detail = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in body["errors"])
        hint = " (pass --api-key or set MISSION_API_KEY)" if response.status_code == 401 else ""
        raise ApiError(f"the API refused the request: {detail}{hint}")
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ApiError(f"{url} answered HTTP {response.status_code}: {response.text[:200]}")
    data: dict[str, Any] = body["data"]
    return data


async def _deploy(args: argparse.Namespace, watch: Watch) -> int:
    config: dict[str, Any] = {}
    if args.budget is not None:
        config["budget"] = format(args.budget, "f")  # 1e3 -> "1000"
    if args.ttl is not None:
        config["ttl"] = args.ttl
    if args.inputs:
        config["inputs"] = {key: _input_value(raw) for key, raw in args.inputs}
    variables = {"templateId": args.template, "config": config or None, "key": args.idempotency_key}
    headers = {"authorization": f"Bearer {watch.api_key}"} if watch.api_key else {}
    async with httpx.AsyncClient(timeout=15, headers=headers) as client:
        result = (await post_graphql(client, watch.url, DEPLOY, variables))["deployMission"]
        if result["__typename"] != "MissionDeployed":
            print(result["message"], file=sys.stderr)
            for problem in result.get("problems", []):
                print(f"  {problem['field']}: {problem['message']}", file=sys.stderr)
            return 2
        mission = result["mission"]
        watch.mission_id = mission["id"]
        watch.jobs = {job["role"]: job["status"] for job in mission["jobs"]}
        verb = "deployed" if result["created"] else "already deployed with this idempotency key"
        print(
            f"mission {mission['id']} {verb}: {args.template}, status {mission['status']}, "
            f"budget {mission['budget']['allocated']}, ttl {mission['config']['ttl']}s"
        )
        width = max(len("ROLE"), *(len(job["role"]) for job in mission["jobs"])) + 2
        print(f"  {'ROLE':<{width}}{'DEPARTMENT':<16}STATUS")
        for job in mission["jobs"]:
            print(f"  {job['role']:<{width}}{job['department']:<16}{job['status']}")
        if not args.watch:
            return 0
        print(flush=True)
        await _stream(watch)
        summary = (await post_graphql(client, watch.url, SUMMARY, {"id": watch.mission_id}))["mission"]
    return _print_summary(watch, summary)


async def _stream(watch: Watch) -> None:
    """Print each event of the mission until the server completes the subscription."""
    ws_url = "ws" + watch.url.removeprefix("http")
    try:
        async with websockets.connect(ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
            params = {"Authorization": f"Bearer {watch.api_key}"} if watch.api_key else {}
            await ws.send(json.dumps({"type": "connection_init", "payload": params}))
            await _expect(ws, "connection_ack")
            payload = {"query": EVENTS, "variables": {"id": watch.mission_id}}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            while True:
                message = await _expect(ws, "next", "complete", "error")
                if message["type"] == "complete":
                    return
                if message["type"] == "error" or message["payload"].get("errors"):
                    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
                    raise ApiError("the event stream failed: " + "; ".join(e.get("message", "?") for e in errors))
                print(_event_line(watch, message["payload"]["data"]["missionEvents"]), flush=True)
    except (OSError, websockets.WebSocketException) as exc:
        raise ApiError(f"lost the event stream from {ws_url} ({exc or type(exc).__name__})") from None


async def _expect(ws: ClientConnection, *types: str) -> dict[str, Any]:
    """The next message of one of ``types``, answering pings on the way."""
    while True:
        message: dict[str, Any] = json.loads(await ws.recv())
        if message.get("type") == "ping":
            await ws.send(json.dumps({"type": "pong"}))
        elif message.get("type") in types:
            return message
        elif message.get("type") != "pong":
            raise ApiError(f"unexpected message from the API: {message}")


def _event_line(watch: Watch, event: dict[str, Any]) -> str:
    at = datetime.fromisoformat(event["at"]).astimezone().strftime("%H:%M:%S.%f")[:-3]
    kind, _, verb = event["type"].partition(".")
    data = event.get("data") or {}
    role = (event.get("jobId") or "").rpartition(":")[2]
    detail = event["message"]
    if kind == "job":
        watch.jobs[role] = event["status"]
        if verb == "progress":
            detail = f"{float(data.get('progress', 0)):4.0%}  {detail}"
        elif verb == "spent":
            detail = f"+{data['amount']} ({data['spent']} of {data['allocated']})  {detail}"
        elif event["status"] in TERMINAL_JOB:
            done = sum(status in TERMINAL_JOB for status in watch.jobs.values())
            detail = f"[{done}/{len(watch.jobs)} done]  {detail}"
    who = role if kind == "job" else "mission"
    return f"{at}  {who:<14} {verb:<10} {event['status']:<10} {detail}"


def _print_summary(watch: Watch, mission: dict[str, Any] | None) -> int:
    if mission is None:
        print(f"mission {watch.mission_id} is gone (expired from the store?)", file=sys.stderr)
        return 1
    status = mission["status"]
    if status not in TERMINAL:  # the stream completed early, e.g. the server is shutting down
        print(f"\nthe event stream ended while mission {watch.mission_id} is {status}; {_hint(watch)}", file=sys.stderr)
        return 1
    started, finished = (datetime.fromisoformat(mission[k]) for k in ("createdAt", "finishedAt"))
    jobs = ", ".join(f"{job['role']} {job['status']}" for job in mission["jobs"])
    print(f"\nmission {watch.mission_id} {status} in {(finished - started).total_seconds():.2f}s")
    if mission["failureReason"]:
        print(f"  reason: {mission['failureReason']}")
    print(f"  budget: {mission['budget']['spent']} spent of {mission['budget']['allocated']}")
    print(f"  jobs:   {jobs}")
    return 0 if status == "SUCCEEDED" else 1
