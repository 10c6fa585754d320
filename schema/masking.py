"""Unexpected errors are masked: a generic message with an error id, the traceback in the log."""

from __future__ import annotations

import logging
import uuid

from graphql import GraphQLError
from redis.exceptions import RedisError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import InvalidOperationTypeError

from mission.errors import MissionError

log = logging.getLogger("mission.api")


EXPECTED = (MissionError, GraphQLError, InvalidOperationTypeError)
ERROR_ID = "errorId"  # the extension a masked error carries: the id its log line has too


def is_expected(error: GraphQLError) -> bool:
    """GraphQL's own errors (syntax, validation, an operation type a transport does not run) and
    our `MissionError`s are meant for the caller."""
    original = error.original_error
    return original is None or isinstance(original, EXPECTED)


def is_masked(error: GraphQLError) -> bool:
    """An unexpected error of ours, already masked (see `MaskUnexpectedErrors`)."""
    return ERROR_ID in (error.extensions or {})


class MaskUnexpectedErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda error: not is_expected(error))

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        error_id = uuid.uuid4().hex[:12]
        original = error.original_error
        log.error(
            "unexpected error %s at %s",
            error_id,
            ".".join(str(p) for p in error.path or ()),
            exc_info=(type(original), original, original.__traceback__) if original is not None else None,
            extra={"error_id": error_id},
        )
        if isinstance(original, (RedisError, OSError)):
            message = f"The mission store is unavailable; retry shortly (error id {error_id})."
        else:
            message = f"Unexpected error (id {error_id}); it has been logged."
        return GraphQLError(
            message=message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions={ERROR_ID: error_id},
        )
