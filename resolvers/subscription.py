"""Subscription resolvers: one mission's events (replay, then live), and every mission's changes."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from mission.errors import MissionError, MissionNotFound
from mission.events import RESYNC
from mission.events import mission_events as event_stream
from mission.records import Event
from mission.service import is_mission_id
from resolvers.context import Context
from schema.types import Mission, MissionEvent

Info = strawberry.Info[Context, None]


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
    """Each change of a visible mission, as the mission after it; bursts are read in one go."""
    ctx = info.context
    store = ctx.service.store
    async with ctx.hub.subscribe(store.keys.events_channel, Event.parse) as sub:
        while True:
            items = [await sub.get()]
            while not sub.queue.empty():
                items.append(sub.queue.get_nowait())
            caller = ctx.caller
            ids = [item.mission_id for item in items if item is not RESYNC and caller.can_see(item.tenant)]
            if any(item is RESYNC for item in items):
                # changes may have been missed (a reconnect, a slow reader): send every active mission
                ids += await store.active_missions(caller.scope)
            for record in await store.read(list(dict.fromkeys(ids))):
                if record is not None:
                    yield Mission.of(record)
