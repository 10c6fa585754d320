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
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UNSET, UnsetType

from config.settings import Settings
from mission.connections import redis_client
from mission.events import PubSubHub
from mission.ratelimit import RateLimiter
from mission.service import MissionService
from mission.templates import TemplateRegistry
from resolvers.context import Context, Loaders
from schema.schema import build_schema
from server.auth import Authenticator
from server.graphiql import STATIC_DIR, STATIC_URL, graphiql_html
from server.limits import BodyLimit
from server.metrics import CONTENT_TYPE, now_ms, render

log = logging.getLogger("mission.api")

UNAUTHENTICATED = {
    "errors": [
        {
            "message": "missing or invalid API key: send Authorization: Bearer <key>",
            "extensions": {"code": "UNAUTHENTICATED"},
        }
    ]
}


@dataclass(frozen=True)
class Resources:
    """What the lifespan opens and every request uses."""

    settings: Settings
    service: MissionService
    hub: PubSubHub
    deploy_limiter: RateLimiter


class MissionGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI app with API-key auth, our context and the self-hosted GraphiQL page."""

    def __init__(self, *args: Any, auth: Authenticator, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            if not self._is_page_request(request):
                principal = self.auth.from_header(request.headers.get("authorization"))
                if principal is None:
                    response = JSONResponse(UNAUTHENTICATED, 401, headers={"WWW-Authenticate": "Bearer"})
                    await response(scope, receive, send)
                    return
                scope["mission.principal"] = principal
        await super().__call__(scope, receive, send)

    def _is_page_request(self, request: Request) -> bool:
        """A browser asking for GraphiQL (a static page): no key needed to load it."""
        return (
            request.method == "GET"
            and "query" not in request.query_params
            and "text/html" in request.headers.get("accept", "")
        )

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        resources: Resources = request.state.resources
        return Context(
            service=resources.service,
            hub=resources.hub,
            settings=resources.settings,
            principal=request.scope.get("mission.principal"),  # a websocket's is set on connection_init
            loaders=Loaders(resources.service.store),
            deploy_limiter=resources.deploy_limiter,
            request=request,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        principal = self.auth.from_connection_params(context.connection_params)
        if principal is None:
            raise ConnectionRejectionError({"message": "missing or invalid API key"})
        context.principal = principal
        ack: UnsetType = UNSET  # acknowledge with no payload
        return ack

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
        limiter = RateLimiter(
            redis, service.keys, "deploy", settings.deploy_rate_limit, settings.deploy_rate_window_seconds
        )
        try:
            yield {"resources": Resources(settings=settings, service=service, hub=hub, deploy_limiter=limiter)}
        finally:
            await hub.close()
            await redis.aclose(close_connection_pool=True)

    auth = Authenticator(settings)
    auth.check_exposure(settings.host)
    graphql = MissionGraphQL(
        build_schema(settings),
        auth=auth,
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

    async def metrics(request: Request) -> Response:
        resources: Resources = request.state.resources
        stats = await resources.service.store.stats(now_ms())
        body = await render(stats, resources.hub.subscriber_count)
        return Response(body, media_type=CONTENT_TYPE)

    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ]
    if settings.graphiql:
        routes.append(Mount(STATIC_URL, StaticFiles(directory=STATIC_DIR)))
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(BodyLimit, max_bytes=settings.max_request_bytes)],
    )
