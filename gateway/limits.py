"""Limits on what one request may ask: refused before any upstream call, each with its own code.

- `MAX_QUERY_TOKENS`: graphql-core's parser stops past this many tokens (`QUERY_TOO_LARGE`), so a huge
  document costs no more than reading that many tokens.
- `MAX_QUERY_DEPTH` (`QUERY_TOO_DEEP`), `MAX_ALIASES` (`TOO_MANY_ALIASES`) and `MAX_QUERY_COST`
  (`QUERY_TOO_COMPLEX`): checked on the parsed document before it is validated or executed.
- `INTROSPECTION=false`: `__schema` and `__type` are refused (`INTROSPECTION_DISABLED`).
- `MAX_REQUEST_BYTES`: a larger request body gets HTTP 413 before it is read whole (`gateway/graphql_http.py`).

The cost is the number of upstream calls the query could make, counted with what the schema knows about
each field (the same costs its descriptions state): a list multiplies what is below it by its size (its
`perPage`/`first`, or `COST_LIST_SIZE` for lists without a size argument), and a field that fetches adds
its calls for all the objects it is asked on, batching included:

    Query.cases, legacyCases, case, legacyCase, node    1 call each
    Case.legacyCase, activityPage, recordPage           1 call per case (v1 cannot batch)
    Case.linkedCases, LegacyCase.case                   1 call per 50 cases fetched
    Assignee.cases, Tag.cases                           the combined listings (1 per 50 cases, + 1) and,
                                                        at worst, 1 more call per user/tag
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_list_type,
    is_non_null_type,
)
from strawberry.extensions import SchemaExtension

from gateway.config import Settings

BATCH = 50  # v2 cases per `case_ids` call (gateway/loaders.py)
ROOT_FETCHES = {"cases", "legacyCases", "case", "legacyCase", "node"}
PER_OBJECT = {("Case", "legacyCase"), ("Case", "activityPage"), ("Case", "recordPage")}
PER_BATCH = {("Case", "linkedCases"), ("LegacyCase", "case")}
RELATED = {("Assignee", "cases"), ("Tag", "cases")}
PAGES = {"CasePage", "LegacyCasePage", "ActivityPage", "RecordPage"}  # their `items` are a page
PAGE_SIZE_ARGS = ("perPage", "first")
INTROSPECTION_FIELDS = {"__schema", "__type"}


@dataclass(frozen=True)
class Limits:
    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 3000
    max_cost: int = 300
    list_size: int = 5
    introspection: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_query_tokens,
            max_cost=settings.max_query_cost,
            list_size=settings.cost_list_size,
            introspection=settings.introspection,
        )


def limit_error(message: str, code: str, **extra: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extra})


class _Walk:
    """One pass over a document: depth, aliases, introspection, and the cost of each operation."""

    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any], limits: Limits
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.limits = limits
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.aliases = 0
        self.introspection = False

    def fields(
        self, selection_set: SelectionSetNode | None, seen: frozenset[str] = frozenset()
    ) -> Iterator[FieldNode]:
        """The fields of a selection set, fragments flattened (a fragment cycle is left to validation)."""
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from self.fields(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in seen:
                    yield from self.fields(fragment.selection_set, seen | {name})

    def depth(self, selection_set: SelectionSetNode | None, level: int = 0) -> int:
        deepest = level
        for field in self.fields(selection_set):
            name = field.name.value
            if field.alias is not None:
                self.aliases += 1
            if name in INTROSPECTION_FIELDS:
                self.introspection = True
            if name.startswith("__"):
                continue  # introspection is sized by the schema, not by the caller
            deepest = max(deepest, self.depth(field.selection_set, level + 1))
            if deepest > self.limits.max_depth:
                return deepest  # deep enough to refuse: no need to walk further
        return deepest

    def argument(self, field: FieldNode, field_def: Any, name: str) -> int | None:
        """An Int argument's value (literal or variable), else its default; None when it has neither."""
        for node in field.arguments or ():
            if node.name.value == name:
                value = node.value
                if isinstance(value, IntValueNode):
                    return int(value.value)
                if isinstance(value, VariableNode):
                    given = self.variables.get(value.name.value)
                    if isinstance(given, int) and not isinstance(given, bool):
                        return given
                break
        arg_def = field_def.args.get(name) if field_def is not None else None
        default = getattr(arg_def, "default_value", None)
        return default if isinstance(default, int) else None

    def cost(
        self, selection_set: SelectionSetNode | None, type_name: str, count: int, page_size: int = 1
    ) -> int:
        """Upstream calls the selection could make on `count` objects of type `type_name`."""
        total = 0
        for field, parent_name in self.typed_fields(selection_set, type_name):
            name = field.name.value
            if name.startswith("__"):
                continue
            parent = self.schema.get_type(parent_name)
            field_def = parent.fields.get(name) if isinstance(parent, GraphQLObjectType) else None
            if field_def is None:
                continue  # unknown: validation will say so
            key = (parent_name, name)
            size = next(
                (s for arg in PAGE_SIZE_ARGS if (s := self.argument(field, field_def, arg)) is not None), None
            )
            size = max(size or 1, 1)
            child_count, child_page = count, 1
            if (parent_name == "Query" and name in ROOT_FETCHES) or key in PER_OBJECT:
                total += count
                child_page = size
            elif key in PER_BATCH:
                child_count = count * (self.limits.list_size if name == "linkedCases" else 1)
                total += math.ceil(child_count / BATCH)
            elif key in RELATED:
                child_count = count * size
                total += count + math.ceil(child_count / BATCH) + 1
            elif parent_name in PAGES and name == "items":
                child_count = count * page_size
            elif _is_list(field_def.type):
                child_count = count * self.limits.list_size
            if total > self.limits.max_cost:
                return total
            if field.selection_set is not None:
                child_type = get_named_type(field_def.type).name
                total += self.cost(field.selection_set, child_type, child_count, child_page)
                if total > self.limits.max_cost:
                    return total
        return total

    def typed_fields(
        self, selection_set: SelectionSetNode | None, type_name: str, seen: frozenset[str] = frozenset()
    ) -> Iterator[tuple[FieldNode, str]]:
        """The fields of a selection set with the type each is asked on (fragments on a concrete type of
        an interface, `... on Case`, ask on that type)."""
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, type_name
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition.name.value if selection.type_condition else type_name
                yield from self.typed_fields(selection.selection_set, condition, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in seen:
                    condition = fragment.type_condition.name.value
                    yield from self.typed_fields(fragment.selection_set, condition, seen | {name})


def _is_list(type_: Any) -> bool:
    return is_list_type(type_.of_type if is_non_null_type(type_) else type_)


def check_document(
    schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any] | None, limits: Limits
) -> list[GraphQLError]:
    """The limits this document breaks (empty when none): depth, aliases, introspection, cost."""
    walk = _Walk(schema, document, variables or {}, limits)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    depth = max((walk.depth(op.selection_set) for op in operations), default=0)
    for fragment in walk.fragments.values():  # aliases in fragments no operation uses count too
        walk.depth(fragment.selection_set)
    errors = []
    if depth > limits.max_depth:
        errors.append(
            limit_error(
                f"The query is too deep: {depth} levels of nested fields, more than the {limits.max_depth} "
                "allowed (MAX_QUERY_DEPTH).",
                "QUERY_TOO_DEEP",
                maxDepth=limits.max_depth,
            )
        )
    if walk.aliases > limits.max_aliases:
        errors.append(
            limit_error(
                f"The query has {walk.aliases} aliased fields, more than the {limits.max_aliases} allowed "
                "(MAX_ALIASES).",
                "TOO_MANY_ALIASES",
                maxAliases=limits.max_aliases,
            )
        )
    if walk.introspection and not limits.introspection:
        errors.append(
            limit_error(
                "Introspection (__schema, __type) is disabled on this gateway.", "INTROSPECTION_DISABLED"
            )
        )
    if errors:
        return errors
    query_type = schema.query_type.name if schema.query_type else "Query"
    cost = max(
        (walk.cost(op.selection_set, query_type, 1) for op in operations if op.operation.value == "query"),
        default=0,
    )
    if cost > limits.max_cost:
        errors.append(
            limit_error(
                f"The query is too complex: it could make more than {limits.max_cost} upstream calls "
                "(MAX_QUERY_COST). Ask for fewer items (perPage, first) or "
                "fewer nested fields that fetch.",
                "QUERY_TOO_COMPLEX",
                maxCost=limits.max_cost,
            )
        )
    return errors


class QueryLimits(SchemaExtension):
    """Applies the limits of the request's settings (defaults without a gateway context): the token limit
    to the parser, the others to the parsed document before validation, which they spare."""

    def _limits(self) -> Limits:
        settings = getattr(self.execution_context.context, "settings", None)
        return Limits.from_settings(settings) if isinstance(settings, Settings) else Limits()

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self._limits().max_tokens
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and not context.pre_execution_errors:
            errors = checked(context.schema._schema, context, self._limits())
            if errors:
                context.pre_execution_errors = errors
        yield


_CHECKED: dict[tuple[Any, ...], list[GraphQLError]] = {}
MAX_CHECKED = 1024  # remembered checks (the memo starts over when full)


def checked(schema: GraphQLSchema, context: Any, limits: Limits) -> list[GraphQLError]:
    """`check_document` for a request, remembered by query text and variables: the parsed document is a
    pure function of the text (strawberry's parser cache), so the walk over it is done once per query and
    variables, not on every request."""
    try:
        variables = orjson.dumps(context.variables or {}, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # not JSON (only from in-process callers): check without remembering
        return check_document(schema, context.graphql_document, context.variables, limits)
    key = (id(schema), context.query, variables, limits)
    errors = _CHECKED.get(key)
    if errors is None:
        errors = check_document(schema, context.graphql_document, context.variables, limits)
        if len(_CHECKED) >= MAX_CHECKED:
            _CHECKED.clear()
        _CHECKED[key] = errors
    return errors


def is_token_limit(error: GraphQLError) -> bool:
    """The parser's own error for a document over MAX_QUERY_TOKENS (it gets `QUERY_TOO_LARGE`)."""
    return error.message.startswith("Syntax Error: Document contains more than")
