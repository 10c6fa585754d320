"""GraphQL inputs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry
from strawberry.scalars import JSON


@strawberry.input(description="Risk overrides, merged over the template's.")
class RiskInput:
    level: str | None = strawberry.field(default=None, description="low, medium, high or critical.")
    max_drawdown: float | None = strawberry.field(default=None, description="0..1")


@strawberry.input(description="Overrides of a template's defaults, checked against its limits.")
class MissionConfigInput:
    budget: Decimal | None = strawberry.field(default=None, description="Total budget, at most two decimals.")
    ttl: int | None = strawberry.field(default=None, description="Time limit in seconds.")
    risk: RiskInput | None = None
    inputs: JSON | None = strawberry.field(default=None, description="Merged over the template's sample inputs.")

    def overrides(self) -> dict[str, Any]:
        """The overrides as `MissionService.deploy_mission` takes them (only what was given)."""
        out: dict[str, Any] = {}
        if self.budget is not None:
            out["budget"] = self.budget
        if self.ttl is not None:
            out["ttl"] = self.ttl
        if self.risk is not None:
            risk = {"level": self.risk.level, "max_drawdown": self.risk.max_drawdown}
            out["risk"] = {k: v for k, v in risk.items() if v is not None}
        if self.inputs is not None:
            out["inputs"] = self.inputs
        return out
