"""Approval gates in Mission Control, in a real browser (Debian's chromium) against the real service
with API keys: an operator who deploys, approvers of the same tenant, a viewer. Crash Protocol at
high risk holds its Finance stage for a decision; only an approver who did not deploy it sees
"Approve" and "Reject", and the page shows the gate, the decision and its events."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from config.settings import ApiKeyGrant, Settings
from tests.conftest import RunningApi, StartWorker, eventually, serve_api
from tests.test_graphiql_browser import Traffic, chromium  # noqa: F401 — a fixture
from tests.test_ui_browser import (  # noqa: F401 — fixtures
    DESKTOP,
    PHONE,
    assert_stayed_home,
    browser,
    call,
    http,
    open_page,
    root,
    ui_settings,
)

pytestmark = pytest.mark.timeout(120)

OPERATOR_KEY = "ui-gate-operator-3f8a"
APPROVER_KEY = "ui-gate-approver-71c4"
OTHER_APPROVER_KEY = "ui-gate-approver-b20e"
VIEWER_KEY = "ui-gate-viewer-d95e"

DEPLOY = """mutation ($config: MissionConfigInput) { deployMission(templateId: "mission_002", config: $config) {
  __typename ... on MissionDeployed { mission { id } } } }"""
GATE = "query ($id: ID!) { mission(id: $id) { status approval { state decidedBy comment } } }"
REJECT = """mutation ($id: ID!) { rejectMission(id: $id, reason: "decided elsewhere") { __typename } }"""


@pytest.fixture
async def gated_api(ui_settings: Settings) -> AsyncIterator[RunningApi]:  # noqa: F811 — the imported fixture
    keys = {
        OPERATOR_KEY: ApiKeyGrant(tenant="acme", role="operator"),
        APPROVER_KEY: ApiKeyGrant(tenant="acme", role="approver"),
        OTHER_APPROVER_KEY: ApiKeyGrant(tenant="acme", role="approver"),
        VIEWER_KEY: ApiKeyGrant(tenant="acme", role="viewer"),
    }
    async with serve_api(ui_settings.model_copy(update={"api_keys": keys})) as running:
        yield running


async def use_key(page: Page, key: str, who: str) -> None:
    await page.get_by_label("API key", exact=True).fill(key)
    await page.get_by_role("button", name="Use key").click()
    await expect(page.get_by_text(who)).to_be_visible()


async def deploy_gated(http: httpx.AsyncClient, api: RunningApi) -> str:  # noqa: F811
    """Crash Protocol at high risk (its default) with a budget above 1000: gated twice over."""
    answer = await call(http, api, DEPLOY, OPERATOR_KEY, config={"budget": "5000", "risk": {"level": "high"}})
    assert answer["deployMission"]["__typename"] == "MissionDeployed", answer
    mission_id: str = answer["deployMission"]["mission"]["id"]
    return mission_id


async def gate(http: httpx.AsyncClient, api: RunningApi, mission_id: str) -> dict[str, Any]:  # noqa: F811
    mission: dict[str, Any] = (await call(http, api, GATE, APPROVER_KEY, id=mission_id))["mission"]
    return mission


async def test_an_approver_approves_what_the_deploying_operator_and_a_viewer_may_not(
    browser: Browser,  # noqa: F811
    gated_api: RunningApi,
    start_worker: StartWorker,
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    await start_worker()
    traffic = Traffic()
    page = await open_page(browser, traffic)
    await page.goto(root(gated_api))
    await use_key(page, OPERATOR_KEY, "operator · acme")

    # The operator deploys Crash Protocol with its defaults: risk high.
    await page.get_by_role("article", name="Crash Protocol").get_by_role("button", name="Launch").click()
    dialog = page.get_by_role("dialog", name="Crash Protocol")
    await expect(dialog.get_by_label("Risk level", exact=True)).to_have_value("high")
    # the dialog says the deploy will wait for a decision, and stops saying so when the gate's `when` is not met
    gate_note = dialog.get_by_role("status").filter(has_text="Needs approval")
    await expect(gate_note).to_have_text(
        "Needs approval: Finance waits for a decision once upstream succeeds (5m 00s, then rejected by the timeout)"
    )
    await dialog.get_by_label("Risk level", exact=True).select_option("low")
    await expect(gate_note).to_have_count(0)
    await dialog.get_by_label("Risk level", exact=True).select_option("high")
    await expect(gate_note).to_be_visible()
    await dialog.get_by_role("button", name="Deploy").click()
    await expect(page).to_have_url(re.compile(r"\?mission=mssn_"))
    mission_id = page.url.rsplit("=", 1)[1]
    finance = page.get_by_role("group", name="Finance department")
    await expect(finance).to_contain_text("AWAITING_APPROVAL", timeout=20_000)
    await expect(finance).to_contain_text("Awaits approval")
    await expect(page.get_by_role("group", name="Security department")).to_contain_text("SUCCEEDED")
    panel = page.get_by_role("region", name="Approval gate")
    await expect(panel).to_contain_text(re.compile(r"Finance waits for a decision: \d+m \d\ds left, then rejected"))
    await expect(panel.get_by_role("button")).to_have_count(0)  # four-eyes: not the key that deployed it

    await page.get_by_role("link", name="← All missions").click()
    row = page.get_by_role("listitem", name=re.compile(mission_id))
    await expect(row).to_contain_text("AWAITING_APPROVAL")
    await expect(row).to_contain_text("Finance waits for a decision")
    await expect(row.get_by_role("button", name="Approve")).to_have_count(0)
    await expect(row.get_by_role("button", name="Reject")).to_have_count(0)

    await page.get_by_label("Status", exact=True).select_option("AWAITING_APPROVAL")  # a filter, kept in the URL
    assert "status=AWAITING_APPROVAL" in page.url
    await expect(page.get_by_role("list", name="Missions").get_by_role("listitem")).to_have_count(1)

    await use_key(page, VIEWER_KEY, "viewer · acme")
    await expect(row).to_contain_text("AWAITING_APPROVAL")
    await expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    await expect(page.get_by_role("button", name="Reject")).to_have_count(0)

    await use_key(page, APPROVER_KEY, "approver · acme")
    await expect(page.get_by_role("button", name="Launch")).to_have_count(0)  # approvers decide, not deploy
    await row.get_by_role("button", name="Approve", exact=True).click()
    ask = page.get_by_role("dialog", name="Approve this mission?")
    await ask.get_by_label("Comment", exact=True).fill("exposure checked")
    await ask.get_by_role("button", name="Approve mission").click()
    await expect(ask).to_have_count(0)
    await expect(page.get_by_role("status").filter(has_text="Approved: the gated departments run now.")).to_be_visible()

    decided = await gate(http, gated_api, mission_id)
    assert decided["approval"]["state"] == "APPROVED" and decided["approval"]["comment"] == "exposure checked"
    approver_id = decided["approval"]["decidedBy"]
    assert approver_id and approver_id not in APPROVER_KEY  # the key's id, never the key

    await page.get_by_label("Status", exact=True).select_option("")
    await expect(row).to_contain_text(f"Approved by {approver_id}: “exposure checked”")
    await expect(row.get_by_role("button", name="Approve")).to_have_count(0)
    await expect(row).to_contain_text("SUCCEEDED", timeout=20_000)

    await row.get_by_role("link").click()
    for department in ("Security", "Finance"):
        await expect(page.get_by_role("group", name=f"{department} department")).to_contain_text("SUCCEEDED")
    await expect(page.get_by_role("status", name="Mission status")).to_have_text("SUCCEEDED")
    await expect(page.get_by_role("group", name="Finance department")).to_contain_text(f"Approved by {approver_id}")
    await expect(page.get_by_role("region", name="Approval gate")).to_contain_text("exposure checked")
    log = page.get_by_role("log")
    for event in ("job.awaiting_approval", "approval.requested", "approval.granted", "mission.succeeded"):
        await expect(log).to_contain_text(event)
    assert_stayed_home(traffic, gated_api, allowed_errors=("401",))


async def test_a_rejection_needs_a_reason_skips_finance_and_ends_the_mission(
    browser: Browser,  # noqa: F811
    gated_api: RunningApi,
    start_worker: StartWorker,
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    await start_worker()
    mission_id = await deploy_gated(http, gated_api)
    traffic = Traffic()
    page = await open_page(browser, traffic)
    await page.goto(f"{root(gated_api)}?mission={mission_id}")
    await use_key(page, APPROVER_KEY, "approver · acme")
    panel = page.get_by_role("region", name="Approval gate")
    await expect(page.get_by_role("status", name="Mission status")).to_have_text("AWAITING_APPROVAL", timeout=20_000)

    await panel.get_by_role("button", name="Reject", exact=True).click()
    ask = page.get_by_role("dialog", name="Reject this mission?")
    reason = ask.get_by_label("Reason", exact=True)
    await ask.get_by_role("button", name="Reject mission").click()  # no reason: refused before sending
    await expect(reason).to_have_attribute("aria-invalid", "true")
    await expect(reason).to_have_accessible_description(re.compile("needs a reason"))
    assert (await gate(http, gated_api, mission_id))["approval"]["state"] == "PENDING"

    await reason.fill("exposure too high today")
    await ask.get_by_role("button", name="Reject mission").click()
    await expect(ask).to_have_count(0)
    finance = page.get_by_role("group", name="Finance department")
    await expect(finance).to_contain_text("SKIPPED")
    await expect(page.get_by_role("group", name="Security department")).to_contain_text("SUCCEEDED")
    await expect(page.get_by_role("status", name="Mission status")).to_have_text("FAILED")  # its policy: all
    await expect(panel).to_contain_text("Rejected by")
    await expect(panel).to_contain_text("“exposure too high today”")
    await expect(finance).to_contain_text("Rejected by")
    await expect(panel.get_by_role("button")).to_have_count(0)
    await expect(page.get_by_role("log")).to_contain_text("approval.rejected")
    await expect(page.get_by_role("log")).to_contain_text("mission.failed")
    assert (await gate(http, gated_api, mission_id))["status"] == "FAILED"

    await page.get_by_role("link", name="← All missions").click()
    row = page.get_by_role("listitem", name=re.compile(mission_id))
    await expect(row).to_contain_text("FAILED")
    await expect(row).to_contain_text("ended")
    assert_stayed_home(traffic, gated_api, allowed_errors=("401",))


async def test_a_decision_taken_elsewhere_first_is_said_and_shown(
    browser: Browser,  # noqa: F811
    gated_api: RunningApi,
    start_worker: StartWorker,
    http: httpx.AsyncClient,  # noqa: F811
) -> None:
    """The approver opens "Approve"; meanwhile another approver rejects. The page's approval answers
    NotAwaitingApproval: it says someone else or the timeout decided, and shows the mission as it is."""
    await start_worker()
    mission_id = await deploy_gated(http, gated_api)

    async def awaiting() -> bool:
        return (await gate(http, gated_api, mission_id))["status"] == "AWAITING_APPROVAL"

    await eventually(awaiting, timeout=20)
    traffic = Traffic()
    page = await open_page(browser, traffic)
    await page.goto(root(gated_api))
    await use_key(page, APPROVER_KEY, "approver · acme")
    row = page.get_by_role("listitem", name=re.compile(mission_id))
    await row.get_by_role("button", name="Approve", exact=True).click()
    ask = page.get_by_role("dialog", name="Approve this mission?")
    await expect(ask).to_be_visible()

    answer = await call(http, gated_api, REJECT, OTHER_APPROVER_KEY, id=mission_id)
    assert answer["rejectMission"]["__typename"] == "MissionRejected"
    await ask.get_by_role("button", name="Approve mission").click()
    notice = page.get_by_role("status").filter(has_text="someone else or the timeout decided first")
    await expect(notice).to_be_visible()
    await expect(row).to_contain_text("FAILED")
    await expect(row).to_contain_text("“decided elsewhere”")
    await expect(row.get_by_role("button", name="Approve")).to_have_count(0)
    assert (await gate(http, gated_api, mission_id))["approval"]["state"] == "REJECTED"
    assert_stayed_home(traffic, gated_api, allowed_errors=("401",))


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
async def test_an_awaiting_mission_fits_desktop_and_phone(
    browser: Browser,  # noqa: F811
    gated_api: RunningApi,
    start_worker: StartWorker,
    http: httpx.AsyncClient,  # noqa: F811
    viewport: dict[str, int],
) -> None:
    await start_worker()
    mission_id = await deploy_gated(http, gated_api)
    traffic = Traffic()
    page = await open_page(browser, traffic, viewport)
    await page.goto(root(gated_api))
    await use_key(page, APPROVER_KEY, "approver · acme")
    row = page.get_by_role("listitem", name=re.compile(mission_id))
    await expect(row).to_contain_text("AWAITING_APPROVAL", timeout=20_000)
    for name in ("Approve", "Reject"):
        button = row.get_by_role("button", name=name, exact=True)
        await button.scroll_into_view_if_needed()
        await expect(button).to_be_in_viewport()
    overflow = "() => document.documentElement.scrollWidth - window.innerWidth"
    assert await page.evaluate(overflow) <= 0, "the page scrolls sideways"
    await row.get_by_role("link").click()
    await expect(page.get_by_role("group", name="Finance department")).to_contain_text("AWAITING_APPROVAL")
    await expect(page.get_by_role("region", name="Approval gate").get_by_role("button", name="Approve")).to_be_visible()
    assert await page.evaluate(overflow) <= 0, "the mission page scrolls sideways"
    assert_stayed_home(traffic, gated_api, allowed_errors=("401",))
