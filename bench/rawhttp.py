"""The plainest HTTP GET (one connection per request, asyncio streams): the network-bound benchmark
measures the engines, and httpx's connection pool slows down sharply with hundreds of connections
in flight (300 concurrent requests to a 1 s endpoint take 3.5 s with one client here)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


async def get(url: str) -> bytes:
    """The body of ``url``'s answer; `RuntimeError` unless it is 200."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        writer.write(f"GET {path} HTTP/1.1\r\nhost: {parts.netloc}\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{url} answered {head[:40]!r}")
    return body
