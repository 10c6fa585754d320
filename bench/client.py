"""A GraphQL-over-HTTP client for latency samples: one keep-alive connection, one request at a time."""

from __future__ import annotations

import time
from typing import Any

import httpx


class Client:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=1))

    async def query(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post(self.url, json={"query": query, "variables": variables})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        data: dict[str, Any] = body["data"]
        return data

    async def timed(self, query: str, **variables: Any) -> float:
        """The request's round trip in ms (the answer must carry no errors)."""
        start = time.perf_counter()
        await self.query(query, **variables)
        return (time.perf_counter() - start) * 1000

    async def close(self) -> None:
        await self.http.aclose()
