"""Cost declared once, on the fetching fields (gateway/schema/declarations.py): the limits count with it, the descriptions
state it, the loaders batch by it; a resolver field that declares nothing fails here."""

from __future__ import annotations

from graphql import GraphQLObjectType

from gateway.planning.executable import schema
from gateway.schema.declarations import COST, READS, RESULT, V2_BY_IDS, declared
from gateway.upstream.decoding import json_decode
from gateway.upstream.loaders import Loaders

FIELDS = [
    (type_.name, name, field)
    for type_ in schema._schema.type_map.values()
    if isinstance(type_, GraphQLObjectType) and not type_.name.startswith("__")
    for name, field in type_.fields.items()
]


def test_every_resolver_field_declares_its_cost_or_what_it_reads():
    undeclared = [
        f"{type_name}.{name}"
        for type_name, name, field in FIELDS
        if not getattr(field.resolve, "_is_default", False) and READS not in declared(field.extensions)
    ]
    assert undeclared == []


def test_the_fetching_fields_are_the_ones_with_a_cost():
    fetching = sorted(f"{t}.{n}" for t, n, field in FIELDS if COST in declared(field.extensions))
    assert fetching == [
        "Assignee.cases",
        "Assignee.casesConnection",
        "Case.activitiesConnection",
        "Case.activityPage",
        "Case.legacyCase",
        "Case.linkedCases",
        "Case.recordPage",
        "Case.recordsConnection",
        "LegacyCase.case",
        "Query.case",
        "Query.cases",
        "Query.casesConnection",
        "Query.legacyCase",
        "Query.legacyCases",
        "Query.legacyCasesConnection",
        "Query.node",
        "Tag.cases",
        "Tag.casesConnection",
    ]
    for type_name, name, field in FIELDS:
        metadata = declared(field.extensions)
        if COST in metadata:
            assert field.description.endswith(metadata[COST].sentence()), f"{type_name}.{name}"
            assert RESULT in metadata, f"{type_name}.{name}: what does it return?"
        else:
            assert "Upstream cost" not in (field.description or ""), f"{type_name}.{name}"


def test_the_loaders_batch_by_the_declared_cost():
    loaders = Loaders(None, None, None)  # type: ignore[arg-type]
    assert loaders.case.max_batch_size == V2_BY_IDS.batch == 50
    assert loaders.decoders.v2_list is json_decode


def test_a_cost_counts_calls_for_its_parents():
    assert V2_BY_IDS.calls(parents=120, size=1, list_size=5) == (3, 120, 1)
