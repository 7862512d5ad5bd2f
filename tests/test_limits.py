"""Hostile requests are refused with their own code before any upstream call (gateway/planning/limits.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from graphql import get_introspection_query, parse

from gateway.planning.executable import schema
from gateway.planning.limits import Limits
from tests.support import AUTH, Gateway, Upstream, check_document, start_gateway, stop

DEEP = "{ legacyCase(id: 1001) { case { legacyCase { case { legacyCase { case { legacyCase { case { legacyCase { case { caseId } } } } } } } } } } }"
ALIASES = "{ case(id: 1) { %s } }" % " ".join(f"a{i}: caseId" for i in range(31))
TOKENS = "{ case(id: 1) { %s } }" % " ".join(["caseId"] * 3000)
EXPLOSIVE = "{ cases(perPage: 50) { items { assignees { cases(first: 50) { linkedCases { caseId legacyCase { caseNumber } } } } } } }"
IN_FRAGMENTS = (
    "{ cases(perPage: 50) { ...Page } } fragment Page on CasePage { items { ...People } } "
    "fragment People on Case { assignees { cases(first: 50) { caseId } } }"
)
REFUSED = [
    # (query, variables, code, words in the message)
    (DEEP, None, "QUERY_TOO_DEEP", "11 levels of nested fields, more than the 10 allowed"),
    (ALIASES, None, "TOO_MANY_ALIASES", "31 aliased fields, more than the 30 allowed"),
    (TOKENS, None, "QUERY_TOO_LARGE", "more than 3000 tokens"),
    (EXPLOSIVE, None, "QUERY_TOO_COMPLEX", "could make more than 300 upstream calls"),
    (IN_FRAGMENTS, None, "QUERY_TOO_COMPLEX", "MAX_QUERY_COST"),
    (
        "query($n: Int!) { cases(perPage: $n) { items { assignees { cases(first: 50) { caseId } } } } }",
        {"n": 50},
        "QUERY_TOO_COMPLEX",
        "could make more than 300",
    ),
    (
        '{ node(id: "x") { ... on Case { assignees { cases(first: 50) { linkedCases { legacyCase { caseNumber } } } } } } }',
        None,
        "QUERY_TOO_COMPLEX",
        "could make more than 300",
    ),
]


@pytest.mark.parametrize(
    ("query", "variables", "code", "words"), REFUSED, ids=[r[2] + r[0][:30] for r in REFUSED]
)
def test_hostile_queries_are_refused_without_upstream_calls(gateway, calls, query, variables, code, words):
    answer = gateway.query(query, variables)
    assert "data" not in answer  # a request error: no data entry (application/graphql-response+json)
    [error] = answer["errors"]
    assert error["extensions"]["code"] == code
    assert words in error["message"]
    assert calls.requests() == []


def test_the_cost_reads_variables_so_a_small_page_passes(gateway, calls):
    query = "query($n: Int!) { cases(perPage: $n) { items { assignees { cases(first: 50) { caseId } } } } }"
    answer = gateway.query(query, {"n": 2})
    assert "errors" not in answer
    assert 1 <= len(calls.requests()) <= 1 + 2 * 5 + 1 + 2 * 5  # within what the cost allowed


def test_everyday_queries_pass_their_costs():
    for query, cost in [
        ("{ cases(perPage: 50) { items { caseId legacyCase { caseNumber } } } }", 51),
        ("{ legacyCases(perPage: 100) { items { legacyId case { caseId } } } }", 3),
        (
            "{ case(id: 12) { linkedCases { caseId } legacyCase { caseNumber } assignees { cases(first: 5) { caseId } } } }",
            10,
        ),
        ("{ cases(perPage: 50) { items { assignees { cases(first: 5) { caseId } } } } }", 277),
        (get_introspection_query(descriptions=True), 0),
    ]:
        assert check_document(schema._schema, parse(query), {}, Limits(max_cost=cost)) == [], query
        assert check_document(schema._schema, parse(query), {}, Limits(max_cost=cost - 1)) != [] or cost == 0


def test_a_body_over_the_limit_gets_413_without_upstream_calls(gateway, calls):
    padding = "x" * 100_001
    response = gateway.client.post(
        "/graphql", json={"query": "{ case(id: 1) { caseId } }", "variables": {"pad": padding}}, headers=AUTH
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        yield b'{"query": "{ case(id: 1) { caseId } }", "variables": {"pad": "'
        for _ in range(20):
            yield b"x" * 10_000
        yield b'"}}'

    response = gateway.client.post(
        "/graphql", content=chunks(), headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert calls.requests() == []


def test_a_body_under_the_limit_is_served(gateway, calls):
    response = gateway.client.post(
        "/graphql",
        json={"query": "{ case(id: 1) { caseId } }", "variables": {"pad": "x" * 90_000}},
        headers=AUTH,
    )
    assert response.status_code == 200 and response.json()["data"] == {"case": {"caseId": 1}}


def test_batched_operations_are_refused(gateway, calls):
    """Batching is off (strawberry's batching_config is unset): a JSON array of operations is a 400."""
    batch = [{"query": "{ case(id: 1) { caseId } }"}, {"query": "{ case(id: 2) { caseId } }"}]
    response = gateway.client.post("/graphql", json=batch, headers=AUTH)
    assert response.status_code == 400
    assert "Batching is not enabled" in response.text
    assert calls.requests() == []


def test_introspection_is_on_by_default(gateway, calls):
    answer = gateway.query("{ __schema { queryType { name } } }")
    assert answer["data"] == {"__schema": {"queryType": {"name": "Query"}}}


@pytest.fixture(scope="module")
def closed_gateway(upstream: Upstream, logs_dir) -> Iterator[Gateway]:
    gw = start_gateway(
        upstream.url, logs_dir / "no-introspection-gateway.log", CACHE_TTL="0", INTROSPECTION="false"
    )
    yield gw
    stop(gw.process)


@pytest.mark.parametrize(
    "query",
    [
        "{ __schema { types { name } } }",
        '{ __type(name: "Case") { fields { name } } }',
        "{ case(id: 1) { caseId } ...Sneaky } fragment Sneaky on Query { __schema { queryType { name } } }",
    ],
)
def test_introspection_can_be_turned_off(closed_gateway, calls, query):
    answer = closed_gateway.query(query)
    assert "data" not in answer  # a request error: no data entry (application/graphql-response+json)
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["INTROSPECTION_DISABLED"]
    assert calls.requests() == []


def test_typename_is_not_introspection(closed_gateway, calls):
    answer = closed_gateway.query("{ case(id: 1) { __typename caseId } }")
    assert answer["data"] == {"case": {"__typename": "Case", "caseId": 1}}


def test_get_requests_are_limited_too(gateway, calls):
    response = gateway.client.get("/graphql", params={"query": DEEP}, headers=AUTH)
    assert response.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_DEEP"
    assert calls.requests() == []


def test_limits_apply_without_a_gateway_context():
    """The schema used in process (tests, export) applies the defaults."""
    result = schema.execute_sync(TOKENS)
    assert result.errors and "more than 3000 tokens" in result.errors[0].message
