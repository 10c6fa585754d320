"""Fees: what an agent charges its allocation for the work it does."""

from __future__ import annotations

from decimal import Decimal

from workers.agents.sdk import AgentContext


def affordable(remaining: Decimal, fee: Decimal, count: int) -> int:
    """How many of ``count`` items at ``fee`` each fit in ``remaining``."""
    if count <= 0:
        return 0
    if fee <= 0:
        return count
    return max(0, min(count, int(remaining // fee)))


async def charge(ctx: AgentContext, fee: Decimal, count: int, what: str) -> None:
    """Charge ``count`` × ``fee`` in one spend (nothing when there is nothing to pay for)."""
    if count > 0 and fee > 0:
        await ctx.spend(fee * count, f"{count} {what} at {fee} each")
