"""Documents: each text parsed once (`Document`, kept in the bounded `DOCUMENTS` cache), validated once per
schema, its shape (depth, aliases, introspection, switches, @defer/@stream) walked once, and its operations
planned once per operation name and @include/@skip values (`OperationPlan`, kept with the document).
`operation_of` answers the operation's name and kind from the same parse."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    parse,
    validate,
)

from gateway.planning.costs import hashable
from gateway.planning.plan import OperationPlan

MAX_DOCUMENTS = 512  # documents kept (each with its validation and plans)
MAX_PLANS_PER_DOCUMENT = 16  # operation name x @include/@skip values
INTROSPECTION_FIELDS = {"__schema", "__type"}


class _Shape:
    """Depth and introspection of every selection set, each fragment walked once (a fragment spread twice in
    each of twenty fragments is 2^20 paths but twenty walks)."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.memo: dict[str, tuple[int, bool]] = {}

    def of(
        self, selection_set: SelectionSetNode | None, seen: frozenset[str] = frozenset()
    ) -> tuple[int, bool]:
        deepest, introspection = 0, False
        if selection_set is None:
            return 0, False
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                name = selection.name.value
                if name in INTROSPECTION_FIELDS:
                    introspection = True
                if name.startswith("__"):
                    continue  # introspection is sized by the schema, not by the caller
                depth, inner = self.of(selection.selection_set, seen)
                deepest, introspection = max(deepest, depth + 1), introspection or inner
            elif isinstance(selection, InlineFragmentNode):
                depth, inner = self.of(selection.selection_set, seen)
                deepest, introspection = max(deepest, depth), introspection or inner
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue  # unknown or cyclic: validation says so
                if name not in self.memo:
                    self.memo[name] = self.of(fragment.selection_set, seen | {name})
                depth, inner = self.memo[name]
                deepest, introspection = max(deepest, depth), introspection or inner
        return deepest, introspection


def _count_aliases(document: DocumentNode) -> int:
    """Aliased fields written in the document, introspection and unused fragments included."""
    count = 0
    stack: list[Any] = list(document.definitions)
    while stack:
        current = stack.pop()
        if isinstance(current, FieldNode) and current.alias is not None:
            count += 1
        selection_set = getattr(current, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return count


INCREMENTAL_DIRECTIVES = ("defer", "stream")


def _uses_incremental(document: DocumentNode) -> bool:
    """Whether `@defer` or `@stream` appears anywhere in the document."""
    stack: list[Any] = list(document.definitions)
    while stack:
        current = stack.pop()
        for directive in getattr(current, "directives", None) or ():
            if directive.name.value in INCREMENTAL_DIRECTIVES:
                return True
        selection_set = getattr(current, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return False


def _switch_variables(document: DocumentNode) -> tuple[str, ...]:
    """The variables that `@include(if:)`/`@skip(if:)` (and `@defer(if:)`/`@stream(if:)`, which decide what the
    first part holds) read anywhere in the document."""
    names: list[str] = []
    stack: list[Any] = list(document.definitions)
    while stack:
        current = stack.pop()
        for directive in getattr(current, "directives", None) or ():
            if directive.name.value in ("include", "skip", *INCREMENTAL_DIRECTIVES):
                for argument in directive.arguments or ():
                    if argument.name.value != "if":
                        continue
                    if isinstance(argument.value, VariableNode) and argument.value.name.value not in names:
                        names.append(argument.value.name.value)
        selection_set = getattr(current, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return tuple(sorted(names))


class Document:
    """One document text: parsed once, validated once per schema, planned once per operation and switches."""

    def __init__(self, document: DocumentNode) -> None:
        self.document = document
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        self.switches = _switch_variables(document)
        self.aliases = _count_aliases(document)
        self.incremental = _uses_incremental(document)  # @defer or @stream somewhere
        self.shape = _Shape(self.fragments)
        self.validated: dict[tuple[Any, ...], list[GraphQLError]] = {}
        self.plans: LRUCache[tuple[Any, ...], OperationPlan] = LRUCache(MAX_PLANS_PER_DOCUMENT)

    def operation(self, name: str | None) -> OperationDefinitionNode | None:
        """The spec's GetOperation: the named operation, or the only one when no name is given."""
        if name:
            return next((op for op in self.operations if op.name and op.name.value == name), None)
        return self.operations[0] if len(self.operations) == 1 else None

    def validate(self, schema: GraphQLSchema, rules: tuple[Any, ...]) -> list[GraphQLError]:
        key = (id(schema), rules)
        errors = self.validated.get(key)
        if errors is None:
            errors = self.validated[key] = validate(schema, self.document, rules or None)
        return errors

    def plan(
        self,
        schema: GraphQLSchema,
        name: str | None,
        variables: Mapping[str, Any] | None,
        answers_allowed: bool = False,
    ) -> tuple[OperationPlan | None, bool]:
        """The plan of the operation `name` for these variables' @include/@skip values (None when there is no
        such operation), and whether it was reused. `answers_allowed`: the schema's executor passes objects
        decoded into their answers through (one schema, one executor: `schema` is part of the key)."""
        variables = variables or {}
        switches = tuple(hashable(variables.get(v)) for v in self.switches)
        key = (id(schema), name, switches)
        plan = self.plans.get(key)
        if plan is not None:
            return plan, True
        operation = self.operation(name)
        if operation is None:
            return None, False
        plan = self.plans[key] = OperationPlan(
            schema, self, operation, dict(zip(self.switches, switches, strict=True)), answers_allowed
        )
        return plan, False


DOCUMENTS: LRUCache[tuple[str, int], Document] = LRUCache(MAX_DOCUMENTS)


def document_for(text: str, max_tokens: int) -> Document:
    """The parsed document of `text` (raises the parser's GraphQLError; failures are not kept)."""
    key = (text, max_tokens)
    found = DOCUMENTS.get(key)
    if found is None:
        found = DOCUMENTS[key] = Document(parse(text, no_location=True, max_tokens=max_tokens))
    return found


@dataclass(frozen=True, slots=True)
class Operation:
    name: str | None  # None: anonymous (or unknown)
    kind: str | None  # query, mutation, subscription; None when it cannot be told
    parsed: bool  # False when the document does not parse


def operation_of(query: str, operation_name: str | None, max_tokens: int) -> Operation:
    """The operation a document and operation name select, from the documents' cache (one parse)."""
    try:
        document = document_for(query, max_tokens)
    except GraphQLError:
        return Operation(None, None, False)
    return operation_in(document, operation_name)


def operation_in(document: Document, operation_name: str | None) -> Operation:
    """The operation a parsed document and operation name select."""
    chosen = document.operation(operation_name)
    if chosen is None:
        return Operation(operation_name or None, None, True)
    return Operation(chosen.name.value if chosen.name else None, chosen.operation.value, True)
