"""`make screenshots`: pictures of Mission Control for the README, taken by headless Chromium.

By default it starts a throwaway service (a local Redis, a worker and the API on free ports, with
the shipped templates), deploys a few missions so every widget has something to show, and writes
docs/library.png, docs/launch.png, docs/tracker.png, docs/flow.png and docs/phone.png.
`--url http://host:port/` photographs a running service instead (and deploys missions there).
Needs Debian's chromium at /usr/bin/chromium and the dev dependencies (playwright).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import websockets
from playwright.async_api import Page, async_playwright, expect
from websockets.typing import Subprotocol

from config.settings import Settings
from server.app import create_app
from server.model_local import MODEL_NAME, LocalModel
from server.redis_local import LocalRedis, free_port
from workers.settings import MissionWorker, create_worker

DOCS = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

DEPLOY = """mutation ($t: ID!, $config: MissionConfigInput) { deployMission(templateId: $t, config: $config) {
  __typename ... on MissionDeployed { mission { id } } } }"""
CANCEL = "mutation ($id: ID!) { cancelMission(id: $id) { __typename } }"
EVENTS = "subscription ($id: ID!) { missionEvents(missionId: $id) { seq type } }"
PROTOCOL: Subprotocol = Subprotocol("graphql-transport-ws")


class Api:
    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/") + "/"
        self.client = httpx.AsyncClient(timeout=15)

    async def call(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post(f"{self.root}graphql", json={"query": query, "variables": variables})
        body: dict[str, Any] = response.json()
        if "errors" in body:
            raise RuntimeError(f"{query.split()[0]}: {body['errors']}")
        data: dict[str, Any] = body["data"]
        return data

    async def deploy(self, template: str, **config: Any) -> str:
        answer = (await self.call(DEPLOY, t=template, config=config or None))["deployMission"]
        if answer["__typename"] != "MissionDeployed":
            raise RuntimeError(f"deploy {template}: {answer}")
        mission_id: str = answer["mission"]["id"]
        return mission_id

    async def wait_finished(self, mission_id: str, timeout: float = 30, until: str = "") -> None:
        """Until the mission ends (its missionEvents subscription completes then), or until an event
        of type `until`."""
        url = self.root.replace("http", "ws", 1) + "graphql"
        async with asyncio.timeout(timeout), websockets.connect(url, subprotocols=[PROTOCOL]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            subscribe = {"query": EVENTS, "variables": {"id": mission_id}}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "error":
                    raise RuntimeError(f"missionEvents {mission_id}: {message}")
                if message["type"] == "complete":
                    return
                if until and message["type"] == "next" and message["payload"]["data"]["missionEvents"]["type"] == until:
                    return


@contextlib.asynccontextmanager
async def own_service() -> AsyncIterator[tuple[str, MissionWorker]]:
    """Redis, the embedded model, a worker and the API, all on free local ports; everything stopped
    on exit."""
    with LocalRedis() as redis, LocalModel() as model:
        free = {"input": "0", "output": "0"}  # it runs on this machine
        settings = Settings.model_validate(
            {
                "redis_url": redis.url,
                "llm_base_url": model.base_url,
                "llm_model": MODEL_NAME,
                "llm_prices": {MODEL_NAME: free},
            }
        )
        worker = create_worker(settings, handle_signals=False)
        worker_task = asyncio.create_task(worker.async_run())
        await asyncio.wait_for(worker.ready.wait(), 15)
        port = free_port()
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        server_task = asyncio.create_task(server.serve())
        async with asyncio.timeout(15):
            while not server.started:  # noqa: ASYNC110 — uvicorn exposes no event for this
                await asyncio.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}/", worker
        finally:
            server.should_exit = True
            await server_task
            await worker.close()
            worker_task.cancel()
            with contextlib.suppress(BaseException):
                await worker_task


async def populate(api: Api, worker: MissionWorker | None) -> str:
    """Missions in several states; returns the one whose flow is photographed."""
    flow = await api.deploy("mission_003")  # Shadow Mirror: three stages, a fan-out in the middle
    done = [flow]
    for template, config in (
        ("mission_002", {"budget": "900", "risk": {"level": "medium"}}),  # no gate: runs to its end
        ("mission_001", {}),
        ("mission_004", {}),
        ("mission_006", {}),
    ):
        done.append(await api.deploy(template, **config))
    for mission_id in done:
        await api.wait_finished(mission_id)
    gated = await api.deploy("mission_002", budget="5000")  # above 1000: Finance waits for a decision
    await api.wait_finished(gated, until="approval.requested")
    if worker is not None:  # with no worker, the next missions wait in the queue
        await worker.close()
    await api.deploy("mission_005")
    await api.call(CANCEL, id=await api.deploy("mission_002"))
    return flow


async def shoot(root: str, worker: MissionWorker | None, out: Path) -> list[Path]:
    api = Api(root)
    flow_id = await populate(api, worker)
    written: list[Path] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            await page.goto(root)
            await expect(page.get_by_role("list", name="Missions").get_by_role("listitem")).to_have_count(8)
            written.append(await element(page, "section.library", out / "library.png"))
            written.append(await element(page, "section.tracker", out / "tracker.png"))

            await page.get_by_role("article", name="Crash Protocol").get_by_role("button", name="Launch").click()
            dialog = page.get_by_role("dialog", name="Crash Protocol")
            await dialog.get_by_label("Budget", exact=True).fill("5000")
            await expect(dialog.get_by_role("row", name=r"liquidator")).to_contain_text("3500.00")
            await dialog.get_by_role("button", name="Close").focus()
            written.append(await element(page, "dialog.launch", out / "launch.png"))
            await dialog.get_by_role("button", name="Close").click()

            await page.goto(f"{root}?mission={flow_id}")
            await expect(page.get_by_role("status", name="Mission status")).to_have_text("SUCCEEDED")
            await page.get_by_role("button", name="reporter").click()
            await page.wait_for_timeout(300)  # React Flow's fit-to-view settles
            path = out / "flow.png"
            await page.screenshot(path=path, full_page=True)
            written.append(path)

            phone = await browser.new_page(viewport={"width": 390, "height": 844})
            await phone.goto(root)
            await expect(phone.get_by_role("list", name="Missions").get_by_role("listitem")).to_have_count(8)
            path = out / "phone.png"
            await phone.screenshot(path=path)
            written.append(path)
        finally:
            await browser.close()
    await api.client.aclose()
    return written


async def element(page: Page, selector: str, path: Path) -> Path:
    await page.locator(selector).screenshot(path=path)
    return path


async def main(url: str | None, out: Path) -> None:
    if url:
        written = await shoot(url, None, out)
    else:
        async with own_service() as (root, worker):
            written = await shoot(root, worker, out)
    for path in written:
        print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running service's page, e.g. http://127.0.0.1:8000/ (default: start one)")
    parser.add_argument("--out", type=Path, default=DOCS, help="where the PNG files go (default: docs/)")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.out))
