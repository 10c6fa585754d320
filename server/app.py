"""The ASGI app: Starlette routes, a lifespan owning Redis and the pub/sub hub, GraphQL at /graphql."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from config.settings import Settings
from mission import codec
from mission.connections import redis_client
from mission.events import PubSubHub
from mission.ratelimit import RateLimiter
from mission.service import MissionService
from mission.supervisor import Supervisor
from mission.templates import TemplateRegistry
from resolvers.context import Context, Loaders
from schema.schema import build_schema
from server import ui
from server.auth import Authenticator
from server.graphiql import STATIC_DIR, STATIC_URL, graphiql_html
from server.limits import BodyLimit
from server.media import GRAPHQL_RESPONSE, JSON, SUPPORTED, negotiate, request_error_status
from server.metrics import CONTENT_TYPE, now_ms, render
from server.multiplex import Multiplexer
from server.read_cache import ReadCache
from server.websockets import LegacyWSHandler, TransportWSHandler

log = logging.getLogger("mission.api")

GC_THRESHOLD = 50_000  # allocations between young-generation collections (Python's default: 700)

UNAUTHENTICATED = {
    "errors": [
        {
            "message": "missing or invalid API key: send Authorization: Bearer <key>",
            "extensions": {"code": "UNAUTHENTICATED"},
        }
    ]
}
NOT_ACCEPTABLE = {
    "errors": [
        {
            "message": f"cannot answer in any media type the Accept header allows: ask for {' or '.join(SUPPORTED)}",
            "extensions": {"code": "NOT_ACCEPTABLE"},
        }
    ]
}

MEDIA_TYPE = "mission.media_type"  # scope keys: the negotiated response media type,
SUB_RESPONSE = "mission.sub_response"  # and the response whose status and headers Strawberry copies
ANSWERED_WITHOUT_ERRORS = "mission.no_errors"  # set when the result had no errors (a read worth keeping)


@dataclass(frozen=True)
class Resources:
    """What the lifespan opens and every request uses."""

    settings: Settings
    service: MissionService
    hub: PubSubHub
    deploy_limiter: RateLimiter
    supervisor: Supervisor
    multiplexer: Multiplexer | None  # shared subscriptions (None when `share_subscriptions` is off)


class MissionGraphQL(GraphQL[Context, None]):
    """Strawberry's ASGI app with API-key auth, our context and the self-hosted GraphiQL page."""

    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(
        self,
        *args: Any,
        auth: Authenticator,
        share: bool = True,
        max_tokens: int = 2_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.auth = auth
        # answers to mission(id), kept until the mission changes (server/read_cache.py); set by the lifespan
        self.reads: ReadCache | None = None
        # identical subscriptions of one visibility share one execution (see server/multiplex.py)
        self.multiplexer = Multiplexer(self.schema, max_tokens=max_tokens) if share else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        response = await self._respond(request)
        await response(scope, receive, send)

    async def _respond(self, request: Request) -> Response:
        """GraphQL over HTTP: the API key (401), the response media type from the Accept header (406 when
        the client takes neither), then Strawberry, whose refusals answer in the negotiated type too."""
        if self._is_page_request(request):  # GraphiQL, or a 404 when it is off: no key, no negotiation
            return await self._run(request, JSON)
        media_type = negotiate(request.headers.get("accept"))
        principal = self.auth.from_header(request.headers.get("authorization"))
        if principal is None:
            headers = {"WWW-Authenticate": "Bearer"}
            return Response(codec.dumps(UNAUTHENTICATED), 401, headers=headers, media_type=media_type or JSON)
        if media_type is None:
            return Response(codec.dumps(NOT_ACCEPTABLE), 406, media_type=JSON)
        request.scope["mission.principal"] = principal
        pending = None
        reads = self.reads
        if reads is not None:
            pending = await reads.prepare(request, principal)
            if pending is not None and pending.body is not None:
                return Response(pending.body, 200, media_type=media_type)
        response = await self._run(request, media_type)
        if (
            reads is not None
            and pending is not None
            and response.status_code == 200
            and request.scope.get(ANSWERED_WITHOUT_ERRORS)
        ):
            reads.store(pending.key, bytes(response.body))
        return response

    async def _run(self, request: Request, media_type: str) -> Response:
        request.scope[MEDIA_TYPE] = media_type
        try:
            return await self.run(request)
        except HTTPException as exc:
            if media_type == GRAPHQL_RESPONSE:  # a GraphQL response with errors only
                body = codec.dumps({"errors": [{"message": exc.reason}]})
                return Response(body, exc.status_code, media_type=GRAPHQL_RESPONSE)
            return PlainTextResponse(exc.reason, exc.status_code)

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
            loaders=Loaders(resources.service),
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

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        """Strawberry copies this response's status and headers into the answer; it also carries the
        negotiated media type to `create_response`."""
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = request.scope.get(MEDIA_TYPE, JSON)
        request.scope[SUB_RESPONSE] = sub_response
        return sub_response

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        """With `application/graphql-response+json`, a request that never reached execution answers 400
        (500 for an unexpected error of ours) and has no `data` entry."""
        body = await super().process_result(request, result)
        if not result.errors:
            request.scope[ANSWERED_WITHOUT_ERRORS] = True
        if request.scope.get(MEDIA_TYPE) == GRAPHQL_RESPONSE:
            status = request_error_status(result)
            if status is not None:
                body.pop("data", None)
                request.scope[SUB_RESPONSE].status_code = status
        return body

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = sub_response.media_type or JSON
        return response

    def encode_json(self, data: object) -> str:
        # text, not bytes: Strawberry sends bytes as binary websocket frames, which clients refuse
        return codec.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        """Any text the decoder cannot take is "not JSON" (websocket frames included)."""
        try:
            return json.loads(data)
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError) as exc:  # bad UTF-8, absurd numbers or nesting
            raise json.JSONDecodeError(f"cannot decode: {type(exc).__name__}", "", 0) from exc

    def parse_json(self, data: str | bytes) -> Any:
        """A 400, never a 500, for any body that is not a JSON object (or a batch of them)."""
        try:
            value = self.decode_json(data)
        except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, absurd numbers or nesting
            raise HTTPException(400, "Unable to parse request body as JSON") from exc
        if not isinstance(value, (dict, list)):
            raise HTTPException(400, "The request body must be a JSON object")
        return value

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Strawberry's, except that plain HTTP runs queries (and, with POST, mutations) only:
        subscriptions are served over websockets."""
        allowed = OperationType.from_http(request_adapter.method) - {OperationType.SUBSCRIPTION}
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from exc
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(400, "subscriptions are served over websockets at /graphql") from exc
            raise HTTPException(400, exc.as_http_error_reason(request_adapter.method)) from exc
        except MissingQueryError as exc:
            raise HTTPException(400, "No GraphQL query found in the request") from exc


def serve(app: Starlette, settings: Settings, *, port: int, log_level: str = "info") -> int:
    """Run the app on uvicorn with the service's options, until stopped; the exit code (1 when a
    background task kept crashing, 3 when the app did not start)."""
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        log_level=log_level.lower(),
        log_config=None,  # our logging (mission.logs) formats uvicorn's lines too
        lifespan="on",
        timeout_graceful_shutdown=10,
        ws_max_size=settings.max_request_bytes,
        ws_per_message_deflate=False,  # small JSON events: compressing them costs more CPU than it saves
    )
    server = uvicorn.Server(config)
    app.state.stop = lambda: setattr(server, "should_exit", True)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        return 3
    return 1 if app.state.failed else 0


def create_app(settings: Settings | None = None) -> Starlette:
    """The whole API. The template registry is loaded (and checked) here, before serving."""
    settings = settings or Settings()
    registry = TemplateRegistry.load(settings.templates_path)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        redis = redis_client(settings, "mission-api")
        service = MissionService(settings, registry=registry, redis=redis)
        if settings.read_cache_entries:
            graphql.reads = ReadCache(
                service, entries=settings.read_cache_entries, max_tokens=settings.max_query_tokens
            )
        supervisor = Supervisor(lambda task: fatal(app, task))
        hub = PubSubHub(redis, supervisor=supervisor)
        await hub.start()
        # Everything allocated so far lives as long as the process: keep it out of the collector's
        # scans, and collect young objects less often (with many subscribers, collection pauses
        # are what the slowest deliveries wait for).
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
        limiter = RateLimiter(
            redis, service.keys, "deploy", settings.deploy_rate_limit, settings.deploy_rate_window_seconds
        )
        resources = Resources(
            settings=settings,
            service=service,
            hub=hub,
            deploy_limiter=limiter,
            supervisor=supervisor,
            multiplexer=graphql.multiplexer,
        )
        app.state.resources = resources  # for what has the app but no request (tests, tools)
        try:
            yield {"resources": resources}
        finally:
            graphql.reads = None
            if graphql.multiplexer is not None:
                await graphql.multiplexer.close()
            await supervisor.close()
            await hub.close()
            await redis.aclose(close_connection_pool=True)

    auth = Authenticator(settings)
    auth.check_exposure(settings.host)
    graphql = MissionGraphQL(
        build_schema(settings),
        auth=auth,
        graphql_ide="graphiql" if settings.graphiql else None,
        max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        share=settings.share_subscriptions,
        max_tokens=settings.max_query_tokens,
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
        down = resources.supervisor.down  # background tasks not running (see mission/supervisor.py)
        ready = redis_ok and templates > 0 and not down
        return JSONResponse(
            {"ready": ready, "redis": redis_ok, "templates": templates, "down": down},
            status_code=200 if ready else 503,
        )

    async def metrics(request: Request) -> Response:
        if not auth.open:  # the figures span every tenant: an admin key may read them
            caller = auth.from_header(request.headers.get("authorization"))
            if caller is None or not caller.sees_all:
                return JSONResponse(UNAUTHENTICATED, 401, headers={"WWW-Authenticate": "Bearer"})
        resources: Resources = request.state.resources
        stats = await resources.service.stats(now_ms())
        body = await render(stats, resources.hub.subscriber_count)
        return Response(body, media_type=CONTENT_TYPE)

    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        *ui.routes(),
    ]
    if settings.graphiql:
        routes.append(Mount(STATIC_URL, StaticFiles(directory=STATIC_DIR)))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(BodyLimit, max_bytes=settings.max_request_bytes)],
    )
    app.state.failed = None  # a background task that kept crashing (then the server stops)
    app.state.stop = None  # set by `serve`: makes uvicorn stop
    return app


def fatal(app: Starlette, task: str) -> None:
    """A background task keeps crashing: stop serving (`serve` then returns 1) rather than limp on
    (without its pub/sub reader, no subscriber would get another event)."""
    app.state.failed = task
    log.critical("stopping the server: its %s task keeps crashing", task)
    if app.state.stop is not None:
        app.state.stop()
