"""Metering of model calls: prices in integer units, a prompt's token bound, a call's cost in cents.

A call reserves its worst case before it is sent (mission/lua/llm_reserve.lua) and settles to the
provider's reported usage when the answer comes (mission/lua/llm_settle.lua). Prices are per
million tokens with at most four decimal places, so in *units* of 1e-4 of the currency per million
tokens they are integers, and a call's cost in cents is ``ceil(tokens × units / UNITS_PER_CENT)``
exactly (fractions of a cent round up, as every charge does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

# tokens × units per cent: 1 cent = 1e-2 currency; 1 unit/token = 1e-4 / 1e6 currency.
UNITS_PER_CENT = 10**8


@dataclass(frozen=True)
class Price:
    """A model's prices in units (1e-4 of the currency) per million tokens."""

    input_units: int
    output_units: int

    @classmethod
    def of(cls, input_per_million: Decimal, output_per_million: Decimal) -> Price:
        return cls(int(input_per_million * 10_000), int(output_per_million * 10_000))

    @property
    def free(self) -> bool:
        return self.input_units == 0 and self.output_units == 0

    def cents(self, prompt_tokens: int, completion_tokens: int) -> int:
        """What a call of these token counts costs, in cents, rounded up."""
        units = prompt_tokens * self.input_units + completion_tokens * self.output_units
        return -(-units // UNITS_PER_CENT)


@dataclass(frozen=True)
class Allowance:
    """Tokens a chat template adds around the text: once per prompt and once per message."""

    per_prompt: int
    per_message: int

    def prompt_bound(self, messages: list[dict[str, Any]]) -> int:
        """An upper bound of a prompt's tokens: every token of a byte-level tokenizer holds at least
        one byte of text, so the UTF-8 bytes of the contents and roles, plus the template's tokens."""
        text = sum(len(str(m.get("content") or "").encode()) + len(str(m.get("role") or "").encode()) for m in messages)
        return self.per_prompt + self.per_message * len(messages) + text


def measured_allowance(tokens_of: dict[int, int]) -> Allowance:
    """The allowance from the token counts of templates applied to 1 and 3 empty messages:
    what 2 more messages add, and what is left for the prompt (a default system prompt…)."""
    one, three = tokens_of[1], tokens_of[3]
    per_message = max(0, math.ceil((three - one) / 2))
    return Allowance(per_prompt=max(0, one - per_message), per_message=per_message)
