"""Redis clients, built the same way everywhere: named (so `CLIENT LIST` shows who is who) and
bounded (a burst waits for a free connection instead of opening hundreds)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from config.settings import Settings


def redis_client(settings: Settings, name: str) -> Redis:
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_seconds,
        decode_responses=True,
        client_name=name,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)
