"""The Lua scripts that make every state transition atomic, registered on a Redis client."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

LUA_DIR = Path(__file__).resolve().parent / "lua"
# Scripts that share the prelude (key names blob, events, enqueue, mission end).
WITH_PRELUDE = ("deploy", "start", "finish", "spend", "progress", "stop")
STANDALONE = ("heartbeat", "read", "ready", "claim", "sweep")


@cache
def source(name: str) -> str:
    body = (LUA_DIR / f"{name}.lua").read_text()
    if name in WITH_PRELUDE:
        return (LUA_DIR / "lib.lua").read_text() + "\n" + body
    return body


class Scripts:
    """Each script bound to one client; EVALSHA, loading the script again after a Redis restart."""

    def __init__(self, redis: Redis) -> None:
        self._scripts = {name: redis.register_script(source(name)) for name in WITH_PRELUDE + STANDALONE}

    async def run(self, name: str, *args: Any, client: Redis | None = None) -> Any:
        """Run a script; ``client`` runs it on another connection to the same Redis."""
        script: AsyncScript = self._scripts[name]
        return await script(keys=[], args=list(args), client=client)
