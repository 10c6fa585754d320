"""A fixed-window rate limit kept in Redis, so every API server shares the count."""

from __future__ import annotations

from redis.asyncio import Redis

from mission.keys import Keys
from mission.scripts import LUA_DIR


class RateLimiter:
    def __init__(self, redis: Redis, keys: Keys, name: str, limit: int, window_seconds: int) -> None:
        self._redis = redis
        self._keys = keys
        self.name = name
        self.limit = limit
        self.window_ms = window_seconds * 1000
        self._count = redis.register_script((LUA_DIR / "rate.lua").read_text())  # one round trip, one command

    async def hit(self, who: str) -> float | None:
        """Count one use by ``who``; None if allowed, else the seconds until the window resets."""
        count, ttl_ms = await self._count(keys=[self._keys.rate(self.name, who)], args=[self.window_ms])
        if int(count) <= self.limit:
            return None
        return max(int(ttl_ms), 1) / 1000
