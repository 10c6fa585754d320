"""GraphiQL served from the service itself: pinned React/GraphiQL builds, no CDN.

The app mounts `StaticFiles(directory=STATIC_DIR)` at `STATIC_URL` and answers a browser's
GET /graphql with `graphiql_html()`. The page talks to its own origin: HTTP POST /graphql for
queries and mutations, a websocket on /graphql (graphql-transport-ws) for subscriptions.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

STATIC_DIR: Path = Path(__file__).resolve().parent / "static" / "graphiql"
"""The vendored assets and the page (see VERSIONS.txt and README.md there)."""

STATIC_URL: str = "/static/graphiql"
"""Where the app mounts `STATIC_DIR`; index.html references its assets under this prefix."""


@cache
def graphiql_html() -> str:
    """The GraphiQL page, read once; it needs no templating."""
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


__all__ = ["STATIC_DIR", "STATIC_URL", "graphiql_html"]
