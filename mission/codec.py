"""JSON in and out of Redis (and onto the wire): orjson, which is several times faster than the
standard library, falling back to it for what orjson refuses (integers beyond 64 bits)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """Compact JSON text; ``ValueError`` (or ``TypeError``) for what is not plain JSON."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        # ASCII escapes: a lone surrogate stays valid JSON and encodable text
        return json.dumps(value, separators=(",", ":"), allow_nan=False)


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # big integers orjson cannot hold; genuinely bad JSON raises here
