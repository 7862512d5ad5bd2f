"""Bad input is refused with a clear, coded error before any upstream call."""

from __future__ import annotations

import pytest

BAD = [
    # (query, code, words the message must contain)
    ("{ cases(perPage: 51) { items { caseId } } }", "BAD_USER_INPUT", "perPage must be between 1 and 50"),
    ("{ cases(perPage: 0) { items { caseId } } }", "BAD_USER_INPUT", "perPage must be between 1 and 50"),
    ("{ cases(page: 0) { items { caseId } } }", "BAD_USER_INPUT", "page must be 1 or more"),
    ("{ cases(teamId: -2) { items { caseId } } }", "BAD_USER_INPUT", "teamId must be a positive id"),
    (
        "{ cases(filter: {caseIds: [3, 0]}) { items { caseId } } }",
        "BAD_USER_INPUT",
        "filter.caseIds must be a positive id",
    ),
    (
        '{ cases(filter: {relativeDate: "3 dayz"}) { items { caseId } } }',
        "GRAPHQL_VALIDATION_FAILED",
        "RelativeDate must be",
    ),
    (
        '{ cases(filter: {resolvedAtRelativeDate: "0 days"}) { items { caseId } } }',
        "GRAPHQL_VALIDATION_FAILED",
        "RelativeDate must be",
    ),
    (
        '{ cases(filter: {timeRange: "25:00-06:00"}) { items { caseId } } }',
        "GRAPHQL_VALIDATION_FAILED",
        "TimeRange must be",
    ),
    (
        '{ cases(filter: {startDate: "2024-02-30"}) { items { caseId } } }',
        "GRAPHQL_VALIDATION_FAILED",
        "expected a date",
    ),
    (
        '{ cases(filter: {updatedAtEndDate: "yesterday"}) { items { caseId } } }',
        "GRAPHQL_VALIDATION_FAILED",
        "expected a date",
    ),
    ("{ cases(filter: {priority: [URGENT]}) { items { caseId } } }", "GRAPHQL_VALIDATION_FAILED", "Priority"),
    ('{ cases(filter: {status: "OPEN"}) { items { caseId } } }', "GRAPHQL_VALIDATION_FAILED", "CaseStatus"),
    (
        "{ cases(filter: {slaStatus: [late]}) { items { caseId } } }",
        "GRAPHQL_VALIDATION_FAILED",
        "SLAStatusFilter",
    ),
    ("{ cases(order: NEWEST) { items { caseId } } }", "GRAPHQL_VALIDATION_FAILED", "CaseOrder"),
    ("{ cases(filter: {nope: 1}) { items { caseId } } }", "GRAPHQL_VALIDATION_FAILED", "nope"),
    ("{ case(id: 0) { caseId } }", "BAD_USER_INPUT", "id must be a positive id"),
    (
        "{ cases(filter: {assignees: []}) { items { caseId } } }",
        "BAD_USER_INPUT",
        "filter.assignees must not be empty",
    ),
    (
        '{ cases(filter: {search: ""}) { items { caseId } } }',
        "BAD_USER_INPUT",
        "filter.search must not be empty",
    ),
    ("{ case(id: 1) { noSuchField } }", "GRAPHQL_VALIDATION_FAILED", "noSuchField"),
    ("{ cases { items { caseId } ", "GRAPHQL_PARSE_FAILED", "Syntax Error"),
    (
        "{ legacyCases(perPage: 101) { items { legacyId } } }",
        "BAD_USER_INPUT",
        "perPage must be between 1 and 100",
    ),
    (
        '{ legacyCases(filter: {createdFrom: "2024-1-5"}) { items { legacyId } } }',
        "GRAPHQL_VALIDATION_FAILED",
        "Date must be YYYY-MM-DD",
    ),
    (
        '{ legacyCases(filter: {updatedFrom: "soon"}) { items { legacyId } } }',
        "GRAPHQL_VALIDATION_FAILED",
        "DateTime must be",
    ),
    (
        "{ legacyCases(filter: {client: 0}) { items { legacyId } } }",
        "BAD_USER_INPUT",
        "filter.client must be a positive id",
    ),
    (
        '{ legacyCases(filter: {from: "2024-01-01", createdFrom: "2024-01-02"}) { items { legacyId } } }',
        "BAD_USER_INPUT",
        "alias of filter.createdFrom",
    ),
    ('{ legacyCase(id: "12") { legacyId } }', "GRAPHQL_VALIDATION_FAILED", "Int"),
    ('{ node(id: "bm9wZTox") { id } }', "BAD_USER_INPUT", "not a global ID"),
]


@pytest.mark.parametrize(("query", "code", "words"), BAD, ids=[b[0][:60] for b in BAD])
def test_bad_input_makes_no_upstream_call(gateway, calls, query, code, words):
    answer = gateway.query(query)
    assert answer.get("data") in (None, {}) or all(v is None for v in answer["data"].values())
    [error] = answer["errors"]
    assert error["extensions"]["code"] == code
    assert words in error["message"]
    assert calls.requests() == []


def test_bad_variable_names_its_path(gateway, calls):
    answer = gateway.query(
        "query($f: CaseFilter) { cases(filter: $f) { items { caseId } } }", {"f": {"timeRange": "9-5"}}
    )
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "timeRange" in error["message"] and "TimeRange must be" in error["message"]
    assert calls.requests() == []


def test_related_first_is_checked(gateway, calls):
    answer = gateway.query("{ case(id: 1) { assignees { cases(first: 80) { caseId } } } }")
    assert {e["extensions"]["code"] for e in answer["errors"]} == {"BAD_USER_INPUT"}
    assert "first must be between 1 and 50" in answer["errors"][0]["message"]
    # only the case itself was fetched: no listing for the refused `first`
    assert [r["path"] for r in calls.requests()] == ["/api/v2/cases/1"]
