"""Subscription resolvers: one mission's events (replay, then live), and every mission's changes."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from mission.errors import MissionError, MissionNotFound
from mission.events import RESYNC
from mission.records import Event
from resolvers.context import Context
from schema.types import Mission, MissionEvent

Info = strawberry.Info[Context, None]


async def mission_events(
    info: Info, mission_id: strawberry.ID, after_seq: int | None = None
) -> AsyncGenerator[MissionEvent, None]:
    ctx = info.context
    if after_seq is not None and after_seq < 0:
        raise MissionError("afterSeq must not be negative")
    tenant = await ctx.service.tenant_of(mission_id)
    if tenant is None or not ctx.caller.can_see(tenant):
        raise MissionNotFound(mission_id[:100])
    async for event in ctx.service.events(ctx.hub, mission_id, after_seq or 0):
        yield MissionEvent.of(event)


async def mission_updates(info: Info) -> AsyncGenerator[Mission, None]:
    """Each change of a visible mission, as the mission after it; bursts are read in one go.

    Every event on the feed carries its change number (``Keys.change_counter``). After a resync
    (a pub/sub reconnect, or a slow reader whose backlog was dropped) the missions of the caller's
    scope changed since the last change this subscriber saw are sent again, a page at a time, so a
    mission that ended during the gap is not left showing its old status."""
    ctx = info.context
    service = ctx.service
    async with ctx.hub.subscribe(service.keys.events_channel, Event.parse) as sub:
        seen = await service.last_change()  # every change up to this one was delivered (or predates us)
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
            for record in await service.read(list(dict.fromkeys(ids))):
                if record is not None:
                    yield Mission.of(record)
            if resync_after is not None:
                async for changed, change in service.changed_since(caller.scope, resync_after):
                    seen = max(seen, change)
                    if changed is not None:
                        yield Mission.of(changed)
