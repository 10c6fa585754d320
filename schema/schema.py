"""The schema: root types wired to the resolvers, with the limits and caches from `Settings`."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.types import ExecutionContext

from config.settings import Settings
from resolvers import mutation, preview, query, subscription
from schema.errors import CancelMissionResult, DeployMissionResult
from schema.limits import Parsing, Validation, limit_rules
from schema.masking import MaskUnexpectedErrors, is_expected
from schema.preview import PlanMissionResult, Viewer
from schema.types import DepartmentGraph, Mission, MissionConnection, MissionEvent, MissionTemplate

log = logging.getLogger("mission.api")


@strawberry.type
class Query:
    templates: list[MissionTemplate] = strawberry.field(
        resolver=query.templates, description="Every template, or one sector's (case-insensitive)."
    )
    template: MissionTemplate | None = strawberry.field(resolver=query.template)
    mission: Mission | None = strawberry.field(
        resolver=query.mission, description="A mission by id; null when unknown or not yours."
    )
    missions: MissionConnection = strawberry.field(
        resolver=query.missions, description="Missions newest first; `first` is capped at 100."
    )
    department_graph: DepartmentGraph | None = strawberry.field(
        resolver=query.department_graph, description="A template's departments, dependencies and stages."
    )
    plan_mission: PlanMissionResult = strawberry.field(
        resolver=preview.plan_mission,
        description="A dry run of deployMission: the squad, stages and budget split it would make; nothing is stored.",
    )
    viewer: Viewer = strawberry.field(resolver=preview.viewer, description="The tenant and role of the API key in use.")


@strawberry.type
class Mutation:
    deploy_mission: DeployMissionResult = strawberry.mutation(
        resolver=mutation.deploy_mission,
        description="Merge overrides into a template, store the mission, queue its first jobs.",
        permission_classes=[mutation.CanOperate],
    )
    cancel_mission: CancelMissionResult = strawberry.mutation(
        resolver=mutation.cancel_mission,
        description="Cancel a mission's whole graph; idempotent.",
        permission_classes=[mutation.CanOperate],
    )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The mission's events after `afterSeq` (stored ones first, then live); "
        "completes when the mission ends (at once after the replay if it already has)."
    )
    async def mission_events(
        self, info: subscription.Info, mission_id: strawberry.ID, after_seq: int | None = None
    ) -> AsyncGenerator[MissionEvent, None]:
        async for event in subscription.mission_events(info, mission_id, after_seq):
            yield event

    @strawberry.subscription(description="Every change of every mission you can see, for the live tracker.")
    async def mission_updates(self, info: subscription.Info) -> AsyncGenerator[Mission, None]:
        async for update in subscription.mission_updates(info):
            yield update


def extensions(settings: Settings) -> list[Any]:
    """Factories (Strawberry builds fresh extensions per operation); caches and rules are shared."""
    rules = limit_rules(settings)
    return [
        MaskUnexpectedErrors,
        partial(Parsing, max_tokens=settings.max_query_tokens),
        partial(Validation, rules, max_fields=settings.max_query_fields),
    ]


class MissionSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Errors meant for the caller are not the server's problem: debug lines, not tracebacks.
        Unexpected ones are logged (with their error id) by `MaskUnexpectedErrors`."""
        for error in errors:
            if is_expected(error):
                log.debug("answered with an error: %s", error.message)


def build_schema(settings: Settings) -> strawberry.Schema:
    return MissionSchema(query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions(settings))
