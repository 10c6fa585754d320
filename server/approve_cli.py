"""`mission-service approve|reject MISSION`: decide a mission's approval gate through the GraphQL API.

Exit codes: 0 decided; 1 refused (no such mission, not awaiting approval, or this key may not
decide); 2 the API could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import httpx

from config.settings import Settings
from server.deploy_cli import ApiError, post_graphql

APPROVE = """
mutation Approve($id: ID!, $comment: String) {
  approveMission(id: $id, comment: $comment) {
    __typename
    ... on MissionApproved { mission { id status approval { state decidedBy } } }
    ... on MissionNotFound { message }
    ... on NotAwaitingApproval { message }
    ... on ApprovalDenied { message }
  }
}"""

REJECT = """
mutation Reject($id: ID!, $reason: String!) {
  rejectMission(id: $id, reason: $reason) {
    __typename
    ... on MissionRejected { mission { id status approval { state decidedBy } } }
    ... on MissionNotFound { message }
    ... on NotAwaitingApproval { message }
    ... on ApprovalDenied { message }
  }
}"""


def add_parsers(sub: Any) -> None:
    """Register `approve` and `reject` on the CLI's subparsers."""
    for verb in ("approve", "reject"):
        p = sub.add_parser(
            verb,
            help=f"{verb} a mission awaiting approval, through the GraphQL API",
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("mission", help="the mission id")
        p.add_argument(
            "--comment",
            required=verb == "reject",
            help="why (required to reject: the reason the skipped jobs carry)",
        )
        p.add_argument("--url", help="GraphQL endpoint (default http://MISSION_HOST:MISSION_PORT/graphql)")
        p.add_argument("--api-key", help="an approver key, if the API wants one (default: MISSION_API_KEY)")
        p.set_defaults(run=run, verb=verb)


def run(args: argparse.Namespace, settings: Settings) -> int:
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    url = args.url or f"http://{host}:{settings.port}/graphql"
    key = args.api_key or os.environ.get("MISSION_API_KEY")
    try:
        return asyncio.run(_decide(url, key, args.verb, args.mission, args.comment))
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


async def _decide(url: str, key: str | None, verb: str, mission_id: str, comment: str | None) -> int:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    if verb == "approve":
        query, variables, field = APPROVE, {"id": mission_id, "comment": comment}, "approveMission"
    else:
        query, variables, field = REJECT, {"id": mission_id, "reason": comment}, "rejectMission"
    async with httpx.AsyncClient(timeout=15, headers=headers) as client:
        result = (await post_graphql(client, url, query, variables))[field]
    if result["__typename"] not in ("MissionApproved", "MissionRejected"):
        print(result["message"], file=sys.stderr)
        return 1
    mission = result["mission"]
    approval = mission["approval"] or {}
    done = "approved" if verb == "approve" else "rejected"
    print(
        f"mission {mission['id']} {done} by key {approval.get('decidedBy')}: "
        f"gate {approval.get('state')}, mission {mission['status']}"
    )
    return 0
