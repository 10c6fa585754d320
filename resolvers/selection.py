"""What a query asks for below the current field, to load just that in one round trip."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection


def _fields(selections: Iterable[Selection]) -> Iterable[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, (InlineFragment, FragmentSpread)):
            yield from _fields(selection.selections)


def selects(info: Any, *path: str) -> bool:
    """Whether the current field's selection reaches ``path`` (GraphQL names), fragments included."""
    level: list[Selection] = [s for f in _fields(info.selected_fields) for s in f.selections]
    for name in path:
        found = [f for f in _fields(level) if f.name == name]
        if not found:
            return False
        level = [s for f in found for s in f.selections]
    return True
