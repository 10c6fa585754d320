"""Bare Strawberry: one ``deployMission`` mutation that only enqueues the mission's first ARQ jobs
(as bare ARQ's ``deploy``), Strawberry's parser and validation caches on, served by uvicorn.

``python -m bench.baselines.bare_strawberry --port N`` (Redis at ``BENCH_REDIS_URL``).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import strawberry
import uvicorn
from arq import create_pool
from arq.connections import ArqRedis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache

from bench.baselines.bare_arq import deploy, redis_settings

WIDTH = 4


@strawberry.type
class Deployed:
    id: strawberry.ID
    template_id: str


@strawberry.type
class Query:
    @strawberry.field
    def ok(self) -> bool:
        return True


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def deploy_mission(self, info: strawberry.Info, template_id: str) -> Deployed:
        pool: ArqRedis = info.context["request"].app.state.arq
        mission_id = await deploy(pool, WIDTH)
        return Deployed(id=strawberry.ID(mission_id), template_id=template_id)


schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)],
)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.arq = await create_pool(redis_settings())
    yield
    await app.state.arq.aclose()


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


app = Starlette(
    routes=[Route("/graphql", GraphQL(schema), methods=["GET", "POST"]), Route("/healthz", healthz)],
    lifespan=lifespan,
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
