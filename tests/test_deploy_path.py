"""The deploy path's shortcuts: a deploy without overrides reuses its template's plan, and the rate
limit counts in one Lua call with the window's expiry set once."""

from __future__ import annotations

from mission.ratelimit import RateLimiter
from mission.service import MissionService
from mission.templates import TemplateRegistry


async def test_a_deploy_without_overrides_reuses_the_templates_plan(service: MissionService) -> None:
    first = service.plan("two_stage")
    assert service.plan("two_stage", {}) is first
    assert service.plan("two_stage", {"budget": "150"}) is not first
    assert service.plan("two_stage", {"budget": "150"}).config.budget != first.config.budget
    assert service.plan("hang") is not first
    # a registry with the template replaced gets a plan of its own
    replaced = service.registry.get("two_stage").model_copy()
    service.registry = TemplateRegistry([replaced])
    assert service.plan("two_stage").template is replaced


async def test_the_rate_limit_counts_within_one_window(service: MissionService) -> None:
    limiter = RateLimiter(service.redis, service.keys, "test", limit=2, window_seconds=30)
    assert await limiter.hit("k") is None
    assert await limiter.hit("k") is None
    retry = await limiter.hit("k")
    assert retry is not None and 29 < retry <= 30
    ttl = await service.redis.pttl(service.keys.rate("test", "k"))
    assert 29_000 < ttl <= 30_000  # set by the first hit, not pushed back by later ones
    assert await limiter.hit("other") is None
