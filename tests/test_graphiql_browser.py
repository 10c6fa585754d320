"""GraphiQL in a real browser: Debian's chromium, driven by playwright, against the real service.

The page is loaded with a plain GET of /graphql, then used as a person would: type a query, run it
(Ctrl-Enter), read the result pane. A templates query, a deployMission mutation and a missionEvents
subscription (over the page's own websocket) are run; every request the page makes must stay on the
service's origin, and the page must log no error. Against a server with API keys, the key typed in the
Headers tab goes with the HTTP requests and in the websocket's `connection_init` payload.

Needs Debian's `chromium` at /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it). Playwright's
own browser downloads are never used. The async API is required: the `api` fixture serves uvicorn in this
test's event loop, which the sync API would block.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import ConsoleMessage, Page, Request, WebSocket, async_playwright

from config.settings import ApiKeyGrant, Settings
from tests.conftest import RunningApi, StartWorker, serve_api

pytestmark = pytest.mark.timeout(120)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# GraphiQL 3.9 uses CodeMirror 5: the `.CodeMirror` element carries the editor instance as `el.CodeMirror`.
EDITOR = ".graphiql-query-editor .CodeMirror"
RESULT = ".graphiql-response .CodeMirror"
EXECUTE = "button.graphiql-execute-button"
HEADERS_TAB = "button[data-name='headers']"
HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"

# GraphiQL re-parses the query ~100 ms after a change (debounced) and runs the *parsed* document: wait for it.
PARSED = """() => {
  const cm = document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror;
  return !!cm.documentAST && cm.documentAST.loc.source.body === cm.getValue();
}"""
RESULT_CONTAINS = """(needle) => {
  const el = document.querySelector('.graphiql-response .CodeMirror');
  return !!el && el.CodeMirror.getValue().includes(needle);
}"""

TEMPLATES = '{ templates(sector: "Test") { id name } }'
DEPLOY = (
    'mutation { deployMission(templateId: "two_stage") '
    "{ __typename ... on MissionDeployed { mission { id status } } } }"
)
EVENTS = """subscription {
  missionEvents(missionId: "%s") {
    seq
    missionId
    type
    status
  }
}"""


@dataclass
class Traffic:
    """Everything the page asked for or complained about."""

    requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    frames_sent: list[dict[str, Any]] = field(default_factory=list)
    frames_received: list[dict[str, Any]] = field(default_factory=list)
    frame_arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def watch(self, page: Page) -> None:
        page.on("request", self._request)
        page.on("requestfailed", lambda r: self.failed.append(f"{r.method} {r.url}: {r.failure}"))
        page.on("websocket", self._websocket)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _websocket(self, ws: WebSocket) -> None:
        self.websockets.append(ws.url)
        ws.on("framereceived", self._frame)
        ws.on("framesent", lambda payload: self.frames_sent.append(json.loads(payload)))

    def _frame(self, payload: str | bytes) -> None:
        self.frames_received.append(json.loads(payload))
        self.frame_arrived.set()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console.error: {message.text} ({message.location})")

    async def wait_frame(self, kind: str, timeout: float = 15) -> dict[str, Any]:
        """The first received websocket frame of this type (waiting for it if needed)."""
        async with asyncio.timeout(timeout):
            while True:
                for frame in self.frames_received:
                    if frame.get("type") == kind:
                        return frame
                self.frame_arrived.clear()
                await self.frame_arrived.wait()


async def set_query(page: Page, text: str) -> None:
    await page.locator(EDITOR).click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.insert_text(text)
    await page.wait_for_function(PARSED, timeout=5000)


async def result_text(page: Page) -> str:
    value: str = await page.locator(RESULT).evaluate("el => el.CodeMirror.getValue()")
    return value


async def run_until(page: Page, needle: str, timeout: float = 15_000) -> dict[str, Any]:
    """Run the editor's operation (Ctrl-Enter); wait for `needle` in the result pane; the pane's JSON."""
    await page.locator(EDITOR).click()
    await page.keyboard.press("Control+Enter")
    await page.wait_for_function(RESULT_CONTAINS, arg=needle, timeout=timeout)
    parsed: dict[str, Any] = json.loads(await result_text(page))
    return parsed


@pytest.fixture
def chromium() -> Path:
    """Debian's chromium; the test is skipped (before the service starts) only when it is not installed."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"no browser at {CHROMIUM}: install Debian's `chromium` package (apt-get install chromium)")
    return CHROMIUM


async def test_graphiql_runs_a_query_a_mutation_and_a_subscription(
    chromium: Path, api: RunningApi, start_worker: StartWorker, tmp_path: Path
) -> None:
    origin = urlsplit(api.url).netloc  # 127.0.0.1:<port>
    traffic = Traffic()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(15_000)
            traffic.watch(page)

            response = await page.goto(api.url, wait_until="networkidle")
            assert response is not None and response.status == 200
            assert await page.title() == "Mission Service GraphiQL"
            await page.wait_for_selector(EDITOR)
            await page.wait_for_selector(RESULT, state="attached")

            # A query.
            await set_query(page, TEMPLATES)
            body = await run_until(page, '"two_stage"')
            assert "errors" not in body, body
            ids = {t["id"] for t in body["data"]["templates"]}
            assert {"two_stage", "hang", "slow_chain"} <= ids, ids

            # A mutation.
            await set_query(page, DEPLOY)
            body = await run_until(page, "MissionDeployed")
            assert "errors" not in body, body
            mission = body["data"]["deployMission"]["mission"]
            mission_id: str = mission["id"]
            assert mission["status"] == "QUEUED", mission  # no worker runs yet

            # A subscription, over the page's websocket: first the stored events replayed (no worker yet,
            # so the mission cannot move), then, once a worker runs it, the live ones up to the end.
            await set_query(page, EVENTS % mission_id)
            await page.locator(EDITOR).click()
            await page.keyboard.press("Control+Enter")
            await traffic.wait_frame("next")
            await page.wait_for_function(RESULT_CONTAINS, arg='"missionEvents"')
            # Still live (the mission is waiting for a worker): the run button is a stop button.
            await page.wait_for_selector(f"{EXECUTE}[aria-label^='Stop']")
            assert not any(f["type"] == "complete" for f in traffic.frames_received), traffic.frames_received
            await start_worker()
            await page.wait_for_function(RESULT_CONTAINS, arg="mission.succeeded", timeout=30_000)
            await traffic.wait_frame("complete")
            # Completed: the stop button turns back into the run button.
            await page.wait_for_selector(f"{EXECUTE}[aria-label^='Execute']")
            body = json.loads(await result_text(page))
            assert "errors" not in body, body
            last = body["data"]["missionEvents"]
            assert last["type"] == "mission.succeeded" and last["missionId"] == mission_id, last

            events = [f["payload"]["data"]["missionEvents"] for f in traffic.frames_received if f["type"] == "next"]
            assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), events
            assert events[0]["type"] == "mission.deployed" and events[-1] == last, events
            assert {e["missionId"] for e in events} == {mission_id}

            await page.screenshot(path=tmp_path / "graphiql.png")
        finally:
            await browser.close()

    # Everything stayed on the service's own origin: the page, its assets, the POSTs and the websocket.
    assert traffic.requests, "no request recorded"
    assert traffic.websockets, "the subscription opened no websocket"
    for url in traffic.requests:
        parts = urlsplit(url)
        assert parts.scheme == "http" and parts.netloc == origin, f"request off the service's origin: {url}"
    for url in traffic.websockets:
        parts = urlsplit(url)
        assert parts.scheme == "ws" and parts.netloc == origin, f"websocket off the service's origin: {url}"
        assert parts.path == "/graphql", url
    assert not traffic.failed, traffic.failed
    assert not traffic.errors, traffic.errors


OPERATOR_KEY = "graphiql-operator-key-0123456789abcdef"


async def set_headers(page: Page, headers: dict[str, str]) -> None:
    """Type the request headers into the Headers tab, as a person would."""
    await page.locator(HEADERS_TAB).click()
    await page.locator(HEADERS_EDITOR).click()
    await page.keyboard.press("Control+A")
    await page.keyboard.press("Delete")
    await page.keyboard.insert_text(json.dumps(headers))


async def test_graphiql_sends_the_headers_tab_key_over_http_and_in_connection_init(
    chromium: Path, settings: Settings, start_worker: StartWorker
) -> None:
    keyed = settings.model_copy(update={"api_keys": {OPERATOR_KEY: ApiKeyGrant(tenant="acme", role="operator")}})
    bearer = f"Bearer {OPERATOR_KEY}"
    traffic = Traffic()
    posts: list[str | None] = []  # the Authorization header of each POST the page sent
    async with serve_api(keyed) as api, async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(15_000)
            traffic.watch(page)
            page.on("request", lambda r: posts.append(r.headers.get("authorization")) if r.method == "POST" else None)

            response = await page.goto(api.url, wait_until="networkidle")
            assert response is not None and response.status == 200  # the page itself needs no key
            await page.wait_for_selector(EDITOR)
            # Before a key is typed, the page's schema introspection is refused: that is all that may fail.
            assert all("status of 401" in e for e in traffic.errors), traffic.errors
            traffic.errors.clear()
            await set_headers(page, {"Authorization": bearer})

            await set_query(page, DEPLOY)
            body = await run_until(page, "MissionDeployed")
            assert "errors" not in body, body
            mission_id: str = body["data"]["deployMission"]["mission"]["id"]
            assert posts and posts[-1] == bearer, posts

            # The subscription's websocket carries the same key in connection_init, and is accepted.
            await set_query(page, EVENTS % mission_id)
            await page.locator(EDITOR).click()
            await page.keyboard.press("Control+Enter")
            await traffic.wait_frame("next")
            assert traffic.frames_sent[0] == {"type": "connection_init", "payload": {"Authorization": bearer}}
            assert traffic.frames_received[0] == {"type": "connection_ack"}, traffic.frames_received
            await start_worker()
            await page.wait_for_function(RESULT_CONTAINS, arg="mission.succeeded", timeout=30_000)
            await traffic.wait_frame("complete")
            body = json.loads(await result_text(page))
            assert "errors" not in body, body
            assert body["data"]["missionEvents"]["missionId"] == mission_id, body
        finally:
            await browser.close()

    assert not traffic.failed, traffic.failed
    assert not traffic.errors, traffic.errors
