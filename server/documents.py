"""Reading a GraphQL document's shape before executing it (the shared subscriptions and the read
cache each serve one kind of operation only)."""

from __future__ import annotations

from functools import lru_cache

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse


@lru_cache(maxsize=1024)
def only_root_field(query: str, operation_name: str | None, max_tokens: int, kind: OperationType) -> FieldNode | None:
    """The one root field of the operation that would run, when it is of ``kind`` and selects a single
    field; None otherwise (another kind, several operations without a name, a fragment at the root, a
    document that does not parse)."""
    try:
        document = parse(query, max_tokens=max_tokens, no_location=True)
    except (GraphQLError, RecursionError):
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not kind:
        return None
    selections = operations[0].selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode):
        return None
    return selections[0]
