"""Query resolvers: templates, missions, department graphs."""

from __future__ import annotations

import strawberry

from mission.errors import MissionError
from mission.models import MissionStatus
from mission.service import is_mission_id, is_text
from resolvers.context import Context
from resolvers.selection import selects
from schema.types import (
    DepartmentGraph,
    Mission,
    MissionConnection,
    MissionEdge,
    MissionTemplate,
    PageInfo,
    template_graph,
)

Info = strawberry.Info[Context, None]


def templates(info: Info, sector: str | None = None) -> list[MissionTemplate]:
    return [MissionTemplate.of(t) for t in info.context.service.registry.all(sector)]


def template(info: Info, id: strawberry.ID) -> MissionTemplate | None:
    found = info.context.service.registry.find(id)
    return None if found is None else MissionTemplate.of(found)


async def mission(info: Info, id: strawberry.ID) -> Mission | None:
    if not is_mission_id(id):
        return None
    record = await info.context.loaders.missions.load((id, selects(info, "jobs", "output")))
    if record is None or not info.context.caller.can_see(record.tenant):
        return None
    return Mission.of(record)


async def missions(
    info: Info,
    status: MissionStatus | None = None,
    template_id: strawberry.ID | None = None,
    first: int | None = 20,
    after: str | None = None,
) -> MissionConnection:
    first = 20 if first is None else first
    if first < 0:
        raise MissionError("first must not be negative")
    if template_id is not None and not is_text(template_id):
        return MissionConnection(edges=[], page_info=PageInfo(has_next_page=False, end_cursor=None), total_count=0)
    page = await info.context.service.page(
        info.context.caller.scope, status=status, template_id=template_id, first=first, after=after
    )
    outputs = selects(info, "edges", "node", "jobs", "output") or selects(info, "nodes", "jobs", "output")
    records = await info.context.loaders.missions.load_many([(i, outputs) for i in page.ids])
    edges = [
        MissionEdge(cursor=cursor, node=Mission.of(record))
        for cursor, record in zip(page.cursors, records, strict=True)
        if record is not None
    ]
    return MissionConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        total_count=page.total,
    )


def department_graph(info: Info, template_id: strawberry.ID) -> DepartmentGraph | None:
    found = info.context.service.registry.find(template_id)
    return None if found is None else template_graph(found)
