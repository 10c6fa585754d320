"""The `missions` query: pages newest first, `first` (default 20, capped at 100, never negative), cursors,
and the status and template filters."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from mission.events import PubSubHub
from mission.service import MissionService
from tests.conftest import RunningApi, StartWorker, run_to_end
from tests.gql import DEPLOY, FULL_CANCEL, MISSIONS, data, deployed, gql, graphql_error, missions, post, post_json_text

pytestmark = pytest.mark.timeout(60)


async def test_missions_pages_walk_every_mission_once_newest_first(http: httpx.AsyncClient, api: RunningApi) -> None:
    ids = [(await deployed(http, api, "two_stage"))["id"] for _ in range(7)]
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = await missions(http, api, first=3, after=after)
        pages += 1
        assert page["totalCount"] == 7
        assert [e["node"]["id"] for e in page["edges"]] == [n["id"] for n in page["nodes"]]
        seen += [n["id"] for n in page["nodes"]]
        assert page["pageInfo"]["endCursor"] == (page["edges"][-1]["cursor"] if page["edges"] else None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        assert len(page["edges"]) == 3
        after = page["pageInfo"]["endCursor"]
        assert pages < 10
    assert pages == 3 and len(page["edges"]) == 1
    assert seen == list(reversed(ids))
    # An edge's cursor resumes right after that edge.
    middle = (await missions(http, api, first=7))["edges"][3]
    assert [n["id"] for n in (await missions(http, api, first=2, after=middle["cursor"]))["nodes"]] == seen[4:6]


async def test_missions_default_page_and_first_zero(http: httpx.AsyncClient, api: RunningApi) -> None:
    empty = await missions(http, api)
    assert empty == {"totalCount": 0, "edges": [], "nodes": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}
    await deployed(http, api, "two_stage")
    zero = await missions(http, api, first=0)
    assert zero["totalCount"] == 1 and zero["edges"] == [] and zero["pageInfo"]["endCursor"] is None


async def test_missions_default_first_is_20_and_first_is_capped_at_100(
    http: httpx.AsyncClient, api: RunningApi, service: MissionService
) -> None:
    for _ in range(101):
        await service.deploy("hang")
    default = await missions(http, api)
    assert len(default["edges"]) == 20 and default["pageInfo"]["hasNextPage"] is True
    for first in (101, 1000, 2**31 - 1):
        page = await missions(http, api, first=first)
        assert page["totalCount"] == 101
        assert len(page["edges"]) == 100 and page["pageInfo"]["hasNextPage"] is True
    rest = await missions(http, api, first=100, after=page["pageInfo"]["endCursor"])
    assert len(rest["edges"]) == 1 and rest["pageInfo"]["hasNextPage"] is False


async def test_first_is_capped_at_100(http: httpx.AsyncClient, api: RunningApi, service: MissionService) -> None:
    ids = [(await service.deploy("two_stage"))[0].id for _ in range(101)]
    query = "query($first: Int, $after: String) { missions(first: $first, after: $after) { totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"  # noqa: E501
    for first in (101, 1000, 2**31 - 1):
        page = (await data(http, api.url, query, first=first))["missions"]
        assert len(page["edges"]) == 100, first
        assert page["totalCount"] == 101 and page["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["id"] for e in page["edges"]] == ids[::-1][:100]
    rest = (await data(http, api.url, query, first=1000, after=page["pageInfo"]["endCursor"]))["missions"]
    assert [e["node"]["id"] for e in rest["edges"]] == [ids[0]]
    assert rest["pageInfo"]["hasNextPage"] is False
    too_big = await gql(http, api.url, query, first=2**31)
    assert "Int cannot represent non 32-bit signed integer value" in too_big["errors"][0]["message"]


async def test_missions_negative_first_is_a_clear_error(http: httpx.AsyncClient, api: RunningApi) -> None:
    for first in (-1, -(2**31)):
        body = await gql(http, api.url, MISSIONS, first=first)
        assert body["data"] is None
        assert [e["message"] for e in body["errors"]] == ["first must not be negative"]
        assert body["errors"][0]["path"] == ["missions"]


GARBAGE_CURSORS = [
    "garbage!!",
    "bjphYmM=",  # base64 of "n:abc"
    "eDo1",  # base64 of "x:5"
    "bjotMQ==",  # base64 of "n:-1"
    "🚀" * 10,
    "A" * 100_000,
    "%%%%",
]


async def test_missions_garbage_cursor_is_a_clear_error(
    http: httpx.AsyncClient, api: RunningApi, subtests: pytest.Subtests
) -> None:
    await deployed(http, api, "two_stage")
    for cursor in GARBAGE_CURSORS:
        with subtests.test(cursor=cursor[:20]):
            body = await gql(http, api.url, MISSIONS, after=cursor)
            assert body["data"] is None
            assert [e["message"] for e in body["errors"]] == ["after: not a cursor from this service"]


async def test_a_cursor_with_non_ascii_digits_is_a_clear_error(http: httpx.AsyncClient, api: RunningApi) -> None:
    cursor = base64.urlsafe_b64encode("n:²".encode()).decode()
    message = graphql_error(await post(http, api, f'{{ missions(after: "{cursor}") {{ totalCount }} }}'))
    assert message == "after: not a cursor from this service"


async def test_missions_filters_by_status_and_template(
    http: httpx.AsyncClient, api: RunningApi, start_worker: StartWorker, service: MissionService, hub: PubSubHub
) -> None:
    two_a = (await deployed(http, api, "two_stage"))["id"]
    fan = (await deployed(http, api, "fanout"))["id"]
    hang = (await deployed(http, api, "hang"))["id"]
    fail = (await deployed(http, api, "fail_upstream"))["id"]
    two_b = (await deployed(http, api, "two_stage"))["id"]
    queued = await missions(http, api, status="QUEUED")
    assert queued["totalCount"] == 5 and [n["id"] for n in queued["nodes"]] == [two_b, fail, hang, fan, two_a]

    await start_worker()
    for mid in (two_a, fan, fail, two_b):
        await run_to_end(service, hub, mid)
    cancelled = (await data(http, api.url, FULL_CANCEL, id=hang))["cancelMission"]
    assert cancelled["__typename"] == "MissionCancelled"

    async def ids(**filters: Any) -> list[str]:
        page = await missions(http, api, **filters)
        assert page["totalCount"] == len(page["nodes"])
        nodes = [edge["node"] for edge in page["edges"]]
        for node in nodes:
            assert node["status"] == filters.get("status", node["status"])
            assert node["templateId"] == filters.get("t", node["templateId"])
        return [n["id"] for n in nodes]

    assert await ids() == [two_b, fail, hang, fan, two_a]
    assert await ids(status="SUCCEEDED") == [two_b, fan, two_a]
    assert await ids(status="FAILED") == [fail]
    assert await ids(status="CANCELLED") == [hang]
    assert await ids(status="QUEUED") == []
    assert await ids(status="RUNNING") == []
    assert await ids(status="EXPIRED") == []
    assert await ids(t="two_stage") == [two_b, two_a]
    assert await ids(t="hang") == [hang]
    assert await ids(t="no_such_template") == []
    assert await ids(status="SUCCEEDED", t="two_stage") == [two_b, two_a]
    assert await ids(status="CANCELLED", t="two_stage") == []
    assert await ids(status="CANCELLED", t="hang") == [hang]
    assert await ids(status="FAILED", t="fail_upstream") == [fail]
    # Paging inside a filter.
    first = await missions(http, api, status="SUCCEEDED", first=2)
    assert [n["id"] for n in first["nodes"]] == [two_b, fan] and first["pageInfo"]["hasNextPage"] is True
    rest = await missions(http, api, status="SUCCEEDED", first=2, after=first["pageInfo"]["endCursor"])
    assert [n["id"] for n in rest["nodes"]] == [two_a] and rest["pageInfo"]["hasNextPage"] is False


async def test_missions_with_an_unencodable_template_id_matches_nothing(
    http: httpx.AsyncClient, api: RunningApi
) -> None:
    query = "query($t: ID) { missions(templateId: $t) { totalCount edges { cursor } } }"
    body = await post_json_text(http, api, query, '{"t": "\\ud800"}')
    if body.get("errors"):  # refusing it is fine too, if the error names the right argument
        message = graphql_error(body)
        assert "templateId" in message and "after" not in message, message
    else:
        assert body == {"data": {"missions": {"totalCount": 0, "edges": []}}}, body


async def test_missions_with_odd_template_ids_match_nothing(http: httpx.AsyncClient, api: RunningApi) -> None:
    await data(http, api.url, DEPLOY, t="two_stage")
    query = "query($t: ID) { missions(templateId: $t) { totalCount edges { cursor } } }"
    for template_id in ("*", "two_stage:*", "t:two_stage", "TWO_STAGE", "x" * 100_000, "🚀", "\u0000"):
        body = await gql(http, api.url, query, t=template_id)
        assert body == {"data": {"missions": {"totalCount": 0, "edges": []}}}, (template_id[:20], body)
