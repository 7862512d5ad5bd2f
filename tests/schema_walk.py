"""Build "every plain field" selections from the schema, and the answer expected from upstream JSON.

A plain field is one without a resolver: the gateway must answer it with the upstream value under
its Python name. Walking the schema (rather than listing fields by hand) makes the end-to-end test
cover every field, and fail when one is added without its data.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLObjectType, get_named_type, is_non_null_type
from graphql.pyutils import Undefined
from strawberry.types.base import StrawberryList, StrawberryObjectDefinition, StrawberryOptional
from strawberry.types.lazy_type import LazyType

from gateway.planning.executable import schema


def _object_definition(type_: Any) -> StrawberryObjectDefinition | None:
    while isinstance(type_, StrawberryOptional | StrawberryList):
        type_ = type_.of_type
    if isinstance(type_, LazyType):  # a type named across modules (`strawberry.lazy`)
        type_ = type_.resolve_type()
    return getattr(type_, "__strawberry_definition__", None)


def plain_fields(type_name: str) -> list[tuple[str, str, StrawberryObjectDefinition | None]]:
    """(graphql name, upstream key, nested object definition or None) of the type's plain fields."""
    definition = schema.get_type_by_name(type_name)
    assert isinstance(definition, StrawberryObjectDefinition), type_name
    out = []
    for field in definition.fields:
        if field.base_resolver is not None:
            continue
        graphql_name = field.graphql_name or schema.config.name_converter.get_graphql_name(field)
        out.append((graphql_name, field.python_name, _object_definition(field.type)))
    return out


def selection(type_name: str) -> str:
    parts = []
    for graphql_name, _, nested in plain_fields(type_name):
        parts.append(f"{graphql_name} {selection(nested.name)}" if nested else graphql_name)
    return "{ " + " ".join(parts) + " }"


def expected(type_name: str, value: Any) -> Any:
    """The GraphQL answer for upstream `value` selected with `selection(type_name)`."""
    if value is None:
        return None
    if isinstance(value, list):
        return [expected(type_name, item) for item in value]
    out = {}
    for graphql_name, key, nested in plain_fields(type_name):
        item = value.get(key)
        out[graphql_name] = expected(nested.name, item) if nested else item
    return out


def upstream_keys(type_name: str) -> set[str]:
    return {key for _, key, _ in plain_fields(type_name)}


def _required_argument(field: Any) -> bool:
    return any(is_non_null_type(arg.type) and arg.default_value is Undefined for arg in field.args.values())


def zero_cost_selection(type_name: str) -> str:
    """Every field of `type_name` that makes no upstream call (copied and derived), and so on below it: a field
    whose description carries no "Upstream cost" sentence and that takes no required argument."""
    type_ = schema._schema.get_type(type_name)
    assert isinstance(type_, GraphQLObjectType), type_name
    parts = []
    for name, field in type_.fields.items():
        if "Upstream cost" in (field.description or "") or _required_argument(field):
            continue
        named = get_named_type(field.type)
        parts.append(
            f"{name} {zero_cost_selection(named.name)}" if isinstance(named, GraphQLObjectType) else name
        )
    return "{ " + " ".join(parts) + " }"
