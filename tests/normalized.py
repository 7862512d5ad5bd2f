"""What a normalized client cache (Apollo Client's InMemoryCache, urql's graphcache, the Relay store) makes of
answers: every object with an `id` stored once under `__typename:id`, each field under its name and arguments.

`with_keys` adds `__typename` to every selection set, and `id` wherever the type has one (as the caches'
own document transforms and the selections frontends write do); `Store.add` files an answer, and
records a clash wherever two objects of one `__typename` and `id` disagree on a field both carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NameNode,
    OperationDefinitionNode,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    is_abstract_type,
    parse,
    print_ast,
    value_from_ast_untyped,
    visit,
)
from graphql.language import DocumentNode


def _field(name: str) -> FieldNode:
    return FieldNode(name=NameNode(value=name), arguments=(), directives=())


class _AddKeys(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info

    def enter_selection_set(self, node: SelectionSetNode, *_: Any) -> SelectionSetNode:
        type_ = get_named_type(self.type_info.get_type())
        have = {s.name.value for s in node.selections if isinstance(s, FieldNode) and s.alias is None}
        extra = [_field("__typename")] if "__typename" not in have else []
        if "id" in getattr(type_, "fields", {}) and "id" not in have:
            extra.append(_field("id"))
        return SelectionSetNode(selections=(*extra, *node.selections))


def with_keys(schema: GraphQLSchema, query: str) -> str:
    """The query with `__typename` in every selection set and `id` wherever its type has one."""
    type_info = TypeInfo(schema)
    return print_ast(visit(parse(query), TypeInfoVisitor(type_info, _AddKeys(type_info))))


@dataclass(frozen=True)
class Clash:
    key: str  # `__typename:id`
    field: str  # the field's storage key: name and arguments
    first: Any
    then: Any


@dataclass
class Store:
    schema: GraphQLSchema
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    clashes: list[Clash] = field(default_factory=list)

    def add(self, query: str, variables: dict[str, Any], data: dict[str, Any]) -> None:
        document = parse(query)
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        root = self.schema.query_type
        assert root is not None
        _Walk(self, document, variables).object(root, [operation.selection_set], data)

    def file(self, key: str, entry: dict[str, Any]) -> None:
        held = self.objects.setdefault(key, {})
        for name, value in entry.items():
            if name in held and not agree(held[name], value):
                self.clashes.append(Clash(key, name, held[name], value))
            else:
                held.setdefault(name, value)


def agree(a: Any, b: Any) -> bool:
    """Two stored values agree: equal leaves and references, and nested objects (kept inside their parent)
    agreeing on every field both carry."""
    if isinstance(a, dict) and isinstance(b, dict):
        if "__ref" in a or "__ref" in b:
            return a == b
        return all(agree(a[k], b[k]) for k in a.keys() & b.keys())
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(agree(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class _Walk:
    def __init__(self, store: Store, document: DocumentNode, variables: dict[str, Any]) -> None:
        self.store = store
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def included(self, node: Any) -> bool:
        for directive in node.directives or ():
            if directive.name.value in ("include", "skip"):
                arg = next(a for a in directive.arguments if a.name.value == "if")
                value = value_from_ast_untyped(arg.value, self.variables)
                if bool(value) != (directive.name.value == "include"):
                    return False
        return True

    def applies(self, condition: Any, type_: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        named = self.store.schema.get_type(condition.name.value)
        if named is type_:
            return True
        return is_abstract_type(named) and self.store.schema.is_sub_type(named, type_)  # type: ignore[arg-type]

    def collect(
        self, type_: GraphQLObjectType, sets: list[SelectionSetNode], out: dict[str, list[FieldNode]]
    ) -> dict[str, list[FieldNode]]:
        for selection_set in sets:
            for node in selection_set.selections:
                if not self.included(node):
                    continue
                if isinstance(node, FieldNode):
                    out.setdefault((node.alias or node.name).value, []).append(node)
                elif isinstance(node, InlineFragmentNode):
                    if self.applies(node.type_condition, type_):
                        self.collect(type_, [node.selection_set], out)
                elif isinstance(node, FragmentSpreadNode):
                    fragment = self.fragments[node.name.value]
                    if self.applies(fragment.type_condition, type_):
                        self.collect(type_, [fragment.selection_set], out)
        return out

    def value(self, sets: list[SelectionSetNode], value: Any) -> Any:
        if value is None or not sets:
            return value
        if isinstance(value, list):
            return [self.value(sets, item) for item in value]
        type_ = self.store.schema.get_type(value["__typename"])
        assert isinstance(type_, GraphQLObjectType), value
        return self.object(type_, sets, value)

    def object(self, type_: GraphQLObjectType, sets: list[SelectionSetNode], value: dict[str, Any]) -> Any:
        entry: dict[str, Any] = {}
        for key, nodes in self.collect(type_, sets, {}).items():
            if key not in value:  # an error nulled a parent of it, or an error answer
                continue
            node = nodes[0]
            args = {
                a.name.value: value_from_ast_untyped(a.value, self.variables) for a in node.arguments or ()
            }
            storage = node.name.value + (
                orjson.dumps(args, option=orjson.OPT_SORT_KEYS).decode() if args else ""
            )
            children = [n.selection_set for n in nodes if n.selection_set is not None]
            entry[storage] = self.value(children, value[key])
        if entry.get("id") is not None and type_ is not self.store.schema.query_type:
            ref = f"{type_.name}:{entry['id']}"
            self.store.file(ref, entry)
            return {"__ref": ref}
        return entry
