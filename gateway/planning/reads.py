"""The upstream keys an operation reads, per kind of upstream object ("family"), from the merged tree: what
the decoders keep (`gateway/upstream/decoding.py`), and the v2 case lists whose cases may be decoded straight
into their answers."""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLSchema,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
)

from gateway.planning.tree import Selected, fields_on, list_depth
from gateway.schema.declarations import (
    READS,
    RESULT,
    RESULT_READS,
    Kind,
    declared,
    upstream_key,
)
from gateway.upstream.decoding import Keys, merge


class Reads:
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
            if selected.kind is Kind.TYPENAME:
                continue
            field_def = selected.field_def
            child_type = get_named_type(field_def.type)
            if selected.kind is Kind.COPY:
                key = upstream_key(field_def, selected.field_name)
                if is_leaf_type(child_type) or not selected.children:
                    merge(keys, key, None)
                else:
                    merge(
                        keys,
                        key,
                        (list_depth(field_def.type), self.object_keys(selected.children, child_type)),
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
