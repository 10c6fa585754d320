"""Money: `Decimal` at the edges, integer cents in Redis."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation

CENT = Decimal("0.01")
# Redis Lua numbers are doubles: keep every sum of cents far below 2**53.
MAX_CENTS = 10**13


def to_cents(amount: Decimal) -> int:
    """Exact cents of an amount that has at most two decimal places."""
    return int(amount.quantize(CENT) * 100)


def charge_cents(amount: Decimal | int | float | str) -> int:
    """Cents charged for a spend: fractions of a cent round up, so metering never under-counts."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"not an amount of money: {amount!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"an amount must be a finite, non-negative number, not {amount!r}")
    cents = int((value * 100).to_integral_value(rounding=ROUND_CEILING))
    if cents > MAX_CENTS:
        raise ValueError(f"amount {amount!r} is too large")
    return cents


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(CENT)


def affordable(remaining: Decimal, fee: Decimal, count: int) -> int:
    """How many of ``count`` items at ``fee`` each fit in ``remaining``."""
    if count <= 0:
        return 0
    if fee <= 0:
        return count
    return max(0, min(count, int(remaining // fee)))
