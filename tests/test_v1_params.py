"""Every v1 request parameter reaches the upstream exactly, and returns the cases the upstream selects."""

from __future__ import annotations

import pytest

# (LegacyCaseFilter field, upstream parameter, how to read a value from a v1 case)
PARAMS = [
    ("id", "id", lambda c: c["id"]),
    ("client", "client", lambda c: c["client"] and c["client"]["id"]),
    ("location", "location", lambda c: c["location"] and c["location"]["id"]),
    ("caseRegion", "case_region", lambda c: c["case_region"] and c["case_region"]["id"]),
    ("caseStatus", "case_status", lambda c: c["case_status"] and c["case_status"]["id"]),
    ("createdFrom", "created_from", lambda c: c["created_on"]),
    ("createdTo", "created_to", lambda c: c["created_on"]),
    ("from", "From", lambda c: c["created_on"]),
    ("to", "To", lambda c: c["created_on"]),
    ("createdFromSystem", "created_from_system", lambda c: c["created_at"]),
    ("createdToSystem", "created_to_system", lambda c: c["created_at"]),
    ("dueFrom", "due_from", lambda c: c["due_on"]),
    ("dueTo", "due_to", lambda c: c["due_on"]),
    ("updatedFrom", "updated_from", lambda c: c["updated_at"]),
    ("updatedTo", "updated_to", lambda c: c["updated_at"]),
    ("isRequest", "is_request", lambda c: c["is_request"] is True or None),
    ("isRequest", "is_request", lambda c: c["is_request"] is False and False),
    ("primaryContact", "primary_contact", lambda c: c["primary_contact"] and c["primary_contact"]["id"]),
    (
        "primaryInvestigator",
        "primary_investigator",
        lambda c: c["primary_investigator"] and c["primary_investigator"]["id"],
    ),
    ("primaryManager", "primary_manager", lambda c: c["primary_manager"] and c["primary_manager"]["id"]),
    (
        "primarySalesperson",
        "primary_salesperson",
        lambda c: c["primary_salesperson"] and c["primary_salesperson"]["id"],
    ),
    ("primarySubject", "primary_subject", lambda c: c["primary_subject"] and c["primary_subject"]["id"]),
    ("referenceValue1", "reference_value_1", lambda c: c["reference_value_1"]),
    ("referenceValue2", "reference_value_2", lambda c: c["reference_value_2"]),
    ("referenceValue3", "reference_value_3", lambda c: c["reference_value_3"]),
    ("seriesNumber", "series_number", lambda c: c["series_number"]),
    (
        "seriesInstance",
        "series_instance",
        lambda c: c["series_instance"] if c["series_instance"] > 1 else None,
    ),
    ("caseNumber", "case_number", lambda c: c["case_number"]),
]


def as_param(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


@pytest.fixture(scope="module")
def legacy_cases(upstream) -> list[dict]:
    return upstream.get("/api/v1/cases", per_page=100).json()


@pytest.mark.parametrize(("field", "param", "pick"), PARAMS, ids=[f"{p[0]}->{p[1]}" for p in PARAMS])
def test_parameter_reaches_the_upstream(gateway, upstream, legacy_cases, calls, field, param, pick):
    value = next(v for c in legacy_cases if (v := pick(c)) is not None)
    calls.reset()
    answer = gateway.query(
        "query($f: LegacyCaseFilter) { legacyCases(filter: $f, perPage: 100) { items { legacyId } pageInfo { count } } }",
        {"f": {field: value}},
    )
    assert "errors" not in answer, answer
    [request] = calls.requests()
    assert request["path"] == "/api/v1/cases"
    assert request["params"] == {param: [as_param(value)], "page": ["1"], "per_page": ["100"]}
    direct = upstream.get("/api/v1/cases", per_page=100, **{param: as_param(value)})
    assert direct.status_code == 200
    got = [item["legacyId"] for item in answer["data"]["legacyCases"]["items"]]
    assert got == [c["id"] for c in direct.json()]
    assert 0 < answer["data"]["legacyCases"]["pageInfo"]["count"] == int(direct.headers["X-Total-Count"])


def test_all_parameters_together(gateway, legacy_cases, calls):
    case = legacy_cases[3]
    answer = gateway.query(
        "query($f: LegacyCaseFilter) { legacyCases(filter: $f) { items { legacyId } } }",
        {
            "f": {
                "client": case["client"]["id"],
                "createdFrom": case["created_on"],
                "createdTo": case["created_on"],
                "caseNumber": case["case_number"],
                "isRequest": case["is_request"],
            }
        },
    )
    assert [item["legacyId"] for item in answer["data"]["legacyCases"]["items"]] == [case["id"]]
    [request] = calls.requests()
    assert request["params"]["case_number"] == [case["case_number"]]
    assert request["params"]["is_request"] == [as_param(case["is_request"])]
