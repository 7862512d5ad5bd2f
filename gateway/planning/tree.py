"""The merged field tree of one operation (`Selected`): fragments, aliases and @include/@skip resolved, each
fragment flattened once, every field classified once (`Selected.kind`: copy, derive, typename, fetch, by
`gateway/schema/declarations.kind_of`) and marked when it comes in a later part (@defer/@stream)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    TypeNameMetaFieldDef,
    VariableNode,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
)

from gateway.schema.declarations import (
    Kind,
    kind_of,
)

if TYPE_CHECKING:
    from gateway.planning.documents import Document


MAX_PLANNED_FIELDS = 20_000  # merged fields one operation may select (past it: QUERY_TOO_COMPLEX)


@dataclass
class Selected:
    """One response key of one object type: the field nodes merged under it and what is selected below."""

    field_name: str
    field_def: GraphQLField
    nodes: list[FieldNode]
    kind: Kind  # what the gateway does for it (`gateway/schema/declarations.kind_of`), decided here once
    # sent in a later part than the root field: every node of it is under a `@defer` fragment or below a
    # `@stream`ed list (itself, or through the node of an ancestor that is)
    later: bool = False
    nodes_later: list[bool] = field(default_factory=list)  # the same, node by node
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


class TreeBuilder:
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
        self, selection_sets: list[SelectionSetNode], type_name: str, later: list[bool] | None = None
    ) -> dict[str, dict[str, Selected]]:
        """The merged fields of these selection sets (of the nodes of one field); `later[i]`: the i-th set's
        node comes in a later part, and so does all it selects."""
        flat: dict[tuple[str, int], Flat] = {}
        for i, selection_set in enumerate(selection_sets):
            parent_later = later is not None and later[i]
            for key, (condition, node, node_later) in self.flat(selection_set, type_name).items():
                _add(flat, key, (condition, node, node_later or parent_later))
        grouped: dict[str, dict[str, Selected]] = {}
        for condition, node, node_later in flat.values():
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
                under[key] = Selected(
                    field_name, field_def, [node], kind_of(field_def, field_name), node_later, [node_later]
                )
            else:
                found.nodes.append(node)
                found.nodes_later.append(node_later)
                found.later = found.later and node_later
        for under in grouped.values():
            for selected in under.values():
                child_type = get_named_type(selected.field_def.type)
                with_sets = [
                    (n.selection_set, n_later)
                    for n, n_later in zip(selected.nodes, selected.nodes_later, strict=True)
                    if n.selection_set is not None
                ]
                if with_sets and not is_leaf_type(child_type) and not selected.field_name.startswith("__"):
                    sets, sets_later = [s for s, _ in with_sets], [n_later for _, n_later in with_sets]
                    selected.children = self.children(sets, child_type.name, sets_later)
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


def list_depth(type_: Any) -> int:
    depth = 0
    while True:
        if is_non_null_type(type_):
            type_ = type_.of_type
        elif is_list_type(type_):
            depth += 1
            type_ = type_.of_type
        else:
            return depth
