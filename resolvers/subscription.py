"""Subscription resolvers: one mission's events (replay, then live), and every mission's changes."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from mission.errors import MissionError, MissionNotFound
from mission.events import RESYNC
from mission.events import mission_events as event_stream
from mission.records import Event, MissionRecord
from mission.service import is_mission_id
from mission.store import MAX_PAGE, MissionStore
from resolvers.context import Context
from schema.types import Mission, MissionEvent

Info = strawberry.Info[Context, None]

RESYNC_PAGE = MAX_PAGE  # missions read per round trip when a tracker catches up


async def mission_events(
    info: Info, mission_id: strawberry.ID, after_seq: int | None = None
) -> AsyncGenerator[MissionEvent, None]:
    ctx = info.context
    if after_seq is not None and after_seq < 0:
        raise MissionError("afterSeq must not be negative")
    tenant = await ctx.service.store.tenant_of(mission_id) if is_mission_id(mission_id) else None
    if tenant is None or not ctx.caller.can_see(tenant):
        raise MissionNotFound(mission_id[:100])
    async for event in event_stream(ctx.hub, ctx.service.store, mission_id, after_seq or 0):
        yield MissionEvent.of(event)


async def mission_updates(info: Info) -> AsyncGenerator[Mission, None]:
    """Each change of a visible mission, as the mission after it; bursts are read in one go.

    Every event on the feed carries its change number (``Keys.change_counter``). After a resync
    (a pub/sub reconnect, or a slow reader whose backlog was dropped) the missions of the caller's
    scope changed since the last change this subscriber saw are sent again, a page at a time, so a
    mission that ended during the gap is not left showing its old status."""
    ctx = info.context
    store = ctx.service.store
    async with ctx.hub.subscribe(store.keys.events_channel, Event.parse) as sub:
        seen = await store.last_change()  # every change up to this one was delivered (or predates us)
        while True:
            items = [await sub.get()]
            while not sub.queue.empty():
                items.append(sub.queue.get_nowait())
            caller = ctx.caller
            ids: list[str] = []
            resync_after: int | None = None  # the last change seen before the first resync
            for item in items:
                if item is RESYNC:
                    resync_after = seen if resync_after is None else resync_after
                    continue
                seen = max(seen, item.change)
                if caller.can_see(item.tenant):
                    ids.append(item.mission_id)
            for record in await store.read(list(dict.fromkeys(ids))):
                if record is not None:
                    yield Mission.of(record)
            if resync_after is not None:
                async for changed, change in _changed_since(store, caller.scope, resync_after):
                    seen = max(seen, change)
                    if changed is not None:
                        yield Mission.of(changed)


async def _changed_since(
    store: MissionStore, scope: str, after: int
) -> AsyncGenerator[tuple[MissionRecord | None, int], None]:
    """Each mission of ``scope`` changed after change ``after``, read a page at a time, with its
    latest change number."""
    if await store.last_change() < after:  # the counter started again (a Redis that lost its data)
        after = 0
    while True:
        page = await store.changed_since(scope, after, RESYNC_PAGE)
        if not page:
            return
        for record, (_, change) in zip(await store.read([m for m, _ in page]), page, strict=True):
            yield record, change
        after = page[-1][1]
        if len(page) < RESYNC_PAGE:
            return
