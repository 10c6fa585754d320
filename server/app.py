"""The ASGI app: Starlette routes, a lifespan owning Redis and the pub/sub hub, GraphQL at /graphql."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from config.settings import Settings
from mission.connections import redis_client
from mission.events import PubSubHub
from mission.service import MissionService
from mission.templates import TemplateRegistry
from resolvers.context import Context, Loaders, Principal
from schema.schema import build_schema
from server.graphiql import STATIC_DIR, STATIC_URL, graphiql_html

log = logging.getLogger("mission.api")

OPEN_PRINCIPAL = Principal(tenant="default", role="admin")


@dataclass(frozen=True)
class Resources:
    """What the lifespan opens and every request uses."""

    settings: Settings
    service: MissionService
    hub: PubSubHub


class MissionGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI app with our context and the self-hosted GraphiQL page."""

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        resources: Resources = request.state.resources
        return Context(
            service=resources.service,
            hub=resources.hub,
            settings=resources.settings,
            principal=OPEN_PRINCIPAL,
            loaders=Loaders(resources.service.store),
            request=request,
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(graphiql_html())


def create_app(settings: Settings | None = None) -> Starlette:
    """The whole API. The template registry is loaded (and checked) here, before serving."""
    settings = settings or Settings()
    registry = TemplateRegistry.load(settings.templates_path)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        redis = redis_client(settings, "mission-api")
        service = MissionService(settings, registry=registry, redis=redis)
        hub = PubSubHub(redis)
        await hub.start()
        try:
            yield {"resources": Resources(settings=settings, service=service, hub=hub)}
        finally:
            await hub.close()
            await redis.aclose(close_connection_pool=True)

    graphql = MissionGraphQL(
        build_schema(settings),
        graphql_ide="graphiql" if settings.graphiql else None,
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
    )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"alive": True})

    async def readyz(request: Request) -> Response:
        resources: Resources = request.state.resources
        try:
            redis_ok = bool(await asyncio.wait_for(resources.service.redis.ping(), 1.0))
        except (RedisError, OSError, TimeoutError):
            redis_ok = False
        templates = len(resources.service.registry)
        ready = redis_ok and templates > 0
        return JSONResponse(
            {"ready": ready, "redis": redis_ok, "templates": templates}, status_code=200 if ready else 503
        )

    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    if settings.graphiql:
        routes.append(Mount(STATIC_URL, StaticFiles(directory=STATIC_DIR)))
    return Starlette(routes=routes, lifespan=lifespan)
