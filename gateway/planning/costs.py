"""The upstream calls an operation could make, counted on the merged tree with what each field declares
(`gateway/schema/declarations.Cost`), for given values of the page-size variables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    GraphQLSchema,
    IntValueNode,
    VariableNode,
    get_named_type,
)

from gateway.planning.limits import Limits
from gateway.planning.tree import Selected, list_depth
from gateway.schema.declarations import (
    COST,
    declared,
)

# their `items` (pages) or `edges` (cursor connections) are a page
PAGES = {"CasePage", "LegacyCasePage", "ActivityPage", "RecordPage"}
PAGES |= {"CaseConnection", "LegacyCaseConnection", "ActivityConnection", "CaseRecordConnection"}
PAGE_SIZE_ARGS = ("perPage", "first", "last")


def size_variables(tree: dict[str, dict[str, Selected]]) -> tuple[str, ...]:
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


class CostCounter:
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
                elif list_depth(field_def.type):
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


def hashable(value: Any) -> Any:
    """A variable's value as a key (its repr when it is not a scalar)."""
    return value if value is None or isinstance(value, bool | int | float | str) else repr(value)
