"""Approval gates, for real: a real Redis, real workers, the real API with API keys. A gated mission
holds no worker while it waits, decides exactly once (approve, reject or its timeout), keeps the
four-eyes rule and records who decided."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from config.settings import DEFAULT_TEMPLATES, ApiKeyGrant, Settings
from mission import errors
from mission.events import PubSubHub
from mission.graph import department_status
from mission.models import ApprovalState, JobStatus, MissionStatus, Template
from mission.plan import build_plan, merge_config
from mission.records import Event
from mission.service import MissionService
from mission.templates import TemplateRegistry, outcome_logic_hash, parse_templates
from server.auth import Authenticator
from server.redis_local import LocalRedis, free_port
from tests.conftest import RunningApi, eventually, serve_api
from tests.gql import WsClient, data
from tests.processes import Processes, gap_free_problems
from tests.test_cli import cli_async
from workers.settings import MissionWorker, create_worker

pytestmark = pytest.mark.timeout(60)

ECHO = "tests.agents:echo"


def gated_template(template_id: str, *, timeout: int = 60, on_timeout: str = "reject", **gate: Any) -> dict[str, Any]:
    """prep (A) -> act (B, gated) -> report (C), plus a side branch (D) that no gate holds."""
    return {
        "id": template_id,
        "name": template_id,
        "sector": "Tests",
        "goal": "act after a human says so",
        "squad": [
            {"role": "prep", "department": "A", "agent": ECHO},
            {"role": "act", "department": "B", "agent": ECHO},
            {"role": "report", "department": "C", "agent": ECHO},
            {"role": "side", "department": "D", "agent": ECHO},
        ],
        "dependencies": {"B": ["A"], "C": ["B"]},
        "approval": {"before": ["B"], "timeout": timeout, "on_timeout": on_timeout, **gate},
        "defaults": {"budget": 100, "ttl": 120, "risk": {"level": "medium"}},
        "limits": {"budget": {"min": 1, "max": 1000}, "ttl": {"min": 1, "max": 600}},
    }


TEMPLATES = [
    gated_template("gated", when={"risk_levels": ["high"], "budget_above": 100}),
    gated_template("always", timeout=60),
    gated_template("quick_reject", timeout=2, on_timeout="reject"),
    gated_template("quick_approve", timeout=2, on_timeout="approve"),
    {**gated_template("root_gate"), "id": "root_gate", "approval": {"before": ["A"], "timeout": 60}},
    {
        **gated_template("root_quick"),
        "id": "root_quick",
        "approval": {"before": ["A"], "timeout": 2, "on_timeout": "approve"},
    },
    {
        "id": "plain",
        "name": "plain",
        "sector": "Tests",
        "goal": "no gate",
        "squad": [{"role": "solo", "department": "A", "agent": ECHO}],
        "defaults": {"budget": 10, "ttl": 60},
    },
]

OPERATOR, APPROVER, APPROVER_2, VIEWER, ADMIN, OTHER_APPROVER = (
    "key-operator-a",
    "key-approver-a",
    "key-approver-a-2",
    "key-viewer-a",
    "key-admin",
    "key-approver-b",
)
KEYS = {
    OPERATOR: ApiKeyGrant(tenant="a", role="operator"),
    APPROVER: ApiKeyGrant(tenant="a", role="approver"),
    APPROVER_2: ApiKeyGrant(tenant="a", role="approver"),
    VIEWER: ApiKeyGrant(tenant="a", role="viewer"),
    ADMIN: ApiKeyGrant(tenant="a", role="admin"),
    OTHER_APPROVER: ApiKeyGrant(tenant="b", role="approver"),
}

DEPLOY = """
mutation($t: ID!, $config: MissionConfigInput) {
  deployMission(templateId: $t, config: $config) {
    __typename
    ... on MissionDeployed { mission { id status approval { state } } }
    ... on InvalidConfig { message }
  }
}"""
APPROVE = """
mutation($id: ID!, $comment: String) {
  approveMission(id: $id, comment: $comment) {
    __typename
    ... on MissionApproved { mission { id status approval { state decidedBy comment } } }
    ... on MissionNotFound { message }
    ... on NotAwaitingApproval { message state }
    ... on ApprovalDenied { message }
  }
}"""
REJECT = """
mutation($id: ID!, $reason: String!) {
  rejectMission(id: $id, reason: $reason) {
    __typename
    ... on MissionRejected { mission { id status approval { state decidedBy comment } } }
    ... on MissionNotFound { message }
    ... on NotAwaitingApproval { message state }
    ... on ApprovalDenied { message }
  }
}"""
PLAN = """
query($t: ID!, $config: MissionConfigInput) {
  planMission(templateId: $t, config: $config) { ... on MissionPlan { approval { before timeout onTimeout } } }
}"""
MISSION = """
query($id: ID!) {
  mission(id: $id) {
    status canDecide
    approval { state departments timeout onTimeout requestedAt deadline decidedAt decidedBy comment approved }
    jobs { role status error }
  }
}"""


def key_id(key: str) -> str:
    principal = Authenticator(Settings(api_keys=KEYS)).principal(key)
    assert principal is not None
    return principal.key_id


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The suite's settings with the gated templates and the keys above: conftest's `service`, `hub`
    and `api` are built from these."""
    path = tmp_path / "templates.json"
    path.write_text(json.dumps({"templates": TEMPLATES}))
    return settings.model_copy(update={"templates_path": path, "api_keys": KEYS})


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[MissionWorker]:
    """One real worker that runs a single agent at a time: a gate holding a slot would stop it."""
    w = create_worker(settings, handle_signals=False, max_jobs=1)
    task = asyncio.create_task(w.async_run())
    await asyncio.wait_for(w.ready.wait(), 15)
    yield w
    await w.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def client(key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=10, headers={"authorization": f"Bearer {key}"})


async def deploy(api: RunningApi, template: str, config: dict[str, Any] | None = None, key: str = OPERATOR) -> str:
    async with client(key) as http:
        result = (await data(http, api.url, DEPLOY, t=template, config=config))["deployMission"]
    assert result["__typename"] == "MissionDeployed", result
    mission_id: str = result["mission"]["id"]
    return mission_id


async def decide(
    api: RunningApi,
    key: str,
    mission_id: str,
    verb: str = "approve",
    note: str = "ok",
    http: httpx.AsyncClient | None = None,
) -> dict[str, Any]:
    """approveMission or rejectMission with ``key`` (on ``http``, a client made for that key, if given)."""
    async with contextlib.AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(client(key))
        if verb == "approve":
            result: dict[str, Any] = (await data(http, api.url, APPROVE, id=mission_id, comment=note))["approveMission"]
        else:
            result = (await data(http, api.url, REJECT, id=mission_id, reason=note))["rejectMission"]
    return result


async def mission(api: RunningApi, mission_id: str, key: str = APPROVER) -> dict[str, Any]:
    async with client(key) as http:
        found: dict[str, Any] = (await data(http, api.url, MISSION, id=mission_id))["mission"]
    return found


async def events_until(
    service: MissionService, hub: PubSubHub, mission_id: str, stop: str = "", timeout: float = 20
) -> list[Event]:
    """The mission's events from the first, up to the first of type ``stop`` (or its end)."""
    seen: list[Event] = []
    async with asyncio.timeout(timeout):
        async for event in service.events(hub, mission_id):
            seen.append(event)
            if event.type == stop:
                break
    return seen


def decisions(events: list[Event]) -> list[Event]:
    return [e for e in events if e.type in ("approval.granted", "approval.rejected", "approval.timed_out")]


# --- waiting, then approval ---


async def test_a_gated_mission_waits_holding_no_worker_then_runs_to_success_after_approval(
    api: RunningApi, service: MissionService, hub: PubSubHub, worker: MissionWorker
) -> None:
    mission_id = await deploy(api, "gated", {"risk": {"level": "high"}})
    before = await events_until(service, hub, mission_id, "approval.requested")
    requested = before[-1]
    assert requested.status == "AWAITING_APPROVAL" and requested.data["departments"] == ["B"]
    # the gated job waits at the gate: not queued, not running, no lease, no ARQ job of its own
    keys = service.keys
    queued = await service.redis.zrange(keys.queue, 0, -1)
    assert keys.arq_job_id(mission_id, "act", 1) not in queued
    assert keys.approval_job_id(mission_id) in queued  # only the gate's timeout job

    seen = await mission(api, mission_id)
    assert seen["status"] == "AWAITING_APPROVAL" and seen["canDecide"] is True
    async with client(APPROVER) as http:
        listed = await data(
            http,
            api.url,
            "{ missions(status: AWAITING_APPROVAL) { nodes { id graph { nodes { department status } } } } }",
        )
    (node,) = listed["missions"]["nodes"]
    assert node["id"] == mission_id
    assert {n["department"]: n["status"] for n in node["graph"]["nodes"]}["B"] == "AWAITING_APPROVAL"
    assert {j["role"]: j["status"] for j in seen["jobs"]}["act"] == "AWAITING_APPROVAL"
    assert seen["approval"]["state"] == "PENDING" and seen["approval"]["decidedAt"] is None
    gate_deadline = datetime.fromisoformat(seen["approval"]["deadline"])
    assert (gate_deadline - datetime.fromisoformat(seen["approval"]["requestedAt"])).total_seconds() == 60

    # the single worker slot is free: another mission runs to its end meanwhile
    other = await deploy(api, "plain")
    other_events = await events_until(service, hub, other, "mission.succeeded")
    assert other_events[-1].type == "mission.succeeded"
    # the side branch, which no gate holds, ran too; the gated mission still waits
    await eventually(lambda: _job_status(service, mission_id, "side", JobStatus.SUCCEEDED))
    assert await service.store.status(mission_id) is MissionStatus.AWAITING_APPROVAL
    assert await service.redis.zcard(keys.leases) == 0

    approved = await decide(api, APPROVER, mission_id, note="checked the exposure")
    assert approved["__typename"] == "MissionApproved", approved
    assert approved["mission"]["approval"] == {
        "state": "APPROVED",
        "decidedBy": key_id(APPROVER),
        "comment": "checked the exposure",
    }
    events = await events_until(service, hub, mission_id, "mission.succeeded")
    assert events[-1].type == "mission.succeeded"
    (granted,) = decisions(events)
    assert granted.type == "approval.granted" and granted.data["decidedBy"] == key_id(APPROVER)
    assert granted.data["comment"] == "checked the exposure" and granted.data["approved"] is True
    # act queued only after the decision, then ran; no secret in the log
    act = [e.seq for e in events if e.job_id == f"{mission_id}:act"]
    assert min(s for s in act if events[s - 1].type == "job.queued") > granted.seq
    assert APPROVER not in json.dumps([e.data for e in events])

    done = await mission(api, mission_id)
    assert done["status"] == "SUCCEEDED" and done["canDecide"] is False
    assert done["approval"]["state"] == "APPROVED" and done["approval"]["approved"] is True

    # /metrics counts the request, the decision and the time to it
    async with client(ADMIN) as http:
        metrics = (await http.get(api.url.replace("/graphql", "/metrics"))).text
    assert 'mission_approval_decisions_total{decision="APPROVED",outcome="approved"} 1.0' in metrics
    assert "mission_approval_requests_total 1.0" in metrics
    assert "mission_approval_wait_seconds_count 1.0" in metrics


async def _job_status(service: MissionService, mission_id: str, role: str, status: JobStatus) -> bool:
    record = await service.get_mission(mission_id)
    assert record is not None
    return {j.role: j.status for j in record.jobs}[role] is status


async def test_rejection_skips_the_gated_departments_and_the_outcome_policy_decides(
    api: RunningApi, service: MissionService, hub: PubSubHub, worker: MissionWorker
) -> None:
    mission_id = await deploy(api, "always")
    await events_until(service, hub, mission_id, "approval.requested")
    # the tracker's feed carries the decision too
    tracker = await WsClient.connect(api.ws_url, payload={"Authorization": f"Bearer {VIEWER}"})
    op = await tracker.subscribe("subscription { missionUpdates { id status approval { state comment } } }")
    updates = tracker.results(op)
    marker = await deploy(api, "plain")  # once its update arrives, the subscription is live
    async for payload in updates:
        if payload["data"]["missionUpdates"]["id"] == marker:
            break
    rejected = await decide(api, APPROVER, mission_id, "reject", "exposure too large")
    assert rejected["__typename"] == "MissionRejected", rejected
    async for payload in updates:
        update = payload["data"]["missionUpdates"]
        if update["id"] == mission_id and update["approval"]["state"] == "REJECTED":
            assert update["approval"]["comment"] == "exposure too large"
            break
    await tracker.close()
    events = await events_until(service, hub, mission_id, "mission.failed")
    seen = await mission(api, mission_id)
    jobs = {j["role"]: j for j in seen["jobs"]}
    assert {r: j["status"] for r, j in jobs.items()} == {
        "prep": "SUCCEEDED",
        "act": "SKIPPED",
        "report": "SKIPPED",
        "side": "SUCCEEDED",
    }
    assert jobs["act"]["error"] == jobs["report"]["error"] == "approval rejected: exposure too large"
    assert seen["status"] == "FAILED"  # the `all` policy: 2 of 4 jobs succeeded
    assert seen["approval"]["state"] == "REJECTED" and seen["approval"]["approved"] is False
    assert seen["approval"]["comment"] == "exposure too large"
    (event,) = decisions(events)
    assert event.type == "approval.rejected" and event.data["decidedBy"] == key_id(APPROVER)
    # a second decision, either way, is refused
    again = await decide(api, APPROVER_2, mission_id)
    assert again["__typename"] == "NotAwaitingApproval" and again["state"] == "REJECTED"


# --- who may decide ---


async def test_the_deployer_a_viewer_and_an_operator_are_denied_another_tenant_sees_no_mission(
    api: RunningApi, service: MissionService, hub: PubSubHub, worker: MissionWorker
) -> None:
    mission_id = await deploy(api, "always", key=ADMIN)  # an admin may deploy and approve…
    await events_until(service, hub, mission_id, "approval.requested")
    own = await decide(api, ADMIN, mission_id)  # …but not a mission it deployed itself
    assert own["__typename"] == "ApprovalDenied" and "four-eyes" in own["message"]
    assert (await mission(api, mission_id, ADMIN))["canDecide"] is False
    for key in (VIEWER, OPERATOR):
        for verb in ("approve", "reject"):
            denied = await decide(api, key, mission_id, verb)
            assert denied["__typename"] == "ApprovalDenied", denied
        assert (await mission(api, mission_id, key))["canDecide"] is False
    for verb in ("approve", "reject"):
        hidden = await decide(api, OTHER_APPROVER, mission_id, verb)
        assert hidden["__typename"] == "MissionNotFound", hidden
    unknown = await decide(api, APPROVER, "mssn_" + "0" * 32)
    assert unknown["__typename"] == "MissionNotFound"
    # none of that decided anything
    assert (await mission(api, mission_id))["approval"]["state"] == "PENDING"
    assert (await decide(api, APPROVER, mission_id))["__typename"] == "MissionApproved"


async def test_self_approval_only_where_the_setting_allows_it(settings: Settings) -> None:
    strict = MissionService(settings)
    single = MissionService(settings.model_copy(update={"allow_self_approval": True}))
    try:
        # a gate before a root department is reached at deploy: no worker needed here
        record, _ = await strict.deploy("root_gate", deployed_by="me")
        assert record.status is MissionStatus.AWAITING_APPROVAL
        assert {j.role: j.status for j in record.jobs}["prep"] is JobStatus.AWAITING_APPROVAL
        with pytest.raises(errors.ApprovalDenied, match="four-eyes"):
            await strict.approve_mission(record.id, by="me")
        approved = await single.approve_mission(record.id, by="me", comment="alone on call")
        assert approved.approval is not None and approved.approval.decided_by == "me"
        assert approved.status is MissionStatus.QUEUED  # nothing ran yet
        assert {j.role: j.status for j in approved.jobs}["prep"] is JobStatus.QUEUED
        with pytest.raises(errors.NotAwaitingApproval, match="already decided: APPROVED"):
            await single.reject_mission(record.id, "too late", by="me")
        with pytest.raises(errors.MissionError, match="reason"):
            await single.reject_mission(record.id, "  ", by="other")
    finally:
        await strict.close()
        await single.close()


# --- exactly once ---


async def test_two_approvers_racing_give_exactly_one_decision(
    api: RunningApi, service: MissionService, hub: PubSubHub, worker: MissionWorker
) -> None:
    mission_id = await deploy(api, "always")
    await events_until(service, hub, mission_id, "approval.requested")
    calls = [
        decide(api, key, mission_id, verb, f"{verb} by {key}")
        for _ in range(5)
        for key in (APPROVER, APPROVER_2)
        for verb in ("approve", "reject")
    ]
    results = await asyncio.gather(*calls)
    kinds = [r["__typename"] for r in results]
    winners = [r for r in results if r["__typename"] in ("MissionApproved", "MissionRejected")]
    assert len(winners) == 1, kinds
    assert kinds.count("NotAwaitingApproval") == len(calls) - 1
    events = await events_until(service, hub, mission_id)
    (decision,) = decisions(events)
    won = winners[0]["mission"]["approval"]
    assert (decision.data["decidedBy"], decision.data["comment"]) == (won["decidedBy"], won["comment"])
    assert events[-1].type == ("mission.succeeded" if decision.type == "approval.granted" else "mission.failed")


async def test_approvals_racing_the_timeout_give_exactly_one_decision(
    api: RunningApi, service: MissionService, hub: PubSubHub, worker: MissionWorker
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        await _race_the_timeout(stack, api, service, hub)


async def _race_the_timeout(
    stack: contextlib.AsyncExitStack, api: RunningApi, service: MissionService, hub: PubSubHub
) -> None:
    mission_id = await deploy(api, "quick_reject")
    http = await stack.enter_async_context(client(APPROVER))  # made now: a client's setup takes CPU
    requested = (await events_until(service, hub, mission_id, "approval.requested"))[-1]
    loop = asyncio.get_running_loop()
    # the gate's deadline (Redis's clock, on this machine) on this loop's clock
    deadline = loop.time() + requested.data["deadline"] / 1000 - datetime.now().timestamp()

    async def approve_at(delta: float) -> str:
        await asyncio.sleep(max(0.0, deadline + delta - loop.time()))
        return str((await decide(api, APPROVER, mission_id, http=http))["__typename"])

    # a burst of approvals from 100 ms before the gate's deadline to 100 ms after, while the worker's
    # timeout job fires at it
    answers = await asyncio.gather(*(approve_at(k / 100) for k in range(-10, 11)))
    events = await events_until(service, hub, mission_id)
    (decision,) = decisions(events)
    record = await service.get_mission(mission_id)
    assert record is not None and record.approval is not None
    if "MissionApproved" in answers:
        assert answers.count("MissionApproved") == 1
        assert record.approval.state is ApprovalState.APPROVED and decision.type == "approval.granted"
        assert record.status is MissionStatus.SUCCEEDED
    else:
        assert record.approval.state is ApprovalState.TIMED_OUT and decision.type == "approval.timed_out"
        assert record.status is MissionStatus.FAILED
    assert set(answers) <= {"MissionApproved", "NotAwaitingApproval"}, answers
    print(f"{answers.count('MissionApproved')} approval won; {decision.type}")


async def test_a_decision_after_the_deadline_gets_the_timeouts_decision_even_with_no_worker(
    service: MissionService,
) -> None:
    record, _ = await service.deploy("root_quick", deployed_by="deployer")
    assert record.approval is not None and record.approval.deadline is not None
    # no worker runs, so no timeout job fires: only time passes
    await asyncio.sleep(max(0.0, record.approval.deadline.timestamp() - datetime.now().timestamp()) + 0.05)
    with pytest.raises(errors.NotAwaitingApproval, match="TIMED_OUT"):
        await service.reject_mission(record.id, "too late", by="approver")
    after = await service.get_mission(record.id)
    assert after is not None and after.approval is not None
    assert after.approval.state is ApprovalState.TIMED_OUT and after.approval.approved is True
    assert after.approval.decided_by is None
    assert {j.role: j.status for j in after.jobs}["prep"] is JobStatus.QUEUED  # on_timeout: approve
    assert await service.redis.zcard(service.keys.approvals) == 0


# --- the timeout ---


@pytest.mark.parametrize(("template", "end"), [("quick_approve", "SUCCEEDED"), ("quick_reject", "FAILED")])
async def test_the_timeout_takes_on_timeout_at_its_moment(
    api: RunningApi,
    service: MissionService,
    hub: PubSubHub,
    worker: MissionWorker,
    template: str,
    end: str,
) -> None:
    mission_id = await deploy(api, template)
    events = await events_until(service, hub, mission_id)
    requested = next(e for e in events if e.type == "approval.requested")
    (timed_out,) = decisions(events)
    assert timed_out.type == "approval.timed_out" and timed_out.data["decidedBy"] is None
    late = timed_out.at.timestamp() - requested.data["deadline"] / 1000
    assert 0 <= late < 3, late  # Redis's clock, both of them
    seen = await mission(api, mission_id)
    assert seen["status"] == end
    assert seen["approval"]["state"] == "TIMED_OUT" and seen["approval"]["decidedBy"] is None
    assert seen["approval"]["approved"] is (end == "SUCCEEDED")
    if end == "FAILED":
        act = next(j for j in seen["jobs"] if j["role"] == "act")
        assert act["status"] == "SKIPPED" and act["error"] == "no decision within 2 s: rejected by the timeout"


async def test_a_mission_cancelled_at_its_gate_withdraws_it_and_leaves_no_timer(
    api: RunningApi, service: MissionService, hub: PubSubHub, worker: MissionWorker
) -> None:
    mission_id = await deploy(api, "always")
    await events_until(service, hub, mission_id, "approval.requested")
    cancelled = await service.cancel_mission(mission_id)
    assert cancelled.status is MissionStatus.CANCELLED
    assert cancelled.approval is not None and cancelled.approval.state is ApprovalState.WITHDRAWN
    keys = service.keys
    assert await service.redis.zcard(keys.approvals) == 0
    assert keys.approval_job_id(mission_id) not in await service.redis.zrange(keys.queue, 0, -1)
    answer = await decide(api, APPROVER, mission_id)
    assert answer["__typename"] == "NotAwaitingApproval" and "ended (CANCELLED)" in answer["message"]


# --- when the gate applies ---


@pytest.mark.parametrize(
    ("config", "gated"),
    [
        ({}, False),  # medium risk, the default budget
        ({"budget": 100}, False),  # not above
        ({"risk": {"level": "low"}, "budget": 50}, False),
        ({"risk": {"level": "high"}}, True),
        ({"budget": "100.01"}, True),
    ],
)
async def test_when_conditions_gate_only_when_met(
    api: RunningApi,
    service: MissionService,
    hub: PubSubHub,
    worker: MissionWorker,
    config: dict[str, Any],
    gated: bool,
) -> None:
    async with client(OPERATOR) as http:  # the launch dialog's dry run says what the deploy will do
        planned = (await data(http, api.url, PLAN, t="gated", config=config))["planMission"]["approval"]
    assert planned == ({"before": ["B"], "timeout": 60, "onTimeout": "reject"} if gated else None)
    mission_id = await deploy(api, "gated", config)
    if gated:
        await events_until(service, hub, mission_id, "approval.requested")
        assert (await decide(api, APPROVER, mission_id))["__typename"] == "MissionApproved"
    events = await events_until(service, hub, mission_id)
    assert events[-1].type == "mission.succeeded"
    assert any(e.type == "approval.requested" for e in events) is gated
    seen = await mission(api, mission_id)
    assert (seen["approval"] is not None) is gated
    if not gated:
        answer = await decide(api, APPROVER, mission_id)
        assert answer["__typename"] == "NotAwaitingApproval" and "has no approval gate" in answer["message"]


def crash_protocol() -> Template:
    return TemplateRegistry.load(DEFAULT_TEMPLATES).get("mission_002")


@pytest.mark.parametrize(
    ("overrides", "gated"),
    [
        ({}, True),  # its default risk level is high
        ({"risk": {"level": "medium"}}, False),
        ({"risk": {"level": "critical"}}, True),
        ({"risk": {"level": "low"}, "budget": 1000}, False),
        ({"risk": {"level": "low"}, "budget": 1000.01}, True),
    ],
)
def test_crash_protocol_gates_finance_at_high_risk_or_above_its_default_budget(
    overrides: dict[str, Any], gated: bool
) -> None:
    template = crash_protocol()
    plan = build_plan(template, merge_config(template, overrides, max_inputs_bytes=65536))
    assert plan.gated == (("liquidator",) if gated else ())


# --- the template block ---


def problems_of(template: dict[str, Any]) -> list[str]:
    _, problems = parse_templates({"templates": [template]}, verify_agents=False)
    return [f"{p.field}: {p.reason}" for p in problems]


def test_the_block_is_validated_like_the_rest_of_the_file() -> None:
    assert problems_of(gated_template("fine")) == []
    unknown = gated_template("x")
    unknown["approval"]["before"] = ["B", "Legal"]
    assert problems_of(unknown) == ["approval.before: unknown department 'Legal' (squad has ['A', 'B', 'C', 'D'])"]
    too_long = gated_template("x", timeout=601)
    assert problems_of(too_long) == [
        "approval.timeout: 601 s is beyond the TTL limits (at most 600 s): the mission would always end "
        "before the gate's on_timeout"
    ]
    no_limits = {k: v for k, v in gated_template("x", timeout=121).items() if k != "limits"}  # up to the default
    assert [p.split(":")[0] for p in problems_of(no_limits)] == ["approval.timeout"]
    for bad, where in (
        ({"on_timeout": "maybe"}, "approval.on_timeout"),
        ({"timeout": 0}, "approval.timeout"),
        ({"before": []}, "approval.before"),
        ({"when": {}}, "approval.when"),
        ({"when": {"risk_levels": ["extreme"]}}, "approval.when.risk_levels[0]"),
        ({"unless": {}}, "approval.unless"),
    ):
        broken = gated_template("x")
        broken["approval"] = {**broken["approval"], **bad}
        assert [p.split(":")[0] for p in problems_of(broken)] == [where], (bad, problems_of(broken))


def test_the_block_is_part_of_the_outcome_logic_hash() -> None:
    template = Template.model_validate(gated_template("x"))
    hashed = outcome_logic_hash(template)
    assert hashed != outcome_logic_hash(template.model_copy(update={"approval": None}))
    declared = {**gated_template("x"), "outcome_logic_hash": hashed}
    assert problems_of(declared) == []
    declared["approval"] = {**declared["approval"], "on_timeout": "approve"}  # edited without review
    assert [p.split(":")[0] for p in problems_of(declared)] == ["outcome_logic_hash"]
    # the shipped file's Crash Protocol declares the hash of its block
    crash = crash_protocol()
    assert crash.approval is not None and crash.approval.before == ["Finance"]


# --- across restarts (real child processes; Redis keeps an append-only file) ---


@pytest.mark.timeout(90)
async def test_the_timeout_survives_a_worker_kill_and_a_redis_restart(tmp_path: Path) -> None:
    path = tmp_path / "templates.json"
    slow = {**gated_template("restart"), "approval": {"before": ["A"], "timeout": 5, "on_timeout": "approve"}}
    path.write_text(json.dumps({"templates": [slow]}))
    local = LocalRedis(port=free_port(), data_dir=tmp_path / "redis").start()
    procs = Processes(tmp_path)
    try:
        worker = procs.worker(local.url, templates_path=path)
        await worker.wait_ready()
        settings = Settings(redis_url=local.url, templates_path=path)
        service = MissionService(settings)
        try:
            crossing, _ = await service.deploy("restart", deployed_by="deployer")  # its gate is reached now
            assert crossing.approval is not None and crossing.approval.deadline is not None
        finally:
            await service.close()
        # 1. the worker dies and Redis restarts before the gate's deadline
        assert worker.kill() == -9
        redis_process = local.process
        assert redis_process is not None
        local.stop()  # SIGTERM: Redis writes its append-only file
        assert redis_process.returncode == 0
        local.start()
        worker = procs.worker(local.url, templates_path=path)
        await worker.wait_ready()
        service = MissionService(settings)
        try:
            first = await _ended(service, crossing.id)
            # 2. no worker at all across the next gate's deadline: the next worker takes it at once
            waiting, _ = await service.deploy("restart", deployed_by="deployer")
            assert waiting.approval is not None and waiting.approval.deadline is not None
            assert worker.kill() == -9
            await asyncio.sleep(max(0.0, waiting.approval.deadline.timestamp() - datetime.now().timestamp()) + 0.5)
            pending = await service.get_mission(waiting.id)
            assert pending is not None and pending.approval is not None
            assert pending.approval.state is ApprovalState.PENDING  # no one to time it out
            worker = procs.worker(local.url, templates_path=path)
            await worker.wait_ready()
            second = await _ended(service, waiting.id)
        finally:
            await service.close()
        assert procs.tracebacks() == []
    finally:
        procs.close()
        local.stop()
    late = first.at.timestamp() - crossing.approval.deadline.timestamp()
    assert 0 <= late < 3, late  # the timeout kept its moment through the restarts
    assert second.at.timestamp() - waiting.approval.deadline.timestamp() >= 0.5


async def _ended(service: MissionService, mission_id: str) -> Event:
    """Wait for the mission to succeed (its gate approved by the timeout); returns the decision's event."""

    async def over() -> bool:
        return await service.store.status(mission_id) is MissionStatus.SUCCEEDED

    await eventually(over, timeout=30, interval=0.05)
    record = await service.get_mission(mission_id)
    assert record is not None and record.approval is not None
    assert record.approval.state is ApprovalState.TIMED_OUT and record.approval.approved is True
    events = await service.store.events(mission_id)
    assert gap_free_problems(mission_id, events, record.seq) == []
    (decision,) = decisions(events)
    assert decision.type == "approval.timed_out"
    return decision


# --- the command line ---


async def test_approve_and_reject_from_the_command_line(
    api: RunningApi, service: MissionService, hub: PubSubHub, worker: MissionWorker
) -> None:
    first, second = await deploy(api, "always"), await deploy(api, "always")
    for mission_id in (first, second):
        await events_until(service, hub, mission_id, "approval.requested")
    url = ["--url", api.url]
    code, _, err = await cli_async("approve", first, *url, MISSION_API_KEY=OPERATOR)
    assert code == 1 and "may not decide approvals" in err
    code, out, _ = await cli_async("approve", first, "--comment", "go", *url, MISSION_API_KEY=APPROVER)
    assert code == 0, out
    assert out.strip() == f"mission {first} approved by key {key_id(APPROVER)}: gate APPROVED, mission RUNNING"
    code, _, err = await cli_async("reject", first, "--comment", "wait", *url, MISSION_API_KEY=APPROVER_2)
    assert code == 1 and "already decided: APPROVED" in err
    code, _, err = await cli_async("reject", second, *url, MISSION_API_KEY=APPROVER)
    assert code == 2 and "--comment" in err  # a rejection says why
    code, out, _ = await cli_async("reject", second, "--comment", "not now", *url, MISSION_API_KEY=APPROVER)
    assert code == 0 and f"mission {second} rejected by key {key_id(APPROVER)}: gate REJECTED" in out
    record = await service.get_mission(second)
    assert record is not None and record.approval is not None and record.approval.comment == "not now"


async def test_open_mode_allows_approval_and_says_so_in_the_log(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    open_settings = settings.model_copy(update={"api_keys": {}})
    service = MissionService(open_settings)
    try:
        async with serve_api(open_settings) as api, httpx.AsyncClient(timeout=10) as http:
            record, _ = await service.deploy("root_gate", deployed_by="open")  # as the open API would
            with caplog.at_level("WARNING", logger="mission.api"):
                result = (await data(http, api.url, APPROVE, id=record.id, comment="alone"))["approveMission"]
            assert result["__typename"] == "MissionApproved", result
            assert result["mission"]["approval"]["decidedBy"] == "open"
            assert f"approval of mission {record.id} in open mode (no API keys): no four-eyes check" in caplog.text
    finally:
        await service.close()


def test_a_department_held_at_the_gate_shows_it() -> None:
    assert department_status([JobStatus.AWAITING_APPROVAL] * 2) is JobStatus.AWAITING_APPROVAL
    for status in JobStatus:  # every status speaks for a department somehow (none raises)
        assert department_status([status]) is status


async def test_bad_decisions_get_a_clear_error_and_change_nothing(api: RunningApi, service: MissionService) -> None:
    record, _ = await service.deploy("root_gate", deployed_by="deployer")
    async with client(APPROVER) as http:
        for query, variables, expected in (
            (REJECT, {"reason": "x" * 2001}, "reason: at most 2000 characters of text"),
            (REJECT, {"reason": "   "}, "reason: say why the mission is rejected"),
            (APPROVE, {"comment": "y" * 2001}, "comment: at most 2000 characters of text"),
            (APPROVE, {"comment": "\ud800"}, "comment: at most 2000 characters of text"),
        ):
            payload = json.dumps({"query": query, "variables": {"id": record.id, **variables}})  # \ud800 escaped
            response = await http.post(api.url, content=payload, headers={"content-type": "application/json"})
            assert response.status_code == 200
            body = response.json()
            assert [e["message"] for e in body["errors"]] == [expected]
        malformed = (await data(http, api.url, APPROVE, id="not-a-mission" * 50, comment=None))["approveMission"]
        assert malformed["__typename"] == "MissionNotFound"
        template = await data(
            http,
            api.url,
            'query { template(id: "gated") { approval { before when { riskLevels budgetAbove } timeout onTimeout } } }',
        )
    assert template["template"]["approval"] == {
        "before": ["B"],
        "when": {"riskLevels": ["high"], "budgetAbove": "100"},
        "timeout": 60,
        "onTimeout": "reject",
    }
    after = await service.get_mission(record.id)
    assert after is not None and after.approval is not None and after.approval.state is ApprovalState.PENDING
