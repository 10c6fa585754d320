"""A naive subscription: ``missionEvents`` opens its own Redis pub/sub connection per subscriber
and relays the mission's channel (the service's stored event format) until the mission ends.

``python -m bench.baselines.naive_subscription --port N`` (Redis at ``BENCH_REDIS_URL``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime

import strawberry
import uvicorn
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"}


@strawberry.type
class MissionEvent:
    seq: int
    mission_id: strawberry.ID
    type: str
    status: str
    at: datetime
    message: str


@strawberry.type
class Query:
    @strawberry.field
    def ok(self) -> bool:
        return True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def mission_events(self, info: strawberry.Info, mission_id: strawberry.ID) -> AsyncGenerator[MissionEvent]:
        redis: Redis = info.context["request"].app.state.redis
        pubsub = redis.pubsub()
        await pubsub.subscribe(f"ms:ch:m:{mission_id}")
        try:
            async for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                event = json.loads(message["data"])
                yield MissionEvent(
                    seq=event["seq"],
                    mission_id=event["missionId"],
                    type=event["type"],
                    status=event["status"],
                    at=datetime.fromtimestamp(event["at"] / 1000, tz=UTC),
                    message=event["message"],
                )
                if event["type"].startswith("mission.") and event["status"] in TERMINAL:
                    return
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]


schema = strawberry.Schema(
    query=Query,
    subscription=Subscription,
    extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)],
)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.redis = Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    yield
    await app.state.redis.aclose()


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


graphql = GraphQL(schema)
app = Starlette(
    routes=[
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8002)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
