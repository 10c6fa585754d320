"""Mission events: the log (appended by the Lua scripts), and live streams with replay.

One Redis pub/sub connection per process (`PubSubHub`) is shared by every in-process subscriber:
a channel is subscribed in Redis while at least one local subscriber wants it, each message is
parsed once and handed to every subscriber's queue. When the connection drops, the hub reconnects,
subscribes again and tells each subscriber to re-read the log (`RESYNC`), so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from mission.records import Event
from mission.store import MissionStore
from mission.supervisor import Supervisor

log = logging.getLogger(__name__)


class _Resync:
    def __repr__(self) -> str:
        return "RESYNC"


RESYNC: Any = _Resync()  # delivered when live messages may have been missed: re-read the log


# How many subscribers a subscription opened in this context serves: set by an execution shared by
# several websocket subscribers (its members may come and go), so the hub counts them all.
SERVES: contextvars.ContextVar[Callable[[], int] | None] = contextvars.ContextVar("serves", default=None)


class Subscription:
    """One subscriber's queue of parsed messages (or `RESYNC`)."""

    def __init__(self, channel: str, maxsize: int) -> None:
        self.channel = channel
        self.maxsize = maxsize
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.serves = SERVES.get()

    @property
    def subscribers(self) -> int:
        return 1 if self.serves is None else self.serves()

    def deliver(self, item: Any) -> None:
        if self.queue.qsize() >= self.maxsize:
            # A slow consumer: drop what it has not read and let it catch up from the log.
            while not self.queue.empty():
                self.queue.get_nowait()
            item = RESYNC
        self.queue.put_nowait(item)

    async def get(self) -> Any:
        return await self.queue.get()


class _Channel:
    def __init__(self, parse: Callable[[str], Any]) -> None:
        self.parse = parse
        self.subscribers: set[Subscription] = set()
        self.confirmed = asyncio.Event()


class PubSubHub:
    """The process's one pub/sub connection, fanned out to local subscribers."""

    READER = "pubsub-reader"  # the reader's task name under its supervisor

    def __init__(self, redis: Redis, *, supervisor: Supervisor | None = None, reconnect_delay: float = 0.2) -> None:
        self._redis = redis
        self._channels: dict[str, _Channel] = {}
        self._pubsub: PubSub | None = None
        self._supervisor = supervisor or Supervisor()  # the process's, or one of its own
        self._started = False
        self._reconnect_delay = reconnect_delay
        self._lock = asyncio.Lock()
        self.connected = asyncio.Event()
        self.delivered = 0

    @property
    def subscriber_count(self) -> int:
        """Local subscribers, each member of a shared execution counted."""
        return sum(sub.subscribers for c in self._channels.values() for sub in c.subscribers)

    @property
    def channel_count(self) -> int:
        return len(self._channels)

    async def start(self) -> None:
        if not self._started:
            self._supervisor.spawn(self.READER, self._read_forever)
            self._started = True

    async def close(self) -> None:
        if self._started:
            await self._supervisor.stop(self.READER)
            self._started = False
        await self._drop_connection()

    @contextlib.asynccontextmanager
    async def subscribe(
        self, channel: str, parse: Callable[[str], Any] = str, *, maxsize: int = 10_000, timeout: float = 10.0
    ) -> AsyncIterator[Subscription]:
        """Receive a channel's messages from the moment Redis confirms the subscription."""
        sub = Subscription(channel, maxsize)
        async with self._lock:
            state = self._channels.get(channel)
            if state is None:
                state = self._channels[channel] = _Channel(parse)
                if self._pubsub is not None and self.connected.is_set():
                    with contextlib.suppress(RedisError, OSError):
                        await self._pubsub.execute_command("SUBSCRIBE", channel)
            state.subscribers.add(sub)
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation that
            # arrives as the confirmation does, leaving the subscriber running forever
            async with asyncio.timeout(timeout):
                await state.confirmed.wait()
            yield sub
        finally:
            async with self._lock:
                state.subscribers.discard(sub)
                if not state.subscribers and self._channels.get(channel) is state:
                    del self._channels[channel]
                    if self._pubsub is not None and self.connected.is_set():
                        with contextlib.suppress(RedisError, OSError):
                            await self._pubsub.execute_command("UNSUBSCRIBE", channel)

    async def _connect(self) -> PubSub:
        pubsub = self._redis.pubsub()
        await pubsub.connect()  # type: ignore[no-untyped-call]
        async with self._lock:
            self._pubsub = pubsub
            for channel in self._channels:
                await pubsub.execute_command("SUBSCRIBE", channel)
            self.connected.set()
        return pubsub

    async def _drop_connection(self) -> None:
        self.connected.clear()
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _read_forever(self) -> None:
        """Supervised: any other error than a lost connection ends the task, and its supervisor
        starts it again (subscribing afresh, which makes every subscriber re-read)."""
        delay = self._reconnect_delay
        try:
            while True:
                try:
                    pubsub = await self._connect()
                    delay = self._reconnect_delay
                    while True:
                        message = await pubsub.get_message(timeout=5.0)
                        if message is not None:
                            self._dispatch(message)
                except (RedisError, OSError) as exc:
                    log.warning("pub/sub connection lost (%s); reconnecting in %.1fs", exc, delay)
                    await self._drop_connection()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            await self._drop_connection()

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        state = self._channels.get(channel)
        if state is None:
            return
        if kind == "subscribe":
            if state.confirmed.is_set():  # subscribed again after a reconnect
                for sub in list(state.subscribers):
                    sub.deliver(RESYNC)
            state.confirmed.set()
        elif kind == "message":
            try:
                item = state.parse(message["data"])
            except Exception:  # a malformed message must not stop the hub
                log.exception("dropping a malformed message on %s", channel)
                return
            for sub in list(state.subscribers):
                sub.deliver(item)
            self.delivered += len(state.subscribers)


async def mission_events(
    hub: PubSubHub, store: MissionStore, mission_id: str, after_seq: int = 0
) -> AsyncIterator[Event]:
    """The mission's events after ``after_seq``: the log first, then live ones, each exactly once,
    in order; ends after the event that ends the mission (at once if it already has)."""
    last = max(after_seq, 0)
    async with hub.subscribe(store.keys.mission_channel(mission_id), Event.parse) as sub:

        async def catch_up() -> AsyncIterator[Event]:
            nonlocal last
            for event in await store.events(mission_id, last):
                if event.seq == last + 1:
                    last = event.seq
                    yield event

        async for event in catch_up():
            yield event
            if event.terminal:
                return
        status = await store.status(mission_id)
        if status is None or status.terminal:
            # Ended (its final event is in the log unless the log expired): read once more, then stop.
            async for event in catch_up():
                yield event
            return
        while True:
            item = await sub.get()
            if item is RESYNC or item.seq > last + 1:
                async for event in catch_up():
                    yield event
                    if event.terminal:
                        return
                status = await store.status(mission_id)
                if status is None or status.terminal:  # ended while we were catching up
                    return
                continue
            if item.seq <= last:  # already sent (or a cursor past the log's end)
                if item.terminal:
                    return
                continue
            last = item.seq
            yield item
            if item.terminal:
                return
