"""Every v2 filter, order and page argument, through the gateway to the demo upstream.

Each test checks two things: the one upstream request carries exactly the documented parameters (`filters`
as compact JSON with sorted keys), and the cases that come back are exactly those the v2 reference's
semantics select. The expectation is computed here, by small predicates over every case fetched directly
from the demo (with their activities and records beyond the embedded page), not by the demo's own code:
the point is to hold the demo to the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.demo import DEMO_NOW

Case = dict[str, Any]
Predicate = Callable[[Case], bool]

ME = "168"  # the user demo-token acts as
QUERY = """query($filter: CaseFilter, $order: CaseOrder, $page: Int! = 1, $perPage: Int! = 50, $team: Int) {
  cases(filter: $filter, order: $order, page: $page, perPage: $perPage, teamId: $team) {
    items { caseId } pageInfo { count }
  }
}"""
PRIORITY_RANK = {"INFO": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}
ORDERS = {  # order -> (the case key it sorts on, descending?)
    "RECENTLY_EDITED": ("updated_at", True),
    "LEAST_RECENTLY_EDITED": ("updated_at", False),
    "PRIORITY_ASC": ("priority", False),
    "PRIORITY_DESC": ("priority", True),
    "OPENED_ASC": ("opened_at", False),
    "OPENED_DESC": ("opened_at", True),
    "CREATED_ASC": ("created_at", False),
    "CREATED_DESC": ("created_at", True),
}


# --- reading cases -------------------------------------------------------------------------------------


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def user_ids(people: list[dict[str, Any]]) -> set[str]:
    return {person["user_id"] for person in people}


def is_person(person: dict[str, Any] | None, wanted: str) -> bool:
    """A user ID or an email address names this person."""
    return person is not None and wanted in (person["user_id"], person["email"])


def tag_names(case: Case) -> set[str]:
    return {tag["name"] for tag in case["tags"]}


def field_values(case: Case) -> set[tuple[str, str]]:
    return {(field["case_input"]["key"], field["value"]) for field in case["fields"]}


def has_metadata(case: Case, key: str, value: str) -> bool:
    return (case["metadata"] or {}).get(key) == value


def sla_statuses(case: Case) -> set[str]:
    """The statuses of a case's SLAs: exceeded, or warning when not exceeded at 75% or more of its time."""
    out = set()
    for sla in case["slas"]:
        if sla["exceeded"]:
            out.add("exceeded")
        elif sla["percent_elapsed"] >= 75:
            out.add("warning")
    return out


def sla_types(case: Case) -> set[str]:
    return {sla["sla_type"] for sla in case["slas"]}


def sub_status(case: Case) -> str | None:
    return case["sub_status"] and case["sub_status"]["name"]


# --- predicates ----------------------------------------------------------------------------------------


def between(column: str, low: datetime, high: datetime) -> Predicate:
    return lambda c: c[column] is not None and low <= moment(c[column]) <= high


def since(column: str, low: datetime) -> Predicate:
    return between(column, low, utc(9999, 1, 1))


def until(column: str, high: datetime) -> Predicate:
    return between(column, utc(1, 1, 1), high)


def on_day(column: str, day: str) -> Predicate:
    return lambda c: c[column] is not None and c[column][:10] == day


def last_days(column: str, days: int) -> Predicate:
    return between(column, DEMO_NOW - timedelta(days=days), DEMO_NOW)


def clock(start: str, end: str) -> Predicate:
    """Created at a time of day from `start` to `end` (HH:MM, both included); start > end spans midnight."""

    def test(case: Case) -> bool:
        time = case["created_at"][11:16]
        return start <= time <= end if start <= end else (time >= start or time <= end)

    return test


def text_in(text: str, *values: str | None) -> bool:
    return any(text.lower() in (value or "").lower() for value in values)


TODAY, YESTERDAY = DEMO_NOW.date().isoformat(), (DEMO_NOW.date() - timedelta(days=1)).isoformat()


def filter_case(graphql: dict[str, Any], upstream: str, predicate: Predicate, name: str) -> Any:
    """A filter case: the GraphQL `CaseFilter`, the `filters` JSON the upstream must get, the reference's
    selection."""
    return pytest.param(graphql, upstream, predicate, id=name)


FILTERS = [
    # Assignee filters
    filter_case(
        {"assignees": ["169", "sami.patel@example.com"]},
        '{"assignees":["169","sami.patel@example.com"]}',
        lambda c: any(is_person(p, w) for p in c["assignees"] for w in ("169", "sami.patel@example.com")),
        "assignees-id-and-email",
    ),
    filter_case(
        {"assignees": ["unassigned", "dana.reyes@example.com"]},
        '{"assignees":["unassigned","dana.reyes@example.com"]}',
        lambda c: not c["assignees"] or any(is_person(p, "dana.reyes@example.com") for p in c["assignees"]),
        "assignees-unassigned",
    ),
    filter_case(
        {"assignees": "186"},
        '{"assignees":["186"]}',
        lambda c: "186" in user_ids(c["assignees"]),
        "assignees-one",
    ),
    filter_case(
        {"andAssignees": ["168", "186"]},
        '{"and_assignees":["168","186"]}',
        lambda c: {"168", "186"} <= user_ids(c["assignees"]),
        "and_assignees",
    ),
    filter_case(
        {"excludeAssignees": ["168", "186"]},
        '{"exclude_assignees":["168","186"]}',
        lambda c: not {"168", "186"} & user_ids(c["assignees"]),
        "exclude_assignees",
    ),
    filter_case(
        {"assignedToMe": True},
        '{"assigned_to_me":true}',
        lambda c: ME in user_ids(c["assignees"]),
        "assigned_to_me",
    ),
    filter_case(
        {"assigneeEmails": ["sami.patel@example.com", "ava.nguyen@example.com"]},
        '{"assignee_emails":["sami.patel@example.com","ava.nguyen@example.com"]}',
        lambda c: bool(
            {"sami.patel@example.com", "ava.nguyen@example.com"} & {p["email"] for p in c["assignees"]}
        ),
        "assignee_emails",
    ),
    filter_case({"unassigned": True}, '{"unassigned":true}', lambda c: not c["assignees"], "unassigned"),
    # Author filters
    filter_case(
        {"authors": ["tines"]},
        '{"authors":["tines"]}',
        lambda c: c["author"] is not None and c["author"]["is_service_account"],
        "authors-tines",
    ),
    filter_case(
        {"authors": ["iris.patel@example.com", "169"]},
        '{"authors":["iris.patel@example.com","169"]}',
        lambda c: is_person(c["author"], "iris.patel@example.com") or is_person(c["author"], "169"),
        "authors-email-and-id",
    ),
    filter_case(
        {"authors": ["tines", "wen.silva@example.com"]},
        '{"authors":["tines","wen.silva@example.com"]}',
        lambda c: (
            c["author"] is not None
            and (c["author"]["is_service_account"] or c["author"]["email"] == "wen.silva@example.com")
        ),
        "authors-tines-and-email",
    ),
    filter_case(
        {"excludeAuthors": ["100", "190"]},
        '{"exclude_authors":["100","190"]}',
        lambda c: c["author"] is None or c["author"]["user_id"] not in ("100", "190"),
        "exclude_authors",
    ),
    filter_case(
        {"authorEmails": ["iris.patel@example.com", "wen.silva@example.com"]},
        '{"author_emails":["iris.patel@example.com","wen.silva@example.com"]}',
        lambda c: (
            c["author"] is not None
            and c["author"]["email"] in ("iris.patel@example.com", "wen.silva@example.com")
        ),
        "author_emails",
    ),
    # Tag filters
    filter_case(
        {"tags": "phishing"}, '{"tags":["phishing"]}', lambda c: "phishing" in tag_names(c), "tags-one"
    ),
    filter_case(
        {"tags": ["phishing", "insider"]},
        '{"tags":["phishing","insider"]}',
        lambda c: {"phishing", "insider"} <= tag_names(c),
        "tags",
    ),
    filter_case(
        {"andTags": ["phishing", "insider"]},
        '{"and_tags":["phishing","insider"]}',
        lambda c: {"phishing", "insider"} <= tag_names(c),
        "and_tags",
    ),
    filter_case(
        {"orTags": ["phishing", "vip"]},
        '{"or_tags":["phishing","vip"]}',
        lambda c: bool({"phishing", "vip"} & tag_names(c)),
        "or_tags",
    ),
    filter_case(
        {"excludeTags": ["phishing", "vip"]},
        '{"exclude_tags":["phishing","vip"]}',
        lambda c: not {"phishing", "vip"} & tag_names(c),
        "exclude_tags",
    ),
    # Priority filters
    filter_case(
        {"priority": ["CRITICAL", "HIGH"]},
        '{"priority":["CRITICAL","HIGH"]}',
        lambda c: c["priority"] in ("CRITICAL", "HIGH"),
        "priority",
    ),
    filter_case(
        {"excludePriorities": ["INFO", "LOW"]},
        '{"exclude_priorities":["INFO","LOW"]}',
        lambda c: c["priority"] not in ("INFO", "LOW"),
        "exclude_priorities",
    ),
    # Status filters
    filter_case({"status": "CLOSED"}, '{"status":"CLOSED"}', lambda c: c["status"] == "CLOSED", "status"),
    filter_case(
        {"subStatusNames": ["To do", "Resolved"]},
        '{"sub_status_names":["To do","Resolved"]}',
        lambda c: sub_status(c) in ("To do", "Resolved"),
        "sub_status_names",
    ),
    filter_case(
        {"excludeSubStatusNames": ["To do", "False positive"]},
        '{"exclude_sub_status_names":["To do","False positive"]}',
        lambda c: sub_status(c) not in ("To do", "False positive"),
        "exclude_sub_status_names",
    ),
    # Metadata filters
    filter_case(
        {"metadata": {"key": "source", "value": "siem"}},
        '{"metadata":[{"key":"source","value":"siem"}]}',
        lambda c: has_metadata(c, "source", "siem"),
        "metadata",
    ),
    filter_case(
        {"andMetadata": [{"key": "source", "value": "edr"}, {"key": "trackops_case_id", "value": "99999"}]},
        '{"and_metadata":[{"key":"source","value":"edr"},{"key":"trackops_case_id","value":"99999"}]}',
        lambda c: has_metadata(c, "source", "edr") and has_metadata(c, "trackops_case_id", "99999"),
        "and_metadata",
    ),
    filter_case(
        {"orMetadata": [{"key": "source", "value": "edr"}, {"key": "trackops_case_id", "value": "99999"}]},
        '{"or_metadata":[{"key":"source","value":"edr"},{"key":"trackops_case_id","value":"99999"}]}',
        lambda c: has_metadata(c, "source", "edr") or has_metadata(c, "trackops_case_id", "99999"),
        "or_metadata",
    ),
    # Field filters
    filter_case(
        {"fields": {"key": "company", "value": "Tines"}},
        '{"fields":[{"key":"company","value":"Tines"}]}',
        lambda c: ("company", "Tines") in field_values(c),
        "fields",
    ),
    filter_case(
        {"andFields": [{"key": "company", "value": "Tines"}, {"key": "version", "value": "2.0"}]},
        '{"and_fields":[{"key":"company","value":"Tines"},{"key":"version","value":"2.0"}]}',
        lambda c: {("company", "Tines"), ("version", "2.0")} <= field_values(c),
        "and_fields",
    ),
    filter_case(
        {"orFields": [{"key": "host_name", "value": "web-01"}, {"key": "version", "value": "1.0"}]},
        '{"or_fields":[{"key":"host_name","value":"web-01"},{"key":"version","value":"1.0"}]}',
        lambda c: bool({("host_name", "web-01"), ("version", "1.0")} & field_values(c)),
        "or_fields",
    ),
    # Date filters: a date-only start is its start of day, a date-only end its end of day
    filter_case(
        {"startDate": "2024-06-01"},
        '{"start_date":"2024-06-01"}',
        since("created_at", utc(2024, 6, 1)),
        "start_date-day",
    ),
    filter_case(
        {"startDate": "2024-06-01T08:00:00+02:00"},
        '{"start_date":"2024-06-01T06:00:00Z"}',
        since("created_at", utc(2024, 6, 1, 6)),
        "start_date-timestamp",
    ),
    filter_case(
        {"endDate": "2023-03-31"},
        '{"end_date":"2023-03-31"}',
        until("created_at", utc(2023, 3, 31, 23, 59, 59)),
        "end_date-day",
    ),
    filter_case(
        {"endDate": "2023-06-30T12:30:00Z"},
        '{"end_date":"2023-06-30T12:30:00Z"}',
        until("created_at", utc(2023, 6, 30, 12, 30)),
        "end_date-timestamp",
    ),
    filter_case(
        {"startDate": YESTERDAY, "endDate": YESTERDAY},
        '{"end_date":"%s","start_date":"%s"}' % (YESTERDAY, YESTERDAY),
        on_day("created_at", YESTERDAY),
        "start_date-and-end_date-one-day",
    ),
    filter_case(
        {"relativeDate": "today"},
        '{"relative_date":"today"}',
        on_day("created_at", TODAY),
        "relative_date-today",
    ),
    filter_case(
        {"relativeDate": "yesterday"},
        '{"relative_date":"yesterday"}',
        on_day("created_at", YESTERDAY),
        "relative_date-yesterday",
    ),
    filter_case(
        {"relativeDate": "3 days"},
        '{"relative_date":"3 days"}',
        last_days("created_at", 3),
        "relative_date-days",
    ),
    filter_case(
        {"relativeDate": "1 day"},
        '{"relative_date":"1 day"}',
        last_days("created_at", 1),
        "relative_date-day",
    ),
    filter_case(
        {"relativeDate": "2 weeks"},
        '{"relative_date":"2 weeks"}',
        last_days("created_at", 14),
        "relative_date-weeks",
    ),
    filter_case(
        {"relativeDate": "1 month"},
        '{"relative_date":"1 month"}',
        last_days("created_at", 30),
        "relative_date-month",
    ),
    filter_case(
        {"relativeDate": "6 months"},
        '{"relative_date":"6 months"}',
        last_days("created_at", 180),
        "relative_date-months",
    ),
    filter_case(
        {"relativeDate": "1 year"},
        '{"relative_date":"1 year"}',
        last_days("created_at", 365),
        "relative_date-year",
    ),
    filter_case(
        {"timeRange": "09:00-17:00"}, '{"time_range":"09:00-17:00"}', clock("09:00", "17:00"), "time_range"
    ),
    filter_case(
        {"timeRange": "22:00-06:00"},
        '{"time_range":"22:00-06:00"}',
        clock("22:00", "06:00"),
        "time_range-spanning-midnight",
    ),
    filter_case(
        {"resolvedAtStartDate": "2024-06-01"},
        '{"resolved_at_start_date":"2024-06-01"}',
        since("resolved_at", utc(2024, 6, 1)),
        "resolved_at_start_date",
    ),
    filter_case(
        {"resolvedAtEndDate": "2024-01-31"},
        '{"resolved_at_end_date":"2024-01-31"}',
        until("resolved_at", utc(2024, 1, 31, 23, 59, 59)),
        "resolved_at_end_date-day",
    ),
    filter_case(
        {"resolvedAtEndDate": "2024-01-31T06:00:00-05:00"},
        '{"resolved_at_end_date":"2024-01-31T11:00:00Z"}',
        until("resolved_at", utc(2024, 1, 31, 11)),
        "resolved_at_end_date-timestamp",
    ),
    filter_case(
        {"resolvedAtRelativeDate": "today"},
        '{"resolved_at_relative_date":"today"}',
        on_day("resolved_at", TODAY),
        "resolved_at_relative_date-today",
    ),
    filter_case(
        {"resolvedAtRelativeDate": "2 weeks"},
        '{"resolved_at_relative_date":"2 weeks"}',
        last_days("resolved_at", 14),
        "resolved_at_relative_date-weeks",
    ),
    filter_case(
        {"updatedAtStartDate": "2024-06-15T00:00:00Z"},
        '{"updated_at_start_date":"2024-06-15T00:00:00Z"}',
        since("updated_at", utc(2024, 6, 15)),
        "updated_at_start_date",
    ),
    filter_case(
        {"updatedAtEndDate": "2024-03-31"},
        '{"updated_at_end_date":"2024-03-31"}',
        until("updated_at", utc(2024, 3, 31, 23, 59, 59)),
        "updated_at_end_date",
    ),
    filter_case(
        {"updatedAtRelativeDate": "today"},
        '{"updated_at_relative_date":"today"}',
        on_day("updated_at", TODAY),
        "updated_at_relative_date-today",
    ),
    filter_case(
        {"updatedAtRelativeDate": "10 days"},
        '{"updated_at_relative_date":"10 days"}',
        last_days("updated_at", 10),
        "updated_at_relative_date-days",
    ),
    # SLA filters
    filter_case(
        {"slaStatus": "WARNING"},
        '{"sla_status":["warning"]}',
        lambda c: "warning" in sla_statuses(c),
        "sla_status-warning",
    ),
    filter_case(
        {"slaStatus": ["WARNING", "EXCEEDED"]},
        '{"sla_status":["warning","exceeded"]}',
        lambda c: bool(sla_statuses(c)),
        "sla_status-either",
    ),
    filter_case(
        {"andSlaStatus": ["WARNING", "EXCEEDED"]},
        '{"and_sla_status":["warning","exceeded"]}',
        lambda c: sla_statuses(c) == {"warning", "exceeded"},
        "and_sla_status",
    ),
    filter_case(
        {"excludeSlaStatus": "EXCEEDED"},
        '{"exclude_sla_status":["exceeded"]}',
        lambda c: "exceeded" not in sla_statuses(c),
        "exclude_sla_status",
    ),
    filter_case(
        {"slaType": "RESPONSE"}, '{"sla_type":["response"]}', lambda c: "response" in sla_types(c), "sla_type"
    ),
    filter_case(
        {"andSlaType": ["RESOLUTION", "RESPONSE"]},
        '{"and_sla_type":["resolution","response"]}',
        lambda c: sla_types(c) == {"resolution", "response"},
        "and_sla_type",
    ),
    filter_case(
        {"excludeSlaType": "RESPONSE"},
        '{"exclude_sla_type":["response"]}',
        lambda c: "response" not in sla_types(c),
        "exclude_sla_type",
    ),
    filter_case({"sla": "EXCEEDED"}, '{"sla":["exceeded"]}', lambda c: "exceeded" in sla_statuses(c), "sla"),
    # Text search filters (case-insensitive substrings; `search` also finds a case by its exact ID)
    filter_case(
        {"search": "phishing"},
        '{"search":"phishing"}',
        lambda c: text_in("phishing", c["name"], c["description"]),
        "search-name",
    ),
    filter_case(
        {"search": "SIEM"},
        '{"search":"SIEM"}',
        lambda c: text_in("siem", c["name"], c["description"]),
        "search-desc",
    ),
    filter_case({"search": "42"}, '{"search":"42"}', lambda c: c["case_id"] == 42, "search-id"),
    filter_case({"name": "laptop"}, '{"name":"laptop"}', lambda c: text_in("laptop", c["name"]), "name"),
    filter_case(
        {"comment": "isolated the"},
        '{"comment":"isolated the"}',
        lambda c: any(
            text_in("isolated the", a["value"])
            for a in c["all_activities"]
            if a["activity_type"] == "COMMENTED"
        ),
        "comment",
    ),
    # Other filters
    filter_case(
        {"caseIds": [5, 42, 299]},
        '{"case_ids":[5,42,299]}',
        lambda c: c["case_id"] in (5, 42, 299),
        "case_ids",
    ),
    filter_case({"caseIds": 7}, '{"case_ids":[7]}', lambda c: c["case_id"] == 7, "case_ids-one"),
    filter_case(
        {"childTeamIds": [277, 279]},
        '{"child_team_ids":[277,279]}',
        lambda c: c["team"]["id"] in (277, 279),
        "child_team_ids",
    ),
    filter_case(
        {"records": "Hash reputation"},
        '{"records":["Hash reputation"]}',
        lambda c: "Hash reputation" in c["all_record_values"],
        "records",
    ),
    filter_case(
        {"records": ["Host isolation", "2023-03-29T13:08:19Z"]},
        '{"records":["Host isolation","2023-03-29T13:08:19Z"]}',
        lambda c: bool({"Host isolation", "2023-03-29T13:08:19Z"} & c["all_record_values"]),
        "records-several",
    ),
    filter_case(
        {"myOpenTasks": True},
        '{"my_open_tasks":true}',
        lambda c: any(not t["completed"] and ME in {a["id"] for a in t["assignees"]} for t in c["tasks"]),
        "my_open_tasks",
    ),
    # Several at once: each must hold, and the keys travel sorted
    filter_case(
        {"status": "OPEN", "orTags": ["phishing", "vip"], "assignedToMe": True, "excludePriorities": "INFO"},
        '{"assigned_to_me":true,"exclude_priorities":["INFO"],"or_tags":["phishing","vip"],"status":"OPEN"}',
        lambda c: (
            c["status"] == "OPEN"
            and bool({"phishing", "vip"} & tag_names(c))
            and ME in user_ids(c["assignees"])
            and c["priority"] != "INFO"
        ),
        "several",
    ),
]


def ordered(cases: list[Case], order: str = "CREATED_DESC") -> list[int]:
    """Case IDs in `order`: ties by case_id ascending, cases without the value last."""
    column, descending = ORDERS[order]

    def number(case: Case) -> float:
        value = case[column]
        return PRIORITY_RANK[value] if column == "priority" else moment(value).timestamp()

    present = sorted(
        (c for c in cases if c[column] is not None),
        key=lambda c: (-number(c) if descending else number(c), c["case_id"]),
    )
    absent = sorted(c["case_id"] for c in cases if c[column] is None)
    return [c["case_id"] for c in present] + absent


def ask(gateway, calls, **variables: Any) -> tuple[list[int], int, dict[str, list[str]]]:
    """The case IDs and count the gateway answers, and the params of its one upstream request."""
    answer = gateway.query(QUERY, variables)
    assert "errors" not in answer, answer
    [request] = calls.requests()
    assert (request["method"], request["path"], request["status"]) == ("GET", "/api/v2/cases", 200)
    cases = answer["data"]["cases"]
    return [item["caseId"] for item in cases["items"]], cases["pageInfo"]["count"], request["params"]


def every_page(upstream, path: str, key: str) -> list[Any]:
    items, page = [], 1
    while page:
        body = upstream.get(path, per_page=50, page=page).json()
        items += body[key]
        page = body["meta"]["next_page_number"]
    return items


@pytest.fixture(scope="module")
def cases(upstream) -> list[Case]:
    """Every case, straight from the demo, with all its activities and record values beside it."""
    out = []
    for case in every_page(upstream, "/api/v2/cases", "cases"):
        activities, records = case["activities"], case["records"]
        if case["activities_meta"]["next_page"]:
            activities = every_page(upstream, f"/api/v2/cases/{case['case_id']}/activities", "activities")
        if case["records_meta"]["next_page"]:
            records = every_page(upstream, f"/api/v2/cases/{case['case_id']}/records", "records")
        values = {
            value["value"]
            for group in records
            for result in group["record_type_record_results"]
            for value in result["results"]
        }
        out.append({**case, "all_activities": activities, "all_record_values": values})
    assert len(out) == 300
    return out


# --- tests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("graphql", "upstream_filters", "predicate"), FILTERS)
def test_filter(gateway, calls, cases, graphql, upstream_filters, predicate):
    expected = ordered([c for c in cases if predicate(c)])
    assert 0 < len(expected) < len(cases)
    got, count, params = ask(gateway, calls, filter=graphql)
    assert params == {"filters": [upstream_filters], "page": ["1"], "per_page": ["50"]}
    assert (got, count) == (expected[:50], len(expected))


@pytest.mark.parametrize(
    ("graphql", "upstream_filters"),
    [
        ({"subscribed": True}, '{"subscribed":true}'),
        ({"note": "customer"}, '{"note":"customer"}'),
        ({"note": "FORENSIC", "subscribed": True}, '{"note":"FORENSIC","subscribed":true}'),
    ],
    ids=["subscribed", "note", "note-and-subscribed"],
)
def test_filter_on_hidden_data(gateway, upstream, calls, cases, graphql, upstream_filters):
    """Subscribers and notes appear in no response: the gateway answers what the upstream selects."""
    got, count, params = ask(gateway, calls, filter=graphql)
    assert params == {"filters": [upstream_filters], "page": ["1"], "per_page": ["50"]}
    direct = upstream.get("/api/v2/cases", filters=upstream_filters, per_page=50).json()
    assert 0 < direct["meta"]["count"] < len(cases)
    assert (got, count) == ([c["case_id"] for c in direct["cases"]], direct["meta"]["count"])


@pytest.mark.parametrize("page", [1, 6])
@pytest.mark.parametrize("order", list(ORDERS))
def test_order(gateway, calls, cases, order, page):
    got, count, params = ask(gateway, calls, order=order, page=page)
    assert params == {"order": [order], "page": [str(page)], "per_page": ["50"]}
    assert (got, count) == (ordered(cases, order)[(page - 1) * 50 : page * 50], 300)


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("PRIORITY_DESC", [11, 4, 8, 5, 10, 12, 6, 7, 2, 9, 3]),  # CRITICAL, HIGH x2, ..., INFO x2, none
        ("PRIORITY_ASC", [2, 9, 6, 7, 5, 10, 12, 4, 8, 11, 3]),
    ],
)
def test_priority_order_spelled_out(gateway, calls, cases, order, expected):
    """Cases 2 to 12 in both priority orders, written out: CRITICAL first in PRIORITY_DESC, none last."""
    priorities = {c["case_id"]: c["priority"] for c in cases if 2 <= c["case_id"] <= 12}
    assert [priorities[n] for n in range(2, 13)] == (
        ["INFO", None, "HIGH", "MEDIUM", "LOW", "LOW", "HIGH", "INFO", "MEDIUM", "CRITICAL", "MEDIUM"]
    )
    got, _, _ = ask(gateway, calls, order=order, filter={"caseIds": list(range(2, 13))})
    assert got == expected


def test_team_id(gateway, calls, cases):
    got, count, params = ask(gateway, calls, team=277)
    assert params == {"team_id": ["277"], "page": ["1"], "per_page": ["50"]}
    expected = ordered([c for c in cases if c["team"]["id"] == 277])
    assert 0 < len(expected) < len(cases)
    assert (got, count) == (expected[:50], len(expected))


@pytest.mark.parametrize(("page", "per_page"), [(3, 7), (2, 50), (7, 50), (300, 1)])
def test_page_and_per_page(gateway, calls, cases, page, per_page):
    got, count, params = ask(gateway, calls, page=page, perPage=per_page)
    assert params == {"page": [str(page)], "per_page": [str(per_page)]}
    assert (got, count) == (ordered(cases)[(page - 1) * per_page : page * per_page], 300)


def test_defaults(gateway, calls, cases):
    answer = gateway.query("{ cases { items { caseId } pageInfo { page perPage count } } }")
    [request] = calls.requests()
    assert request["params"] == {"page": ["1"], "per_page": ["20"]}
    assert answer["data"]["cases"] == {
        "items": [{"caseId": n} for n in ordered(cases)[:20]],
        "pageInfo": {"page": 1, "perPage": 20, "count": 300},
    }


def test_everything_at_once(gateway, calls, cases):
    got, count, params = ask(
        gateway, calls, filter={"status": "OPEN"}, order="OPENED_ASC", page=2, perPage=10, team=276
    )
    assert params == {
        "filters": ['{"status":"OPEN"}'],
        "order": ["OPENED_ASC"],
        "page": ["2"],
        "per_page": ["10"],
        "team_id": ["276"],
    }
    expected = ordered([c for c in cases if c["status"] == "OPEN" and c["team"]["id"] == 276], "OPENED_ASC")
    assert (got, count) == (expected[10:20], len(expected))
