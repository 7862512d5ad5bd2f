"""The invariant normalized client caches rely on: any two objects with the same `__typename` and `id` agree on
every field both carry. Checked over the differential test's corpus of queries against the demo data, plus
generated selections of every plain field of every v2 and v1 case (each with `__typename`, and `id`
wherever its type has one, added as the caches' document transforms do), filed in one store as
a normalized cache would (`tests/normalized.py`). And: a type whose values have no unique id has no `id`."""

from __future__ import annotations

from typing import Any

import orjson
from graphql import GraphQLObjectType

from tests.normalized import Store, with_keys
from tests.schema_walk import selection
from tests.test_fast_path import CORPUS, FAST, answer, demo_services  # noqa: F401 (a fixture)

CASE, LEGACY = selection("Case"), selection("LegacyCase")
CONNECTION = "edges { cursor node %s } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
GENERATED: list[tuple[str, dict[str, Any]]] = [
    *(
        ("{ cases(page: %d, perPage: 50, order: CREATED_ASC) { items %s } }" % (page, CASE), {})
        for page in range(1, 7)
    ),
    *(("{ legacyCases(page: %d, perPage: 100) { items %s } }" % (page, LEGACY), {}) for page in range(1, 5)),
    ("{ legacyCasesConnection(first: 100, after: null) { %s } }" % (CONNECTION % LEGACY), {}),
    ("{ casesConnection(first: 50, order: RECENTLY_EDITED) { %s } }" % (CONNECTION % CASE), {}),
    (
        "{ cases(perPage: 50, order: PRIORITY_DESC) { items { linkedCases %s legacyCase %s "
        "assignees { cases(first: 10) %s } tags { cases(first: 10) %s } } } }" % (CASE, LEGACY, CASE, CASE),
        {},
    ),
    (
        "{ cases(perPage: 40) { items { activityPage(page: 2, perPage: 10) { items %s } "
        "recordPage(perPage: 5) { items %s } activitiesConnection(last: 5) { %s } "
        "recordsConnection(first: 8) { %s } } } }"
        % (
            selection("Activity"),
            selection("Record"),
            CONNECTION % selection("Activity"),
            CONNECTION % selection("CaseRecord"),
        ),
        {},
    ),
]


async def test_objects_of_one_typename_and_id_agree_on_every_field(demo_services):  # noqa: F811
    schema = FAST._schema
    store = Store(schema)
    for query, variables in CORPUS + GENERATED:
        keyed = with_keys(schema, query)
        body = orjson.loads(await answer(FAST, demo_services, keyed, variables))
        if body["data"] is not None:
            store.add(keyed, variables, body["data"])
    kinds = {key.partition(":")[0] for key in store.objects}
    # the generated selections reach every type with an id, each several times
    with_id = {
        name
        for name, type_ in schema.type_map.items()
        if not name.startswith("__") and isinstance(type_, GraphQLObjectType) and "id" in type_.fields
    }
    assert kinds == with_id, kinds ^ with_id
    assert len(store.objects) > 5000
    shown = [f"{c.key}.{c.field}: {c.first!r} then {c.then!r}" for c in store.clashes[:10]]
    assert store.clashes == [], f"{len(store.clashes)} clashes, e.g. " + "; ".join(shown)


def test_the_store_sees_a_clash_and_nothing_else():
    """Two answers showing one client under two names clash; an alias, another object, or a field that only one
    of them carries do not."""
    store = Store(FAST._schema)
    query = "{ legacyCase(id: 1) { __typename id client { __typename id name } caseStatus { __typename id name } } }"
    aliased = "{ legacyCase(id: 1) { __typename id other: client { __typename id name } } }"

    def case(client: str, status: str = "Open", key: str = "client") -> dict[str, Any]:
        return {
            "legacyCase": {
                "__typename": "LegacyCase",
                "id": "TGVnYWN5Q2FzZTox",
                key: {"__typename": "LegacyClient", "id": 4, "name": client},
                "caseStatus": {"__typename": "LegacyCaseStatus", "id": 4, "name": status},
            }
        }

    store.add(query, {}, case("Acme"))
    store.add(aliased, {}, case("Acme", key="other"))
    assert store.clashes == []
    store.add(query, {}, case("Initech"))
    assert [(c.key, c.field, c.first, c.then) for c in store.clashes] == [
        ("LegacyClient:4", "name", "Acme", "Initech")
    ]
    assert set(store.objects) == {"LegacyCase:TGVnYWN5Q2FzZTox", "LegacyClient:4", "LegacyCaseStatus:4"}
