"""Mission Control in a real browser: Debian's chromium, driven by playwright, against the real
service (uvicorn, Redis, ARQ workers). Elements are found by role and accessible name, as a person
with a screen reader finds them; every request the page makes must stay on the service's origin.

The service runs the shipped templates (Crash Protocol…) plus the test suite's (``hang``, an agent
that runs until stopped; ``two_stage``). Skipped only when /usr/bin/chromium is missing.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, WebSocketRoute, async_playwright, expect

from config.settings import ApiKeyGrant, Settings
from tests.conftest import TEST_TEMPLATES, RunningApi, StartWorker, eventually, serve_api
from tests.test_graphiql_browser import CHROMIUM, CHROMIUM_ARGS, Traffic, chromium  # noqa: F401 — a fixture

pytestmark = pytest.mark.timeout(120)

SHIPPED_TEMPLATES = Path(__file__).resolve().parent.parent / "config" / "mission_templates.json"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

DEPLOY = """mutation ($t: ID!, $config: MissionConfigInput) { deployMission(templateId: $t, config: $config) {
  __typename ... on MissionDeployed { mission { id } } } }"""
MISSION = "query ($id: ID!) { mission(id: $id) { status eventCount } }"
COUNT = "{ missions { totalCount } }"

OPERATOR_KEY = "ui-operator-key-5c1f"
VIEWER_KEY = "ui-viewer-key-9e2d"


@pytest.fixture
def ui_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The shipped templates and the tests' together."""
    templates = [*json.loads(SHIPPED_TEMPLATES.read_text())["templates"]]
    templates += json.loads(TEST_TEMPLATES.read_text())["templates"]
    path = tmp_path / "templates.json"
    path.write_text(json.dumps({"templates": templates}))
    return settings.model_copy(update={"templates_path": path})


@pytest.fixture
async def ui_api(ui_settings: Settings) -> AsyncIterator[RunningApi]:
    async with serve_api(ui_settings) as running:
        yield running


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:  # noqa: F811 — uses the imported fixture
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15) as client:
        yield client


def root(api: RunningApi) -> str:
    return api.url.removesuffix("graphql")  # http://127.0.0.1:<port>/


async def open_page(browser: Browser, traffic: Traffic, viewport: dict[str, int] = DESKTOP) -> Page:
    page = await browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    page.set_default_timeout(15_000)
    traffic.watch(page)
    return page


async def call(http: httpx.AsyncClient, api: RunningApi, query: str, key: str = "", **variables: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = await http.post(api.url, json={"query": query, "variables": variables}, headers=headers)
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def deploy(
    http: httpx.AsyncClient, api: RunningApi, template: str, key: str = "", config: dict[str, Any] | None = None
) -> str:
    answer = (await call(http, api, DEPLOY, key, t=template, config=config))["deployMission"]
    assert answer["__typename"] == "MissionDeployed", answer
    mission_id: str = answer["mission"]["id"]
    return mission_id


def assert_stayed_home(traffic: Traffic, api: RunningApi, allowed_errors: tuple[str, ...] = ()) -> None:
    """Every request and websocket went to the service's own origin; the page logged no error."""
    origin = urlsplit(api.url).netloc
    assert traffic.requests, "no request recorded"
    for url in traffic.requests:
        parts = urlsplit(url)
        assert parts.scheme == "http" and parts.netloc == origin, f"request off the service's origin: {url}"
    for url in traffic.websockets:
        parts = urlsplit(url)
        assert (parts.scheme, parts.netloc, parts.path) == ("ws", origin, "/graphql"), url
    errors = [e for e in traffic.errors if not any(a in e for a in allowed_errors)]
    assert not errors, errors


async def test_library_filters_by_sector_and_search_kept_in_the_url(browser: Browser, ui_api: RunningApi) -> None:
    traffic = Traffic()
    page = await open_page(browser, traffic)
    await page.goto(root(ui_api))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Mission Control")
    cards = page.get_by_role("article")
    await expect(cards.filter(has=page.get_by_role("heading", name="Crash Protocol", exact=True))).to_have_count(1)
    await expect(cards.filter(has_text="Emergency liquidation")).to_contain_text("Security, Finance")

    await page.get_by_label("Sector", exact=True).select_option("Finance")
    await expect(cards.get_by_role("heading", level=3)).to_have_text(["Crash Protocol"])
    assert "sector=Finance" in page.url

    await page.reload()  # the filter lives in the URL
    await expect(page.get_by_label("Sector", exact=True)).to_have_value("Finance")
    await expect(cards.get_by_role("heading", level=3)).to_have_text(["Crash Protocol"])

    await page.get_by_label("Sector", exact=True).select_option("")
    await page.get_by_label("Search", exact=True).fill("fair value")
    await expect(cards.get_by_role("heading", level=3)).to_have_text(["Fair Value Consensus"])
    assert "q=fair+value" in page.url and "sector=" not in page.url
    await page.get_by_label("Search", exact=True).fill("no template says this")
    await expect(page.get_by_text("No template matches these filters.")).to_be_visible()
    assert_stayed_home(traffic, ui_api)


async def test_launch_shows_the_budget_problem_then_deploys_once_and_the_flow_succeeds(
    browser: Browser, ui_api: RunningApi, start_worker: StartWorker, http: httpx.AsyncClient
) -> None:
    await start_worker()
    traffic = Traffic()
    page = await open_page(browser, traffic)
    await page.goto(root(ui_api))
    card = page.get_by_role("article", name="Crash Protocol")
    await card.get_by_role("button", name="Launch").click()

    dialog = page.get_by_role("dialog", name="Crash Protocol")
    budget = dialog.get_by_label("Budget", exact=True)
    await expect(budget).to_have_value("1000.00")
    await expect(dialog.get_by_label("TTL", exact=True)).to_have_value("600")
    await expect(dialog.get_by_label("Risk level", exact=True)).to_have_value("high")
    await expect(dialog.get_by_label("Max drawdown", exact=True)).to_have_value("0.2")
    await expect(dialog.get_by_label("Inputs", exact=True)).to_have_value(re.compile('"accounts"'))
    await expect(budget).to_have_accessible_description(re.compile("100.00 – 50000.00"))  # the template's limits
    # The squad preview: every agent, its department, stage and allocation, from the dry-run plan.
    await expect(dialog.get_by_role("row", name=re.compile("sentinel"))).to_contain_text("Security")
    await expect(dialog.get_by_role("row", name=re.compile("sentinel"))).to_contain_text("300.00")
    await expect(dialog.get_by_role("row", name=re.compile("liquidator"))).to_contain_text("700.00")

    await budget.fill("99999999")
    await dialog.get_by_role("button", name="Deploy").click()
    await expect(budget).to_have_attribute("aria-invalid", "true")
    await expect(budget).to_have_accessible_description(
        re.compile(r"99999999 is outside this template's range 100\.\.50000")
    )
    assert (await call(http, ui_api, COUNT))["missions"]["totalCount"] == 0

    await budget.fill("5000")
    await expect(dialog.get_by_role("row", name=re.compile("liquidator"))).to_contain_text("3500.00")
    await expect(budget).not_to_have_attribute("aria-invalid", "true")
    await dialog.get_by_role("button", name="Deploy").dblclick()  # one dialog, one idempotency key: one mission

    await expect(page).to_have_url(re.compile(r"\?mission=mssn_"))
    # A budget above 1000 gates Finance (README, "Approval gates"); with no keys anyone may decide.
    await expect(page.get_by_role("group", name="Finance department")).to_contain_text(
        "AWAITING_APPROVAL", timeout=20_000
    )
    await page.get_by_role("region", name="Approval gate").get_by_role("button", name="Approve").click()
    await page.get_by_role("dialog", name="Approve this mission?").get_by_role("button", name="Approve mission").click()
    for department in ("Security", "Finance"):
        node = page.get_by_role("group", name=f"{department} department")
        await expect(node).to_contain_text("SUCCEEDED", timeout=20_000)
    await expect(page.get_by_role("status", name="Mission status")).to_have_text("SUCCEEDED")
    await expect(page.get_by_role("log")).to_contain_text("mission.succeeded")
    await expect(page.get_by_role("list", name="Job runs").get_by_role("listitem")).to_have_count(2)

    await page.get_by_role("button", name=re.compile("liquidator")).click()
    details = page.get_by_role("complementary", name="Agent details")
    await expect(details).to_contain_text("finance.liquidate")
    await expect(details).to_contain_text("of 3500.00")
    await expect(details.locator("pre")).to_contain_text("tranches")

    assert (await call(http, ui_api, COUNT))["missions"]["totalCount"] == 1
    assert_stayed_home(traffic, ui_api)


async def test_cancel_a_slow_mission_from_the_tracker(
    browser: Browser, ui_api: RunningApi, start_worker: StartWorker, http: httpx.AsyncClient
) -> None:
    await start_worker()
    mission_id = await deploy(http, ui_api, "hang")
    traffic = Traffic()
    page = await open_page(browser, traffic)
    await page.goto(f"{root(ui_api)}?template=hang")
    await expect(page.get_by_label("Template", exact=True)).to_have_value("hang")
    row = page.get_by_role("listitem", name=re.compile(mission_id))
    await expect(row).to_contain_text("RUNNING")  # live: the worker picked it up
    await expect(row).to_contain_text("0/2 jobs")

    await row.get_by_role("button", name="Cancel").click()
    confirm = page.get_by_role("alertdialog", name="Cancel this mission?")
    await confirm.get_by_role("button", name="Cancel mission").click()
    await expect(row).to_contain_text("CANCELLED")
    await expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
    assert (await call(http, ui_api, MISSION, id=mission_id))["mission"]["status"] == "CANCELLED"
    assert_stayed_home(traffic, ui_api)


async def test_a_viewer_key_sees_no_launch_and_no_cancel(
    browser: Browser, ui_settings: Settings, start_worker: StartWorker, http: httpx.AsyncClient
) -> None:
    keys = {
        OPERATOR_KEY: ApiKeyGrant(tenant="acme", role="operator"),
        VIEWER_KEY: ApiKeyGrant(tenant="acme", role="viewer"),
    }
    async with serve_api(ui_settings.model_copy(update={"api_keys": keys})) as api:
        await start_worker()
        mission_id = await deploy(http, api, "hang", OPERATOR_KEY)
        traffic = Traffic()
        page = await open_page(browser, traffic)
        await page.goto(root(api))
        await expect(page.get_by_role("alert")).to_contain_text("refused")  # no key yet

        key = page.get_by_label("API key", exact=True)
        await key.fill(VIEWER_KEY)
        await page.get_by_role("button", name="Use key").click()
        await expect(page.get_by_text("viewer · acme")).to_be_visible()
        row = page.get_by_role("listitem", name=re.compile(mission_id))
        await expect(row).to_contain_text("RUNNING")
        await expect(page.get_by_role("article", name="Crash Protocol")).to_be_visible()
        await expect(page.get_by_role("button", name="Launch")).to_have_count(0)
        await expect(row.get_by_role("button", name="Cancel")).to_have_count(0)

        await page.reload()  # the key is kept for the tab (sessionStorage)
        await expect(page.get_by_text("viewer · acme")).to_be_visible()

        await page.get_by_label("API key", exact=True).fill(OPERATOR_KEY)
        await page.get_by_role("button", name="Use key").click()
        await expect(page.get_by_text("operator · acme")).to_be_visible()
        await expect(
            page.get_by_role("article", name="Crash Protocol").get_by_role("button", name="Launch")
        ).to_be_visible()
        await expect(row.get_by_role("button", name="Cancel")).to_be_visible()

        await page.get_by_label("API key", exact=True).fill("not-a-key")
        await page.get_by_role("button", name="Use key").click()
        await expect(page.get_by_role("alert").first).to_contain_text("refused this API key")
        await expect(page.get_by_role("button", name="Launch")).to_have_count(0)
        assert_stayed_home(traffic, api, allowed_errors=("401",))


async def test_a_dropped_websocket_resumes_without_losing_events(
    browser: Browser, ui_api: RunningApi, start_worker: StartWorker, http: httpx.AsyncClient
) -> None:
    """The page's websocket goes through a relay the test controls: it is cut, refused while the
    mission runs, then let through. The page must say it is reconnecting, subscribe again after the
    last event it saw, and end with every event exactly once."""
    mission_id = await deploy(http, ui_api, "two_stage")  # no worker yet: it waits, QUEUED
    first = (await call(http, ui_api, MISSION, id=mission_id))["mission"]["eventCount"]
    down = asyncio.Event()
    relays: list[tuple[WebSocketRoute, WebSocketRoute]] = []
    subscribes: list[dict[str, Any]] = []

    async def relay(ws: WebSocketRoute) -> None:
        if down.is_set():
            await ws.close(code=1012, reason="service restarting")
            return
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            frame = json.loads(message)
            if frame.get("type") == "subscribe" and "missionEvents" in frame["payload"]["query"]:
                subscribes.append(frame["payload"]["variables"])
            server.send(message)

        ws.on_message(from_page)
        relays.append((ws, server))

    traffic = Traffic()
    page = await open_page(browser, traffic)
    await page.route_web_socket(re.compile(r"/graphql$"), relay)
    await page.goto(f"{root(ui_api)}?mission={mission_id}")
    log = page.get_by_role("log")
    await expect(log.get_by_role("listitem")).to_have_count(first)

    down.set()
    for ws, server in relays:
        await server.close(code=1012, reason="service restarting")
        await ws.close(code=1012, reason="service restarting")
    await expect(page.get_by_text("reconnecting")).to_be_visible()

    await start_worker()  # the mission runs to its end while the page is cut off

    async def ended() -> bool:
        return (await call(http, ui_api, MISSION, id=mission_id))["mission"]["status"] == "SUCCEEDED"

    await eventually(ended, timeout=20)
    last = (await call(http, ui_api, MISSION, id=mission_id))["mission"]["eventCount"]
    assert last > first
    down.clear()

    await expect(log).to_contain_text("mission.succeeded", timeout=20_000)
    await expect(page.get_by_text("reconnecting")).to_have_count(0)
    seqs = [int(s) for s in await log.locator(".seq").all_inner_texts()]
    assert seqs == list(range(1, last + 1)), seqs  # nothing lost, nothing twice
    assert subscribes[0]["afterSeq"] == 0
    assert subscribes[-1]["afterSeq"] == first, subscribes  # resumed after the last event it had
    await expect(page.get_by_role("group", name="Down department")).to_contain_text("SUCCEEDED")
    assert_stayed_home(traffic, ui_api)


async def test_the_timeline_shows_every_try_of_a_retried_job(
    browser: Browser, ui_api: RunningApi, start_worker: StartWorker, http: httpx.AsyncClient
) -> None:
    await start_worker()
    mission_id = await deploy(http, ui_api, "flaky")  # fails twice, succeeds on its third try
    traffic = Traffic()
    page = await open_page(browser, traffic)
    await page.goto(f"{root(ui_api)}?mission={mission_id}")
    await expect(page.get_by_role("status", name="Mission status")).to_have_text("SUCCEEDED")
    runs = page.get_by_role("list", name="Job runs").get_by_role("listitem")
    await expect(runs).to_have_count(3)
    await expect(runs).to_contain_text(["try 1", "try 2", "try 3"])
    await expect(runs.nth(0)).to_contain_text("RETRYING")
    await expect(runs.nth(2)).to_contain_text("SUCCEEDED")
    await page.get_by_role("button", name=re.compile("flake")).click()
    details = page.get_by_role("complementary", name="Agent details")
    await expect(details).to_contain_text("Attempts3")
    await expect(details.locator("pre")).to_contain_text('"succeeded_on": 3')
    assert_stayed_home(traffic, ui_api)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280x800", "390x844"])
async def test_the_page_fits_desktop_and_phone(
    browser: Browser,
    ui_api: RunningApi,
    start_worker: StartWorker,
    http: httpx.AsyncClient,
    viewport: dict[str, int],
) -> None:
    await start_worker()
    ungated = {"risk": {"level": "medium"}}  # and the default budget, 1000: no approval gate
    mission_id = await deploy(http, ui_api, "mission_002", config=ungated)
    traffic = Traffic()
    page = await open_page(browser, traffic, viewport)
    overflow = "() => document.documentElement.scrollWidth - window.innerWidth"

    await page.goto(root(ui_api))
    await expect(page.get_by_role("heading", level=1)).to_be_in_viewport()
    await expect(page.get_by_role("listitem", name=re.compile(mission_id))).to_contain_text("SUCCEEDED")
    assert await page.evaluate(overflow) <= 0, "the page scrolls sideways"

    launch = page.get_by_role("article", name="Crash Protocol").get_by_role("button", name="Launch")
    await launch.scroll_into_view_if_needed()
    await launch.click()
    dialog = page.get_by_role("dialog", name="Crash Protocol")
    box = await dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
    deploy_button = dialog.get_by_role("button", name="Deploy")
    await deploy_button.scroll_into_view_if_needed()
    await expect(deploy_button).to_be_in_viewport()
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_have_count(0)

    await page.get_by_role("link", name=re.compile("Crash Protocol")).first.click()
    for department in ("Security", "Finance"):
        node = page.get_by_role("group", name=f"{department} department")
        await expect(node).to_contain_text("SUCCEEDED")
        await expect(node).to_be_in_viewport()
    assert await page.evaluate(overflow) <= 0, "the mission page scrolls sideways"
    assert_stayed_home(traffic, ui_api)
