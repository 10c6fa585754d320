"""Redis clients, built the same way everywhere: named (so `CLIENT LIST` shows who is who) and
bounded (a burst waits for a free connection instead of opening hundreds).

With ``MISSION_REDIS_SENTINELS`` set, clients find the current primary through the Sentinels (and
follow a failover); ``MISSION_REDIS_URL`` then only supplies the password, database and TLS.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from arq.connections import RedisSettings
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from config.settings import Settings


def _url_options(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    database = parts.path.strip("/")
    return {
        "username": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "db": int(database) if database.isdigit() else 0,
        "ssl": parts.scheme == "rediss",
    }


class BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """redis-py's Sentinel pool raises when it runs out of connections; this one waits, as the
    plain pool does."""


def redis_client(settings: Settings, name: str) -> Redis:
    if settings.redis_sentinels:
        options = _url_options(settings.redis_url)
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            settings.sentinel_addresses,
            sentinel_kwargs={"password": options["password"]} if options["password"] else None,
            decode_responses=True,
            client_name=name,
            health_check_interval=30,
            **options,
        )
        client: Redis = sentinel.master_for(
            settings.redis_sentinel_master,
            connection_pool_class=BlockingSentinelPool,
            max_connections=settings.redis_max_connections,
            timeout=settings.redis_pool_timeout_seconds,
        )
        return client
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_seconds,
        decode_responses=True,
        client_name=name,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


def arq_redis_settings(settings: Settings) -> RedisSettings:
    """The same Redis, as ARQ's worker wants it described."""
    if not settings.redis_sentinels:
        return RedisSettings.from_dsn(settings.redis_url)
    options = _url_options(settings.redis_url)
    return RedisSettings(
        host=settings.sentinel_addresses,
        sentinel=True,
        sentinel_master=settings.redis_sentinel_master,
        username=options["username"],
        password=options["password"],
        database=options["db"],
        ssl=options["ssl"],
    )
