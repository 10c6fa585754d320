"""GraphQL over HTTP media types: which one a response uses (Accept negotiation), and which status a
`application/graphql-response+json` response carries.

With `application/json` a GraphQL response is always 200 (its errors say what went wrong). With
`application/graphql-response+json` a request that fails before execution (a parse or validation error,
bad variables, an unknown operation) is a 400 without a `data` entry; once execution has begun, the
response is 200 even if `data` is null.
"""

from __future__ import annotations

from strawberry.types import ExecutionResult

from schema.masking import is_masked

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
SUPPORTED = (JSON, GRAPHQL_RESPONSE)  # in order of preference when the client has none


def _ranges(accept: str) -> list[tuple[str, float]]:
    """The media ranges of an Accept header with their quality (1 unless given); bad q-values count as 0."""
    ranges = []
    for item in accept.split(","):
        kind, *params = (part.strip() for part in item.split(";"))
        if not kind:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        ranges.append((kind.lower(), quality))
    return ranges


def _quality(media_type: str, ranges: list[tuple[str, float]]) -> tuple[float, int, int]:
    """How much the client wants `media_type`: the quality of the most specific range that matches it,
    then that specificity (exact 2, `type/*` 1, `*/*` 0), then how early it was listed."""
    major = media_type.split("/")[0]
    best = (0.0, -1, 0)
    for position, (kind, quality) in enumerate(ranges):
        if kind == media_type:
            specificity = 2
        elif kind == f"{major}/*":
            specificity = 1
        elif kind == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[1]:
            best = (quality, specificity, -position)
    return best


def negotiate(accept: str | None) -> str | None:
    """The media type to answer with, or None when the client accepts neither (a 406).

    No Accept header (or an empty one) means `application/json`. Otherwise the supported type with the
    highest quality wins; on a tie, the one named explicitly, then the one listed first, then
    `application/json` (so `*/*` gets `application/json`).
    """
    if accept is None or not accept.strip():
        return JSON
    ranges = _ranges(accept)
    chosen, chosen_rank = None, (0.0, -1, 0)
    for media_type in SUPPORTED:
        rank = _quality(media_type, ranges)
        if rank[0] > 0 and (chosen is None or rank > chosen_rank):
            chosen, chosen_rank = media_type, rank
    return chosen


def request_error_status(result: ExecutionResult) -> int | None:
    """For `application/graphql-response+json`: the status of a result that never reached execution
    (400, or 500 when it failed on an unexpected error of ours); None when execution began (then 200).

    Execution began when there is data, or when an error carries a path (a field failed, and null
    spread up to `data`). Parse, validation and variable errors carry no path."""
    if result.data is not None or not result.errors:
        return None
    if any(error.path for error in result.errors):
        return None
    return 500 if any(is_masked(error) for error in result.errors) else 400
