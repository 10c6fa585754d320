"""7. Mission Control: the committed bundle's gzipped size, and how fast the tracker applies live
updates in the browser. 200 `bench_pulse` missions (each: wait for a go key, then 10 progress
reports, one a second) are listed in the tracker (all pages loaded); once they are all on screen
the go keys are set, and 200 missions send about 200 updates a second for 10 s. The page records,
through the User Timing API, the time from an update's arrival on the websocket to the commit that
shows it (`tracker-update` measures; updates arriving together are one measure). Headless Debian
chromium; the rows are skipped (said in the output) when it is missing."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from playwright.async_api import Browser, async_playwright, expect
from redis.asyncio import Redis

from bench.agents import go_key
from bench.engines import Ours
from bench.procs import Procs, mission_server, start_worker, until, wait_workers
from bench.stats import Metric, Metrics, Target, percentile
from server.redis_local import LocalRedis
from server.ui import UI_DIR

NAME = "ui"
MISSIONS = 200
PULSES = 10
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
MEASURES = "() => performance.getEntriesByName('tracker-update').map(e => e.duration)"


def bundle_gzip_kb() -> float:
    assets = [p for p in (UI_DIR / "assets").iterdir() if p.is_file()]
    return sum(len(gzip.compress(p.read_bytes(), 9)) for p in assets) / 1000


def have_chromium() -> bool:
    return CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)


async def run(reps: int) -> list[Metric]:
    metrics = Metrics(NAME)
    metrics.add("Mission Control bundle, gzipped (JS + CSS)", bundle_gzip_kb(), "KB", Target("<=", 300))
    if not have_chromium():
        print(f"   no browser at {CHROMIUM}: the tracker rows are skipped (apt-get install chromium)")
        return metrics.all()
    with LocalRedis() as redis_server, Procs() as procs:
        redis = Redis.from_url(redis_server.url)
        engine = Ours(redis_server.url, redis, procs)
        try:
            # every pulse agent waits for its go key at once: the worker runs them all together
            engine.worker = start_worker(
                procs, redis_server.url, "ui-worker", worker_concurrency=MISSIONS + 10, **engine.settings
            )
            await wait_workers(redis, engine.worker)
            server = await mission_server(procs, redis_server.url, "ui-server")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
                )
                try:
                    for rep in range(reps):
                        await one_round(metrics, browser, engine, redis, server.url, rep)
                finally:
                    await browser.close()
        finally:
            await engine.stop()
            await redis.aclose()
    return metrics.all()


async def one_round(metrics: Metrics, browser: Browser, engine: Ours, redis: Redis, url: str, rep: int) -> None:
    config = {"inputs": {"count": PULSES, "interval": 1.0, "wait": 120}}
    ids = [str((await engine.service.deploy_mission("bench_pulse", config))["mission_id"]) for _ in range(MISSIONS)]
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    frames = 0

    def count(payload: str | bytes) -> None:
        nonlocal frames
        if '"next"' in (payload if isinstance(payload, str) else payload.decode()):
            frames += 1

    page.on("websocket", lambda ws: ws.on("framereceived", count))
    try:
        root = url.removesuffix("/graphql").rstrip("/")
        await page.goto(f"{root}/?template=bench_pulse")
        rows = page.get_by_role("list", name="Missions").get_by_role("listitem")
        more = page.get_by_role("button", name="Load more")
        while (shown := await rows.count()) < MISSIONS:
            await more.click()
            await expect(rows).not_to_have_count(shown)
        await expect(rows).to_have_count(MISSIONS)
        await page.evaluate("() => performance.clearMeasures('tracker-update')")
        frames = 0
        async with redis.pipeline(transaction=False) as pipe:
            for mission_id in ids:
                pipe.set(go_key(mission_id), "1", ex=600)
            await pipe.execute()

        async def all_done() -> bool:
            return await engine.finished() >= MISSIONS * (rep + 1)

        await until(all_done, "the pulse missions to finish", timeout=120, watch=[engine.worker])
        await expect(rows.filter(has_text="SUCCEEDED")).to_have_count(MISSIONS, timeout=30_000)
        durations: list[float] = await page.evaluate(MEASURES)
    finally:
        await page.close()
    metrics.add("tracker, 200 live missions: update applied, p50", percentile(durations, 50), "ms")
    metrics.add("tracker, 200 live missions: update applied, p99", percentile(durations, 99), "ms")
    metrics.add(
        "tracker, 200 live missions: update applied, max",
        max(durations, default=float("nan")),
        "ms",
        Target("<=", 100),
        note=f"{frames} updates received, {len(durations)} renders (rep {rep + 1})",
    )
