"""Parsing and validation with the service's limits, cached, and cheap checks first."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    Visitor,
    visit,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaxAliasesLimiter, ParserCache, QueryDepthLimiter, SchemaExtension
from strawberry.extensions.validation_cache import _get_validate_cache

from config.settings import Settings


def limit_rules(settings: Settings) -> tuple[type[ASTValidationRule], ...]:
    """The limits' validation rules, built once: the validation cache is keyed by the rule classes,
    so rules made afresh for each request (as Strawberry's limiter extensions do) never hit it."""
    rules = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_query_aliases).validation_rules,
    ]
    if not settings.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    return tuple(rules)


class _FieldCounter(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.fields = 0

    def enter_field(self, node: FieldNode, *_: object) -> None:
        self.fields += 1


@lru_cache(maxsize=1024)  # documents come from the parser cache: the same query, the same answer
def shape_problem(document: DocumentNode, operation_name: str | None, max_fields: int) -> str | None:
    """Refusals cheap enough to make before validation: a query selecting more fields than
    ``max_fields`` (validation compares sibling fields pairwise, so a wide query would stall the
    server), and several operations with no ``operationName`` (which to run is unknowable)."""
    counter = _FieldCounter()
    visit(document, counter)
    if counter.fields > max_fields:
        return f"the query selects {counter.fields} fields; the limit is {max_fields}"
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) > 1 and not operation_name:
        return "the document has several operations: say which to run with operationName"
    return None


class Validation(SchemaExtension):
    """The shape check, then graphql-core's validation with our rules, cached per document."""

    def __init__(self, rules: Sequence[type[ASTValidationRule]], max_fields: int, maxsize: int = 1024) -> None:
        super().__init__()
        self.rules = rules
        self.max_fields = max_fields
        self.validate = _get_validate_cache(maxsize)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            # the name the client sent (`operation_name` falls back to the first operation's)
            asked = getattr(context, "_provided_operation_name", None)
            problem = shape_problem(document, asked, self.max_fields)
            if problem is not None:
                context.pre_execution_errors = [GraphQLError(problem)]
            else:
                rules = (*context.validation_rules, *self.rules)
                context.pre_execution_errors = self.validate(context.schema._schema, document, rules)
        yield


class Parsing(ParserCache):
    """Strawberry's parser cache with a token limit (one extension where Strawberry uses two: every
    extension costs a little on each subscription event). A document that does not parse is left to
    Strawberry's own parsing step, which reports the error on every transport (websockets included).
    """

    def __init__(self, max_tokens: int, maxsize: int = 1024) -> None:
        super().__init__(maxsize=maxsize)
        self.max_tokens = max_tokens

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        try:
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        except GraphQLError:
            context.graphql_document = None
        yield
