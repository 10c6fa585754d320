"""Mission Control, the web page at `/`: a React bundle built from `ui/` and committed under
`server/static/ui/` (`make ui` rebuilds it), so the service serves it with no Node and no CDN.

The page talks only to its own origin (POST /graphql, a websocket on /graphql); its Content
Security Policy says so to the browser too.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

UI_DIR: Path = Path(__file__).resolve().parent / "static" / "ui"
"""The built bundle: index.html, assets/, and source.sha256 (the hash of the sources it came from)."""

UI_URL: str = "/ui"
"""Where the bundle's files are served; index.html references its assets under this prefix."""

CSP = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


@cache
def index_html() -> str | None:
    page = UI_DIR / "index.html"
    return page.read_text(encoding="utf-8") if page.is_file() else None


async def page(request: Request) -> Response:
    html = index_html()
    if html is None:
        return PlainTextResponse("Mission Control is not built: run `make ui`", status_code=404)
    return HTMLResponse(html, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})


def routes() -> list[Route | Mount]:
    """`/` and the bundle's files."""
    return [Route("/", page, methods=["GET"]), Mount(UI_URL, StaticFiles(directory=UI_DIR, check_dir=False))]


__all__ = ["UI_DIR", "UI_URL", "routes"]
