"""A fixed-window rate limit kept in Redis, so every API server shares the count."""

from __future__ import annotations

from redis.asyncio import Redis

from mission.keys import Keys


class RateLimiter:
    def __init__(self, redis: Redis, keys: Keys, name: str, limit: int, window_seconds: int) -> None:
        self._redis = redis
        self._keys = keys
        self.name = name
        self.limit = limit
        self.window_ms = window_seconds * 1000

    async def hit(self, who: str) -> float | None:
        """Count one use by ``who``; None if allowed, else the seconds until the window resets."""
        key = self._keys.rate(self.name, who)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, px=self.window_ms, nx=True)
            pipe.incr(key)
            pipe.pttl(key)
            _, count, ttl_ms = await pipe.execute()
        if int(count) <= self.limit:
            return None
        return max(int(ttl_ms), 1) / 1000
