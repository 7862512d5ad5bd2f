"""Upstream answers of any shape, property-based (hypothesis, a fixed seed): for every upstream route a query
reading every field makes the gateway call, a value anywhere in the real answer is replaced by one of another
JSON type, depth or size (huge numbers, long strings, 2,000 levels of nesting), and the answer must never be
INTERNAL_SERVER_ERROR nor a 5xx. Where the replaced key is one the gateway reads and the new value is of another
JSON type than the reference gives it (the demo upstream's real answer has the reference's types), an
UPSTREAM_BAD_RESPONSE error must say so: a wrong type is never read as "no value".

The demo upstream sends the rewritten answer byte for byte (its `body` fault rule, gateway/demo/faults.py),
so that what no JSON encoder writes (2,000 levels) reaches the gateway too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from gateway.schema.scalars import json_type
from tests.schema_walk import selection
from tests.support import AUTH, Gateway, Upstream

PAGE = "pageInfo { page perPage pages count hasNextPage }"
EVERY = """
query Every($id: Int!) {
  one: case(id: $id) { %(case)s sla { status } }
  cases(perPage: 2) { %(page)s items { %(case)s sla { status } slas { status }
    linkedCases { caseId name status } legacyCase { legacyId %(legacy)s references { position label value } }
    activityPage(perPage: 2) { %(page)s items %(activity)s }
    recordPage(perPage: 2) { %(page)s items %(record)s } } }
  legacyCases(perPage: 2) { %(page)s items { legacyId %(legacy)s references { position label value }
    case { caseId name } } }
}
""" % {
    "page": PAGE,
    "case": selection("Case")[1:-1],
    "legacy": selection("LegacyCase")[1:-1],
    "activity": selection("Activity"),
    "record": selection("Record"),
}

PLACEHOLDER = "\x00replaced\x00"
VARIABLES: dict[str, Any] = {}  # the id of `one`, a case the demo has


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, value) below the top of a JSON document."""
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    for key, child in children:
        yield (*prefix, key), child
        yield from paths_of(child, (*prefix, key))


def replaced(document: Any, path: tuple[Any, ...], raw: str) -> str:
    """The document as JSON text with the value at `path` replaced by the JSON text `raw`."""
    copy = orjson.loads(orjson.dumps(document))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = PLACEHOLDER
    return orjson.dumps(copy).decode().replace(orjson.dumps(PLACEHOLDER).decode(), raw, 1)


# --- replacement values, as JSON text with the JSON type they are -----------------------------------------

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
).map(lambda v: (orjson.dumps(v).decode(), json_type(v)))
huge_numbers = st.sampled_from(
    [
        ("18446744073709551616", "number"),
        ("-9223372036854775809", "number"),
        ("1e308", "number"),
        ("123456789012345678901234567890", "number"),
        ("-0.0", "number"),
        ("1.5", "number"),
    ]
)
long_strings = st.integers(1_000, 200_000).map(lambda n: (orjson.dumps("x" * n).decode(), "string"))
deep = st.sampled_from([255, 300, 1_000, 2_000, 5_000]).flatmap(
    lambda depth: st.sampled_from(
        [("[" * depth + "]" * depth, "array"), ('{"a":' * depth + "1" + "}" * depth, "object")]
    )
)
values = plain | huge_numbers | long_strings | deep


@pytest.fixture(scope="module")
def routes(gateway: Gateway, upstream: Upstream) -> dict[str, tuple[str, Any]]:
    """Each upstream route the query calls: its path (one of each kind) -> (its query string, real answer)."""
    upstream.clear_faults()
    VARIABLES["id"] = gateway.query("{ cases(perPage: 1, page: 9) { items { caseId } } }")["data"]["cases"][
        "items"
    ][0]["caseId"]
    upstream.reset()
    answer = gateway.query(EVERY, VARIABLES)
    assert answer.get("data") and answer["data"]["cases"]["items"], answer
    found: dict[str, tuple[str, Any]] = {}
    kinds = set()
    for request in upstream.requests():
        path = request["path"]
        kind = "/".join("{id}" if part.isdigit() else part for part in path.split("/"))
        if kind in kinds:
            continue
        kinds.add(kind)
        real = upstream.client.get(f"{path}?{request['query']}", headers=AUTH)
        assert real.status_code == 200, real.text
        found[path] = (request["query"], real.json())
    return found


def test_the_query_calls_every_route(routes):
    kinds = {"/".join("{id}" if p.isdigit() else p for p in path.split("/")) for path in routes}
    assert kinds == {
        "/api/v2/cases",
        "/api/v2/cases/{id}",
        "/api/v2/cases/{id}/activities",
        "/api/v2/cases/{id}/records",
        "/api/v1/cases",
        "/api/v1/cases/{id}",
    }, kinds


THE_THREE = {  # the issue's first examples: (route, where, the value as JSON text) -> the errors' paths
    "v2 metadata 2,000 deep": ("/api/v2/cases", ("cases", 1, "metadata"), '{"a":' * 2000 + "1" + "}" * 2000),
    "v1 list of strings": ("/api/v1/cases", (0,), '"a case"'),
    "v1 case_type a string": ("/api/v1/cases", (0, "case_type"), '"Fraud"'),
}


def answer_with(gateway: Gateway, upstream: Upstream, path: str, body: str) -> Any:
    """The answer to the query reading every field while the upstream answers `path` with `body`."""
    try:
        upstream.fault(body=body, paths=[path])
        return gateway.client.post(
            "/graphql", json={"query": EVERY, "variables": VARIABLES}, headers=AUTH
        ).json()
    finally:
        upstream.clear_faults()


@pytest.mark.parametrize("name", THE_THREE)
def test_the_three_shapes_found_first_are_upstream_bad_response(gateway, upstream, routes, name):
    path, where, raw = THE_THREE[name]
    answer = answer_with(gateway, upstream, path, replaced(routes[path][1], where, raw))
    found = codes_and_paths(answer)
    assert {code for code, _ in found} <= {"UPSTREAM_BAD_RESPONSE", "NOT_FOUND"}, found
    bad = [p for code, p in found if code == "UPSTREAM_BAD_RESPONSE"]
    if name == "v1 case_type a string":  # the fields reading it, on that case only (references is non-null,
        # and so are the list's items: GraphQL nulls `legacyCases`)
        assert ["legacyCases", "items", 0, "references"] in bad, bad
        assert all(p[:3] == ["legacyCases", "items", 0] for p in bad), bad
    else:  # the answer is unusable whole: the list, and the links fetched by the same route
        list_field, link = ("cases", "case") if path.startswith("/api/v2") else ("legacyCases", "legacyCase")
        assert [list_field] in bad and all(p == [list_field] or p[-1] == link for p in bad), bad
        assert answer["data"][list_field] is None
        assert answer["data"]["one"]["caseId"] == VARIABLES["id"]  # the rest answered


# Between scalars (a number for a string, a boolean for a number, a number for a boolean): the field reading the
# key answers UPSTREAM_BAD_RESPONSE at its own path, never the GraphQL spec's coercion ("7", 1, true).
SCALAR_SWAPS = {  # (route, where, the value as JSON text) -> the erring field's path
    "v2 name a number": ("/api/v2/cases", ("cases", 0, "name"), "7", ["cases", "items", 0, "name"]),
    "v2 sub_status id a boolean": (
        "/api/v2/cases",
        ("cases", 0, "sub_status", "id"),
        "true",
        ["cases", "items", 0, "subStatus", "id"],
    ),
    "v2 is_service_account a number": (
        "/api/v2/cases/{id}/activities",
        ("activities", 0, "user", "is_service_account"),
        "1",
        ["cases", "items", 0, "activityPage", "items", 0, "user", "isServiceAccount"],
    ),
}


@pytest.mark.parametrize("name", SCALAR_SWAPS)
def test_a_scalar_of_another_json_type_is_upstream_bad_response(gateway, upstream, routes, name):
    kind, where, raw, field = SCALAR_SWAPS[name]
    path = next(p for p in routes if "/".join("{id}" if s.isdigit() else s for s in p.split("/")) == kind)
    answer = answer_with(gateway, upstream, path, replaced(routes[path][1], where, raw))
    found = [(code, p) for code, p in codes_and_paths(answer) if code != "NOT_FOUND"]  # the demo's own links
    assert found == [("UPSTREAM_BAD_RESPONSE", field)], answer.get("errors")
    node, nulled = answer["data"], []  # the field is null, or its nearest nullable parent (non-null fields)
    for step in field:
        node = node[step]
        nulled.append(step)
        if node is None:
            break
    assert node is None and nulled[:2] == field[:2], (nulled, node)
    assert answer["data"]["one"]["caseId"] == VARIABLES["id"]  # the rest answered


def codes_and_paths(answer: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    return [(e.get("extensions", {}).get("code"), e.get("path")) for e in answer.get("errors", [])]


def check(
    gateway: Gateway, upstream: Upstream, path: str, where: tuple[Any, ...], raw: str, kind: str, real: Any
) -> None:
    upstream.clear_faults()
    upstream.fault(body=replaced(real, where, raw), paths=[path])
    response = gateway.client.post("/graphql", json={"query": EVERY, "variables": VARIABLES}, headers=AUTH)
    assert response.status_code < 500, (path, where, raw[:80], response.text[:500])
    answer = response.json()
    found = codes_and_paths(answer)
    assert "INTERNAL_SERVER_ERROR" not in [code for code, _ in found], (path, where, raw[:80], found)
    original = None
    node = real
    for step in where:
        node = node[step]
    original = node
    if must_be_refused(where, json_type(original), kind):
        assert "UPSTREAM_BAD_RESPONSE" in [code for code, _ in found], (path, where, raw[:80], found)


STRUCTURED = {"object", "array"}
# Where in the real answers no field of the query reads (keys only, list indexes left out): any value there
# goes unnoticed, rightly. `metadata` is free-form JSON but for the link's key.
NOT_READ = {
    ("meta", "current_page"),
    ("meta", "next_page"),
    ("meta", "next_page_number"),
    ("activities_meta", "current_page"),
    ("activities_meta", "next_page"),
    ("records_meta", "current_page"),
}
METADATA_READ = "trackops_case_id"
# `metadata` is the schema's JSON scalar, any JSON value (the reference shows an object): only its link is read.


def must_be_refused(where: tuple[Any, ...], reference: str, kind: str) -> bool:
    """Whether a value of JSON type `kind` where the reference gives `reference` must be UPSTREAM_BAD_RESPONSE.

    Every change of JSON type is (between scalars too: a number where a string is due is not answered "7", a
    boolean for a number not 1), but to null, which a nullable field takes as no value."""
    keys = tuple(step for step in where if isinstance(step, str))
    if reference == "null" or kind == reference or any(keys[-len(p) :] == p for p in NOT_READ):
        return False
    if "metadata" in keys and keys[keys.index("metadata") + 1 :] != (METADATA_READ,):
        return False
    return kind != "null" or reference in STRUCTURED


@seed(22)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data())
def test_any_value_anywhere_in_an_upstream_answer(gateway, upstream, routes, data):
    path = data.draw(st.sampled_from(sorted(routes)), label="route")
    _, real = routes[path]
    where, _ = data.draw(st.sampled_from(list(paths_of(real))), label="where")
    raw, kind = data.draw(values, label="value")
    try:
        check(gateway, upstream, path, where, raw, kind, real)
    finally:
        upstream.clear_faults()
