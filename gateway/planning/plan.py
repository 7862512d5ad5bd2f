"""Operation plans: what an operation will do, worked out once and reused by every request that sends it.

A request's document text is parsed once (`Document`, kept in the one bounded cache `DOCUMENTS`), validated
once per schema, and each of its operations is planned once per operation name and values of the variables
that `@include`/`@skip` read (`OperationPlan`, kept with its document). A plan holds:

- the operation's name and kind (`operation_of` answers from the same parse: nothing parses twice);
- its depth, aliases and introspection use, found by one walk over the document with each fragment walked
  once (`_Shape`), and the merged field tree (`Selected`: fragments, aliases and directives resolved, each
  fragment flattened once), from which the cost is counted with what each field declares (`gateway/schema/declarations.py`);
- the decoders: for each kind of upstream answer (v2 case lists, v2 cases, v1 lists, v1 cases) a msgspec
  decoder of exactly the keys the operation reads (`Decoders`); anything else in the body is skipped unread;
- for a v2 case list whose cases' selection only copies, the decoder that makes each case its answer and the
  answer's class (`gateway/planning/structs.py`), which the fast path passes through;
- the compiled projections of the fast execution path (`gateway/planning/execution.py`);
- lookaheads for resolvers (`reaches`): whether a field below this one is selected for the same part of the
  answer, so a list can fetch its links in one go (a field selected only under `@defer`, or below a `@stream`ed
  list, is not: waiting for it would hold back the part it is not in).

`@defer` and `@stream` change when a part of the answer is sent, not what is planned: a deferred field is in
the tree, its decoders and its cost like any other (counted once), and a document that uses them decodes
into plain dicts (`Document.incremental`: no answers decoded straight into their classes).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from cachetools import LRUCache
from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    TypeNameMetaFieldDef,
    VariableNode,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    parse,
    validate,
)
from strawberry.extensions import SchemaExtension

from gateway.ops.config import Settings
from gateway.planning.limits import Limits, limit_error
from gateway.planning.structs import answer_decoder
from gateway.schema.declarations import COST, READS, RESULT, RESULT_READS, declared, is_plain, upstream_key
from gateway.upstream.decoding import FULL, Decoders, Keys, merge

MAX_DOCUMENTS = 512  # documents kept (each with its validation and plans)
MAX_PLANS_PER_DOCUMENT = 16  # operation name x @include/@skip values
MAX_PLANNED_FIELDS = 20_000  # merged fields one operation may select (past it: QUERY_TOO_COMPLEX)
# their `items` (pages) or `edges` (cursor connections) are a page
PAGES = {"CasePage", "LegacyCasePage", "ActivityPage", "RecordPage"}
PAGES |= {"CaseConnection", "LegacyCaseConnection", "ActivityConnection", "CaseRecordConnection"}
PAGE_SIZE_ARGS = ("perPage", "first", "last")
INTROSPECTION_FIELDS = {"__schema", "__type"}


# --- the document: parsed once, its shape walked once ------------------------------------------------------


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
        switches = tuple(_hashable(variables.get(v)) for v in self.switches)
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


def _hashable(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else repr(value)


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
    chosen = document.operation(operation_name)
    if chosen is None:
        return Operation(operation_name or None, None, True)
    return Operation(chosen.name.value if chosen.name else None, chosen.operation.value, True)


# --- the merged field tree --------------------------------------------------------------------------------


@dataclass
class Selected:
    """One response key of one object type: the field nodes merged under it and what is selected below."""

    field_name: str
    field_def: GraphQLField
    nodes: list[FieldNode]
    # sent in a later part than its parent: every node of it is under a `@defer` fragment (or is `@stream`ed)
    later: bool = False
    # below it, by the type condition each field was asked under (the field's type, or a fragment's type)
    children: dict[str, dict[str, Selected]] = field(default_factory=dict)

    @property
    def first(self) -> FieldNode:
        return self.nodes[0]


class TooComplex(Exception):
    """The operation selects more merged fields than MAX_PLANNED_FIELDS."""


Flat = tuple[str, FieldNode, bool]  # the type a field is asked under, its node, whether in a later part


def _add(out: dict[tuple[str, int], Flat], key: tuple[str, int], value: Flat) -> None:
    """Add a flattened field; asked both in this part and a later one, it is in this part."""
    found = out.get(key)
    out[key] = value if found is None or found[2] else found


class _Tree:
    """Builds the merged field tree of one operation for one set of @include/@skip values."""

    def __init__(self, schema: GraphQLSchema, document: Document, switches: Mapping[str, Any]) -> None:
        self.schema = schema
        self.fragments = document.fragments
        self.switches = switches
        self.flat_fragments: dict[tuple[str, str], dict[tuple[str, int], tuple[str, FieldNode]]] = {}
        self.fields = 0

    def included(self, node: Any) -> bool:
        for directive in node.directives or ():
            name = directive.name.value
            if name not in ("include", "skip"):
                continue
            value: Any = name == "include"
            for argument in directive.arguments or ():
                if argument.name.value == "if":
                    if isinstance(argument.value, BooleanValueNode):
                        value = argument.value.value
                    elif isinstance(argument.value, VariableNode):
                        value = self.switches.get(argument.value.name.value, value)
            if bool(value) != (name == "include"):
                return False
        return True

    def later(self, node: Any, directive_name: str) -> bool:
        """Whether `node` carries `@defer` (or `@stream`) that applies: without `if`, or with one not false."""
        for directive in node.directives or ():
            if directive.name.value != directive_name:
                continue
            for argument in directive.arguments or ():
                if argument.name.value == "if":
                    if isinstance(argument.value, BooleanValueNode):
                        return argument.value.value
                    if isinstance(argument.value, VariableNode):
                        return bool(self.switches.get(argument.value.name.value, True))
            return True
        return False

    def flat(
        self, selection_set: SelectionSetNode | None, condition: str, seen: frozenset[str] = frozenset()
    ) -> dict[tuple[str, int], Flat]:
        """The field nodes of a selection set with the type each is asked under and whether it comes in a later
        part (`Selected.later`), fragments flattened (each fragment once per condition) and deduplicated by
        node (asked in this part and a later one: in this part)."""
        out: dict[tuple[str, int], Flat] = {}
        if selection_set is None:
            return out
        for selection in selection_set.selections:
            if not self.included(selection):
                continue
            if isinstance(selection, FieldNode):
                _add(out, (condition, id(selection)), (condition, selection, self.later(selection, "stream")))
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = selection.type_condition.name.value if selection.type_condition else condition
                flat = self.flat(selection.selection_set, inner, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue
                key = (name, condition)
                found = self.flat_fragments.get(key)
                if found is None:
                    inner = fragment.type_condition.name.value
                    found = self.flat_fragments[key] = self.flat(fragment.selection_set, inner, seen | {name})
                flat = found
            else:
                continue
            deferred = self.later(selection, "defer")
            for key, (asked_under, node, later) in flat.items():
                _add(out, key, (asked_under, node, later or deferred))
        return out

    def children(
        self, selection_sets: list[SelectionSetNode], type_name: str
    ) -> dict[str, dict[str, Selected]]:
        flat: dict[tuple[str, int], Flat] = {}
        for selection_set in selection_sets:
            for key, value in self.flat(selection_set, type_name).items():
                _add(flat, key, value)
        grouped: dict[str, dict[str, Selected]] = {}
        for condition, node, later in flat.values():
            field_name = node.name.value
            parent = self.schema.get_type(condition)
            fields = getattr(parent, "fields", None)
            field_def = fields.get(field_name) if fields is not None else None
            if field_name == "__typename":
                field_def = TypeNameMetaFieldDef
            if field_def is None:
                continue  # introspection, or unknown (validation says so)
            key = node.alias.value if node.alias else field_name
            under = grouped.setdefault(condition, {})
            found = under.get(key)
            if found is None:
                self.fields += 1
                if self.fields > MAX_PLANNED_FIELDS:
                    raise TooComplex
                under[key] = Selected(field_name, field_def, [node], later)
            else:
                found.nodes.append(node)
                found.later = found.later and later
        for under in grouped.values():
            for selected in under.values():
                child_type = get_named_type(selected.field_def.type)
                sets = [n.selection_set for n in selected.nodes if n.selection_set is not None]
                if sets and not is_leaf_type(child_type) and not selected.field_name.startswith("__"):
                    selected.children = self.children(sets, child_type.name)
        return grouped


def _applies(schema: GraphQLSchema, condition: str, type_: GraphQLObjectType) -> bool:
    """Whether fields asked under `condition` apply to objects of `type_`."""
    if condition == type_.name:
        return True
    abstract = schema.get_type(condition)
    return abstract is not None and is_abstract_type(abstract) and schema.is_sub_type(abstract, type_)  # type: ignore[arg-type]


def fields_on(
    schema: GraphQLSchema, children: dict[str, dict[str, Selected]], type_: Any
) -> Iterator[Selected]:
    """The selected fields that apply to objects of `type_` (an abstract type: every condition's)."""
    for condition, under in children.items():
        if not isinstance(type_, GraphQLObjectType) or _applies(schema, condition, type_):
            yield from under.values()


# --- upstream keys read, and the decoders --------------------------------------------------------------------


def _list_depth(type_: Any) -> int:
    depth = 0
    while True:
        if is_non_null_type(type_):
            type_ = type_.of_type
        elif is_list_type(type_):
            depth += 1
            type_ = type_.of_type
        else:
            return depth


class _Reads:
    """The upstream keys an operation reads, per kind of upstream object ("family")."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self.families: dict[str, Keys] = {}
        self.unknown = False  # a resolver field declared nothing: decode everything
        self.registered: dict[str, int] = {}  # how many fields return objects of each family
        self.v2_items: list[tuple[Selected, Any]] = []  # the `items` of v2 case lists, with their type

    def family(self, name: str, keys: Keys) -> None:
        self.registered[name] = self.registered.get(name, 0) + 1
        found = self.families.setdefault(name, {})
        for key, shape in keys.items():
            merge(found, key, shape)

    def keys(self, children: dict[str, dict[str, Selected]], type_: Any) -> Keys:
        """What objects of `type_` must keep for these selected fields (and register the families their
        fetching fields return)."""
        keys: Keys = {}
        for selected in fields_on(self.schema, children, type_):
            if selected.field_name == "__typename":
                continue
            field_def = selected.field_def
            child_type = get_named_type(field_def.type)
            if is_plain(field_def):
                key = upstream_key(field_def, selected.field_name)
                if is_leaf_type(child_type) or not selected.children:
                    merge(keys, key, None)
                else:
                    merge(
                        keys,
                        key,
                        (_list_depth(field_def.type), self.object_keys(selected.children, child_type)),
                    )
                continue
            metadata = declared(field_def.extensions)
            if READS not in metadata:
                self.unknown = True
                continue
            for key in metadata[READS]:
                merge(keys, key, None)
            self.result(metadata.get(RESULT), metadata.get(RESULT_READS, ()), selected.children, child_type)
        return keys

    def object_keys(self, children: dict[str, dict[str, Selected]], type_: Any) -> Keys:
        if is_abstract_type(type_):
            merged: Keys = {}
            for possible in self.schema.get_possible_types(type_):
                for key, shape in self.keys(children, possible).items():
                    merge(merged, key, shape)
            return merged
        return self.keys(children, type_)

    def result(self, family: str | None, result_reads: tuple[str, ...], children: Any, type_: Any) -> None:
        """Register what the objects a resolver returns must keep."""
        extra = dict.fromkeys(result_reads)
        if family in ("v2.case", "v1.case"):
            self.family(family, {**self.object_keys(children, type_), **extra})
        elif family in ("v2.list", "v1.list"):  # a page: its items are the cases
            items: Keys = {}
            for selected in fields_on(self.schema, children, type_):
                if selected.field_name == "items":
                    item_type = get_named_type(selected.field_def.type)
                    for key, shape in self.object_keys(selected.children, item_type).items():
                        merge(items, key, shape)
                    if family == "v2.list":
                        self.v2_items.append((selected, item_type))
            self.family(family.replace("list", "case"), items)
        elif family in (
            "v2.connection",
            "v1.connection",
        ):  # a cursor connection: its edges' nodes are the cases
            nodes: Keys = dict(extra)
            for edges in fields_on(self.schema, children, type_):
                if edges.field_name != "edges":
                    continue
                edge_type = get_named_type(edges.field_def.type)
                for node in fields_on(self.schema, edges.children, edge_type):
                    if node.field_name == "node":
                        node_type = get_named_type(node.field_def.type)
                        for key, shape in self.object_keys(node.children, node_type).items():
                            merge(nodes, key, shape)
            self.family(family.replace("connection", "case"), nodes)
        elif family == "node":
            for possible in self.schema.get_possible_types(type_):
                name = "v2.case" if possible.name == "Case" else "v1.case"
                self.family(name, self.keys(children, possible))
        else:  # pages of activities or records: decoded whole, but what they hold may fetch (users' cases)
            self.object_keys(children, type_)


# --- the plan ------------------------------------------------------------------------------------------------


class OperationPlan:
    """One operation of one document, for one set of @include/@skip values (see the module's docstring)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: Document,
        operation: OperationDefinitionNode,
        switches: Mapping[str, Any],
        answers_allowed: bool = False,
    ) -> None:
        self.schema = schema
        # Whether the executor passes objects decoded into their answers through (the fast one does), and
        # those objects' classes by the field nodes of the selection they answer.
        self.answers_allowed = answers_allowed
        self.answers: dict[frozenset[int], type] = {}
        self.name = operation.name.value if operation.name else None
        self.kind = operation.operation.value
        self.depth, self.introspection = document.shape.of(operation.selection_set)
        for (
            fragment
        ) in document.fragments.values():  # introspection in fragments no operation uses counts too
            self.introspection = self.introspection or document.shape.of(fragment.selection_set)[1]
        self.aliases = document.aliases
        self.incremental = document.incremental
        root = schema.get_root_type(operation.operation)
        self.root_type = root.name if root is not None else "Query"
        self.too_complex = False
        self.tree: dict[str, dict[str, Selected]] = {}
        try:
            self.tree = _Tree(schema, document, switches).children([operation.selection_set], self.root_type)
        except TooComplex:
            self.too_complex = True
        self._costs: dict[tuple[Any, ...], int] = {}  # by the values of the size variables, and the limits
        self._size_variables = _size_variables(self.tree)
        self.decoders = self._decoders()
        self.projections: dict[tuple[Any, ...], Any] = {}  # the fast path's, compiled on first use

    def _decoders(self) -> Decoders:
        if self.too_complex or self.kind != "query":
            return FULL
        reads = _Reads(self.schema)
        root = self.schema.get_type(self.root_type)
        reads.keys(self.tree, root)
        if reads.unknown:
            return FULL
        decoders = Decoders.reading(reads.families)
        if (
            self.answers_allowed
            and not self.incremental
            and reads.registered.get("v2.case") == 1
            and len(reads.v2_items) == 1
        ):
            # one v2 case list, and no other field returns v2 cases: when its cases' selection only copies,
            # they are decoded straight into their answers (gateway/planning/structs.py)
            items, case_type = reads.v2_items[0]
            made = answer_decoder(self.schema, case_type, items.children)
            if made is not None:
                decoders = replace(decoders, v2_list=made[0])
                self.answers[frozenset(map(id, items.nodes))] = made[1]
        return decoders

    def cost(self, variables: Mapping[str, Any], limits: Limits) -> int:
        """Upstream calls the operation could make (stops counting past `limits.max_cost`)."""
        if self.too_complex:
            return limits.max_cost + 1
        key = (tuple(_hashable(variables.get(name)) for name in self._size_variables), limits)
        found = self._costs.get(key)
        if found is None:
            found = _Cost(self.schema, variables, limits).of(self.tree, self.root_type, 1)
            if len(self._costs) < 64:
                self._costs[key] = found
        return found

    def reaches(self, response_key: str, *path: str) -> bool:
        """Whether the root field `response_key` selects fields named `path` below it for the same part of the
        answer (any alias, any type condition): a resolver's lookahead, honouring fragments, @include/@skip,
        and @defer/@stream (a field that comes in a later part is not reached: see `Selected.later`)."""
        level = [s for under in self.tree.values() for k, s in under.items() if k == response_key]
        for name in path:
            level = [
                s
                for selected in level
                for under in selected.children.values()
                for s in under.values()
                if s.field_name == name and not s.later
            ]
        return bool(level)


def _size_variables(tree: dict[str, dict[str, Selected]]) -> tuple[str, ...]:
    """The variables that give a page size somewhere in the tree (the cost is remembered by their values)."""
    names: dict[str, None] = {}
    stack = [tree]
    while stack:
        for under in stack.pop().values():
            for selected in under.values():
                for node in selected.first.arguments or ():
                    if node.name.value in PAGE_SIZE_ARGS and isinstance(node.value, VariableNode):
                        names[node.value.name.value] = None
                stack.append(selected.children)
    return tuple(names)


class _Cost:
    def __init__(self, schema: GraphQLSchema, variables: Mapping[str, Any], limits: Limits) -> None:
        self.schema = schema
        self.variables = variables
        self.limits = limits

    def size(self, selected: Selected) -> int | None:
        for name in PAGE_SIZE_ARGS:
            for node in selected.first.arguments or ():
                if node.name.value != name:
                    continue
                if isinstance(node.value, IntValueNode):
                    return int(node.value.value)
                if isinstance(node.value, VariableNode):
                    given = self.variables.get(node.value.name.value)
                    if isinstance(given, int) and not isinstance(given, bool):
                        return given
                break
            arg_def = selected.field_def.args.get(name)
            default = getattr(arg_def, "default_value", None)
            if isinstance(default, int):
                return default
        return None

    def of(
        self, children: dict[str, dict[str, Selected]], type_name: str, count: int, page_size: int = 1
    ) -> int:
        total = 0
        for condition, under in children.items():
            for selected in under.values():
                field_def = selected.field_def
                cost = declared(field_def.extensions).get(COST)
                size = self.size(selected)
                if size is None and cost is not None:
                    size = cost.window  # a cursor connection without `first`/`last`
                size = max(size or 1, 1)
                child_count, child_page = count, 1
                if cost is not None:
                    given = frozenset(node.name.value for node in selected.first.arguments or ())
                    calls, child_count, child_page = cost.calls(count, size, self.limits.list_size, given)
                    total += calls
                elif condition in PAGES and selected.field_name in ("items", "edges"):
                    child_count = count * page_size
                elif _list_depth(field_def.type):
                    child_count = count * self.limits.list_size
                if total > self.limits.max_cost:
                    return total
                if selected.children:
                    total += self.of(
                        selected.children, get_named_type(field_def.type).name, child_count, child_page
                    )
                    if total > self.limits.max_cost:
                        return total
        return total


def check(plan: OperationPlan, variables: Mapping[str, Any] | None, limits: Limits) -> list[GraphQLError]:
    """The limits this operation breaks (empty when none): depth, aliases, introspection, cost."""
    errors = []
    if plan.depth > limits.max_depth:
        errors.append(
            limit_error(
                f"The query is too deep: {plan.depth} levels of nested fields, more than the {limits.max_depth} "
                "allowed (MAX_QUERY_DEPTH).",
                "QUERY_TOO_DEEP",
                maxDepth=limits.max_depth,
            )
        )
    if plan.aliases > limits.max_aliases:
        errors.append(
            limit_error(
                f"The query has {plan.aliases} aliased fields, more than the {limits.max_aliases} allowed "
                "(MAX_ALIASES).",
                "TOO_MANY_ALIASES",
                maxAliases=limits.max_aliases,
            )
        )
    if plan.introspection and not limits.introspection:
        errors.append(
            limit_error(
                "Introspection (__schema, __type) is disabled on this gateway.", "INTROSPECTION_DISABLED"
            )
        )
    if errors or plan.kind != "query":
        return errors
    if plan.cost(variables or {}, limits) > limits.max_cost:
        errors.append(
            limit_error(
                f"The query is too complex: it could make more than {limits.max_cost} upstream calls "
                "(MAX_QUERY_COST). Ask for fewer items (perPage, first) or fewer nested fields that fetch.",
                "QUERY_TOO_COMPLEX",
                maxCost=limits.max_cost,
            )
        )
    return errors


def check_document(
    schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any] | None, limits: Limits
) -> list[GraphQLError]:
    """`check` for every operation of a parsed document (for callers without a request)."""
    planned = Document(document)
    errors: list[GraphQLError] = []
    for operation in planned.operations:
        plan = OperationPlan(schema, planned, operation, dict.fromkeys(planned.switches, True))
        errors.extend(
            e for e in check(plan, variables, limits) if e.message not in {x.message for x in errors}
        )
    return errors


# --- in the schema's pipeline --------------------------------------------------------------------------------


class Planner(SchemaExtension):
    """Parse from the documents' cache, validate once per document, plan once per operation, apply the limits
    and hand the plan to execution through the request's context (`Context.plan`).

    The limits come from the context's settings (the defaults without a gateway context)."""

    @cached_property
    def limits(self) -> Limits:
        """This request's limits, made once for its three hooks (the extension lives for one request)."""
        settings = getattr(self.execution_context.context, "settings", None)
        return Limits.from_settings(settings) if isinstance(settings, Settings) else Limits()

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.limits.max_tokens
        yield

    document: Document | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query and context.graphql_document is None:
            try:
                self.document = document_for(context.query, self.limits.max_tokens)
            except GraphQLError:
                pass  # strawberry parses again and reports the error
            else:
                context.graphql_document = self.document.document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = self.document
        if document is not None and context.pre_execution_errors is None:
            limits = self.limits
            errors = document.validate(context.schema._schema, tuple(context.validation_rules))
            if not errors:
                allowed = getattr(context.schema.execution_context_class, "passes_answers", False)
                plan, reused = document.plan(
                    context.schema._schema, context.operation_name, context.variables, allowed
                )
                if plan is not None:
                    errors = check(plan, context.variables, limits)
                    use_plan = getattr(context.context, "use_plan", None)
                    if use_plan is not None and not errors:
                        use_plan(plan, reused)
            context.pre_execution_errors = errors
        yield
