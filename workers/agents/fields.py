"""Reading agent inputs: typed getters that raise `ValueError` naming the bad field.

Every getter takes the mapping, the key and the path of the mapping (``inputs``,
``inputs.candidates[2]``) so a message reads ``inputs.candidates[2].revenue must be a number, not str``.
The engine records that message as the job's error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_MISSING = object()


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def number(
    data: Mapping[str, Any],
    key: str,
    default: float | None = None,
    *,
    where: str = "inputs",
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """A finite number; ``default`` when absent or null (a missing required number without default fails)."""
    path = f"{where}.{key}"
    value = data.get(key)
    if value is None:
        if default is None:
            raise ValueError(f"{path} is required")
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError(f"{path} must be a number, not {_kind(value)}")
    return _bounded(float(value), path, minimum, maximum)


def _bounded(result: float, path: str, minimum: float | None, maximum: float | None) -> float:
    if not math.isfinite(result):
        raise ValueError(f"{path} must be a finite number")
    if minimum is not None and result < minimum:
        raise ValueError(f"{path} must be at least {minimum:g}, not {result:g}")
    if maximum is not None and result > maximum:
        raise ValueError(f"{path} must be at most {maximum:g}, not {result:g}")
    return result


def integer(
    data: Mapping[str, Any],
    key: str,
    default: int,
    *,
    where: str = "inputs",
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """A whole number (``3`` or ``3.0``); ``default`` when absent or null."""
    path = f"{where}.{key}"
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{path} must be a whole number, not {_kind(value)}")
    if not float(value).is_integer():
        raise ValueError(f"{path} must be a whole number, not {value}")
    result = int(value)
    if minimum is not None and result < minimum:
        raise ValueError(f"{path} must be at least {minimum}, not {result}")
    if maximum is not None and result > maximum:
        raise ValueError(f"{path} must be at most {maximum}, not {result}")
    return result


def text(data: Mapping[str, Any], key: str, default: str | None = None, *, where: str = "inputs") -> str:
    """A non-empty string, stripped; ``default`` when absent (no default: required)."""
    path = f"{where}.{key}"
    value = data.get(key)
    if value is None:
        if default is None:
            raise ValueError(f"{path} is required")
        return default
    if not isinstance(value, str):
        raise ValueError(f"{path} must be a string, not {_kind(value)}")
    value = value.strip()
    if not value:
        if default is None:
            raise ValueError(f"{path} must not be empty")
        return default
    return value


def flag(data: Mapping[str, Any], key: str, default: bool = False, *, where: str = "inputs") -> bool:
    """A boolean; ``default`` when absent or null."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValueError(f"{where}.{key} must be true or false, not {_kind(value)}")
    return value


def strings(data: Mapping[str, Any], key: str, *, where: str = "inputs") -> list[str]:
    """A list of non-empty strings (a single string counts as a list of one); empty when absent."""
    path = f"{where}.{key}"
    value = data.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"{path} must be a list of strings, not {_kind(value)}")
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(f"{path}[{i}] must be a string, not {_kind(item)}")
        if item.strip():
            out.append(item.strip())
    return out


def numbers(
    data: Mapping[str, Any],
    key: str,
    *,
    where: str = "inputs",
    minimum: float | None = None,
    maximum: float | None = None,
) -> list[float]:
    """A list of finite numbers; empty when absent or null."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where}.{key} must be a list of numbers, not {_kind(value)}")
    out: list[float] = []
    for i, item in enumerate(value):
        path = f"{where}.{key}[{i}]"
        if item is None or isinstance(item, bool) or not isinstance(item, (int, float, Decimal)):
            raise ValueError(f"{path} must be a number, not {_kind(item)}")
        out.append(_bounded(float(item), path, minimum, maximum))
    return out


def section(data: Mapping[str, Any], key: str, *, where: str = "inputs") -> dict[str, Any]:
    """A nested object; empty when absent or null."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}.{key} must be an object, not {_kind(value)}")
    return dict(value)


def records(data: Mapping[str, Any], key: str, *, where: str = "inputs") -> list[tuple[str, dict[str, Any]]]:
    """A list of objects, each with its path (``inputs.portfolio[1]``); empty when absent or null."""
    path = f"{where}.{key}"
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{path} must be a list of objects, not {_kind(value)}")
    out: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ValueError(f"{path}[{i}] must be an object, not {_kind(item)}")
        out.append((f"{path}[{i}]", dict(item)))
    return out


def choice(data: Mapping[str, Any], key: str, options: tuple[str, ...], default: str, *, where: str = "inputs") -> str:
    """One of ``options`` (case-insensitive); ``default`` when absent."""
    value = text(data, key, default, where=where).lower()
    if value not in options:
        raise ValueError(f"{where}.{key} must be one of {', '.join(options)}, not {value!r}")
    return value


def ratio(part: float, whole: float) -> float | None:
    """``part / whole``, or None when the whole is zero."""
    return None if whole == 0 else part / whole


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(max(value, low), high)
