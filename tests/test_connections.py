"""Cursor connections through the gateway to the demo upstream: each window's exact upstream calls (from
the demo's request log), the items against the upstream's own order, refusals before any call, batching
of nested connections, and `node(id)` on the edges."""

from __future__ import annotations

import json
from typing import Any

import pytest
from graphql import parse

from gateway.planning.executable import schema
from gateway.planning.limits import Limits
from tests.support import Gateway, Upstream, check_document

V2 = """query($first: Int, $after: String, $last: Int, $before: String, $filter: CaseFilter) {
  casesConnection(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
    totalCount edges { cursor node { caseId } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""
V1 = """query($first: Int, $after: String, $last: Int, $before: String) {
  legacyCasesConnection(first: $first, after: $after, last: $last, before: $before) {
    totalCount edges { cursor node { legacyId } } pageInfo { hasNextPage hasPreviousPage }
  }
}"""


def listing_pages(requests: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    return [(r["path"], int(r["params"]["page"][0]), int(r["params"]["per_page"][0])) for r in requests]


def upstream_ids(upstream: Upstream, path: str, key: str, per_page: int) -> list[int]:
    ids: list[int] = []
    page = 1
    while True:
        response = upstream.get(path, page=page, per_page=per_page)
        items = response.json()
        items = items["cases"] if isinstance(items, dict) else items
        ids += [item[key] for item in items]
        if len(items) < per_page:
            return ids
        page += 1


@pytest.fixture(scope="module")
def v2_ids(upstream: Upstream) -> list[int]:
    return upstream_ids(upstream, "/api/v2/cases", "case_id", 50)


@pytest.fixture(scope="module")
def v1_ids(upstream: Upstream) -> list[int]:
    return upstream_ids(upstream, "/api/v1/cases", "id", 100)


@pytest.fixture(scope="module")
def v2_cursors(gateway: Gateway) -> list[str]:
    """The cursor of every v2 case, in order, as the gateway hands them out."""
    cursors: list[str] = []
    after = None
    while True:
        connection = gateway.query(V2, {"first": 50, "after": after})["data"]["casesConnection"]
        cursors += [edge["cursor"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return cursors
        after = connection["pageInfo"]["endCursor"]


V2_WINDOWS = [
    # (window, its positions [start, end), the upstream pages (page, per_page) it costs)
    ({"first": 7}, (0, 7), [(1, 7)]),
    ({"first": 7, "after": 6}, (7, 14), [(2, 7)]),
    ({"first": 7, "after": 48}, (49, 56), [(8, 7)]),
    ({"first": 50, "after": 48}, (49, 99), [(2, 33), (3, 33)]),  # no page of up to 50 holds 49..98
    ({"last": 7, "before": 100}, (93, 100), [(10, 10)]),
    ({"last": 7}, (293, 300), [(1, 50), (30, 10)]),  # without `before`: page 1 for the count first
    ({"last": 7, "after": 290}, (293, 300), [(30, 10)]),  # the count comes with the cursor
    ({"first": 7, "after": 293}, (294, 300), [(50, 6)]),  # cut at the end the cursor knows
    ({"first": 20, "after": 10, "before": 20}, (11, 20), [(2, 10)]),
    ({"last": 3, "after": 10, "before": 20}, (17, 20), [(5, 4)]),
    ({}, (0, 20), [(1, 20)]),  # neither first nor last: the upstream's default page size
]


@pytest.mark.parametrize(("window", "span", "pages"), V2_WINDOWS, ids=[json.dumps(w[0]) for w in V2_WINDOWS])
def test_each_v2_window_costs_its_planned_calls(gateway, calls, v2_ids, v2_cursors, window, span, pages):
    variables = {k: (v2_cursors[v] if k in ("after", "before") else v) for k, v in window.items()}
    calls.reset()
    answer = gateway.query(V2, variables)
    assert "errors" not in answer, answer
    assert listing_pages(calls.requests()) == [("/api/v2/cases", *page) for page in pages]
    connection = answer["data"]["casesConnection"]
    start, end = span
    assert [edge["node"]["caseId"] for edge in connection["edges"]] == v2_ids[start:end]
    assert connection["totalCount"] == len(v2_ids) == 300
    assert connection["pageInfo"] == {
        "hasNextPage": end < 300,
        "hasPreviousPage": start > 0,
        "startCursor": v2_cursors[start],
        "endCursor": v2_cursors[end - 1],
    }
    assert [edge["cursor"] for edge in connection["edges"]] == v2_cursors[start:end]


def test_v1_windows_cost_their_planned_calls(gateway, calls, v1_ids):
    answer = gateway.query(V1, {"first": 11})["data"]["legacyCasesConnection"]
    assert [e["node"]["legacyId"] for e in answer["edges"]] == v1_ids[:11]
    after = answer["edges"][-1]["cursor"]
    assert listing_pages(calls.requests()) == [("/api/v1/cases", 1, 11)]
    calls.reset()
    answer = gateway.query(V1, {"first": 100, "after": after})["data"]["legacyCasesConnection"]
    assert [e["node"]["legacyId"] for e in answer["edges"]] == v1_ids[11:111]
    assert listing_pages(calls.requests()) == [("/api/v1/cases", 1, 56), ("/api/v1/cases", 2, 56)]
    calls.reset()
    answer = gateway.query(V1, {"last": 11})["data"]["legacyCasesConnection"]
    count = len(v1_ids)
    assert answer["totalCount"] == count == 303
    assert [e["node"]["legacyId"] for e in answer["edges"]] == v1_ids[-11:]
    assert listing_pages(calls.requests()) == [("/api/v1/cases", 1, 100), ("/api/v1/cases", 19, 16)]
    calls.reset()
    answer = gateway.query(V1, {"last": 11, "before": answer["edges"][0]["cursor"]})
    assert [e["node"]["legacyId"] for e in answer["data"]["legacyCasesConnection"]["edges"]] == v1_ids[
        -22:-11
    ]
    assert listing_pages(calls.requests()) == [("/api/v1/cases", 21, 14)]


def test_bad_windows_are_refused_before_any_upstream_call(gateway, calls, v2_cursors):
    open_cursor = gateway.query(V2, {"first": 1, "filter": {"status": "OPEN"}})["data"]["casesConnection"]
    open_cursor = open_cursor["edges"][0]["cursor"]
    v1_cursor = gateway.query(V1, {"first": 1})["data"]["legacyCasesConnection"]["edges"][0]["cursor"]
    calls.reset()
    refused = [
        (V2, {"first": 3, "last": 3}, "Give first or last, not both."),
        (V2, {"first": 51}, "first must be between 1 and 50, got 51."),
        (V2, {"last": 0}, "last must be between 1 and 50, got 0."),
        (V1, {"first": 101}, "first must be between 1 and 100, got 101."),
        (V2, {"after": "bm90IGEgY3Vyc29y"}, "after: 'bm90IGEgY3Vyc29y' is not a cursor of this API."),
        (V2, {"before": "%%%"}, "before: '%%%' is not a cursor of this API."),
        (V2, {"after": open_cursor}, "after is a cursor of another list"),  # other filter
        (V2, {"after": v1_cursor}, "after is a cursor of another list"),  # other list
        (V1, {"before": v2_cursors[3]}, "before is a cursor of another list"),
        (V2, {"after": v2_cursors[5], "before": v2_cursors[6]}, "No item lies between after and before."),
    ]
    for query, variables, message in refused:
        answer = gateway.query(query, variables)
        [error] = answer["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"].startswith(message), error
        assert list(answer["data"].values()) == [None]
    assert calls.requests() == []


NESTED = """{ cases(perPage: 20) { items { caseId assignees { userId casesConnection(first: 3, filter: {priority: HIGH}) {
  %s edges { cursor node { caseId } } pageInfo { hasNextPage hasPreviousPage } } } } } }"""
NESTED_LIST = "{ cases(perPage: 20) { items { caseId assignees { userId cases(first: 4, filter: {priority: HIGH}) { caseId } } } } }"


def user_cases(upstream: Upstream, user: str) -> tuple[list[int], int]:
    """A user's first 50 high-priority case ids in the upstream's order, and how many the user has."""
    filters = json.dumps({"and_assignees": [user], "priority": ["HIGH"]})
    own = upstream.get("/api/v2/cases", per_page=50, filters=filters).json()
    return [case["case_id"] for case in own["cases"]], own["meta"]["count"]


def test_a_nested_connection_over_twenty_parents_is_batched(gateway, upstream, calls):
    gateway.query(NESTED_LIST)
    as_list = calls.requests()
    calls.reset()
    answer = gateway.query(NESTED % "")
    assert "errors" not in answer
    batched = calls.requests()
    # exactly the calls of the plain list field asking for one case more: the combined listings
    assert [(r["path"], r["params"]) for r in batched] == [(r["path"], r["params"]) for r in as_list]
    users = {p["userId"] for item in answer["data"]["cases"]["items"] for p in item["assignees"]}
    assert len(users) > 10
    assert len(batched) < 1 + len(users) / 2
    own = {user: user_cases(upstream, user) for user in users}
    assert {count > 3 for _, count in own.values()} == {True, False}  # users with more cases, and without
    for item in answer["data"]["cases"]["items"]:
        for person in item["assignees"]:
            connection = person["casesConnection"]
            ids, count = own[person["userId"]]
            assert [e["node"]["caseId"] for e in connection["edges"]] == ids[:3]
            assert connection["pageInfo"] == {"hasNextPage": count > 3, "hasPreviousPage": False}
    # totalCount: one count call per user with more cases than the window (the others' counts are known)
    calls.reset()
    answer = gateway.query(NESTED % "totalCount")
    counted = calls.requests()[len(batched) :]
    assert sorted(json.loads(r["params"]["filters"][0])["and_assignees"][0] for r in counted) == sorted(
        user for user in users if own[user][1] > 3
    )
    assert {(r["params"]["page"][0], r["params"]["per_page"][0]) for r in counted} == {("1", "1")}
    for item in answer["data"]["cases"]["items"]:
        for person in item["assignees"]:
            assert person["casesConnection"]["totalCount"] == own[person["userId"]][1]


def test_a_nested_window_after_a_cursor_is_its_parents_own_listing(gateway, upstream, calls):
    tag_query = """query($after: String) { case(id: 12) { tags { name
      casesConnection(first: 4, after: $after, order: CREATED_ASC) { totalCount edges { cursor node { caseId } } } } } }"""
    first = gateway.query(tag_query)["data"]["case"]["tags"][0]
    tag = first["name"]
    own = upstream.get(
        "/api/v2/cases", per_page=50, order="CREATED_ASC", filters=json.dumps({"and_tags": [tag]})
    ).json()["cases"]
    ids = [case["case_id"] for case in own]
    assert [e["node"]["caseId"] for e in first["casesConnection"]["edges"]] == ids[:4]
    calls.reset()
    answer = gateway.query(tag_query, {"after": first["casesConnection"]["edges"][-1]["cursor"]})
    tags = answer["data"]["case"]["tags"]
    # the cursor is of the first tag's list: the other tags refuse it, before any call of theirs
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"] * (len(tags) - 1)
    requests = calls.requests()
    assert [r["path"] for r in requests] == ["/api/v2/cases/12", "/api/v2/cases"]
    assert json.loads(requests[1]["params"]["filters"][0]) == {"and_tags": [tag]}
    assert (requests[1]["params"]["page"], requests[1]["params"]["per_page"]) == (["2"], ["4"])
    assert [e["node"]["caseId"] for e in tags[0]["casesConnection"]["edges"]] == ids[4:8]
    assert tags[0]["casesConnection"]["totalCount"] == len(ids)


def case_with(upstream: Upstream, path: str, key: str, least: int) -> tuple[int, list[Any]]:
    """The first v2 case with at least `least` activities or records, and all of them as the upstream pages them
    at 50."""
    for case in upstream.get("/api/v2/cases", per_page=50).json()["cases"]:
        if case[f"{key}_meta"]["count"] >= least:
            page = upstream.get(f"/api/v2/cases/{case['case_id']}/{path}", per_page=50).json()
            return case["case_id"], page[key]
    raise AssertionError(f"no case with {least} {key}")


def test_activities_windows_within_the_embedded_page_are_free(gateway, upstream, calls):
    answer = gateway.query(
        "{ cases(perPage: 20) { items { activitiesConnection(first: 5) { totalCount edges { node { id } } } } } }"
    )
    assert "errors" not in answer
    assert [r["path"] for r in calls.requests()] == ["/api/v2/cases"]
    case_id, activities = case_with(upstream, "activities", "activities", 31)
    ids = [a["id"] for a in activities]
    query = """query($id: Int!, $after: String, $last: Int, $first: Int) { case(id: $id) {
      activitiesConnection(first: $first, last: $last, after: $after) { totalCount edges { cursor node { id } } } } }"""
    calls.reset()
    window = gateway.query(query, {"id": case_id, "first": 20})["data"]["case"]["activitiesConnection"]
    assert [e["node"]["id"] for e in window["edges"]] == ids[:20]
    assert window["totalCount"] == len(ids)
    assert [r["path"] for r in calls.requests()] == [f"/api/v2/cases/{case_id}"]
    calls.reset()
    after = window["edges"][-1]["cursor"]
    window = gateway.query(query, {"id": case_id, "first": 10, "after": after})["data"]["case"]
    assert [e["node"]["id"] for e in window["activitiesConnection"]["edges"]] == ids[20:30]
    requests = calls.requests()
    assert listing_pages(requests[1:]) == [(f"/api/v2/cases/{case_id}/activities", 3, 10)]
    calls.reset()
    window = gateway.query(query, {"id": case_id, "last": 3})["data"]["case"]  # the count is in the case
    assert [e["node"]["id"] for e in window["activitiesConnection"]["edges"]] == ids[-3:]
    assert len(calls.requests()) == 2


def test_records_are_read_in_pages_of_fifty_one_edge_per_record(gateway, upstream, calls):
    case_id, groups = case_with(upstream, "records", "records", 21)
    flat = [(g["record_type_name"], r["id"]) for g in groups for r in g["record_type_record_results"]]
    query = """query($id: Int!, $after: String) { case(id: $id) {
      recordsConnection(first: 15, after: $after) { totalCount edges { cursor node { recordTypeName id results { name } } } } } }"""
    calls.reset()
    first = gateway.query(query, {"id": case_id})["data"]["case"]["recordsConnection"]
    after = first["edges"][-1]["cursor"]
    second = gateway.query(query, {"id": case_id, "after": after})["data"]["case"]["recordsConnection"]
    edges = first["edges"] + second["edges"]
    assert [(e["node"]["recordTypeName"], e["node"]["id"]) for e in edges] == flat[:30]
    assert first["totalCount"] == len(flat)
    assert edges[0]["node"]["results"] == [{"name": "Timestamp"}, {"name": "Story name"}, {"name": "Verdict"}]
    pages = listing_pages([r for r in calls.requests() if r["path"].endswith("/records")])
    assert pages == [(f"/api/v2/cases/{case_id}/records", 1, 50)] * 2
    calls.reset()
    last = gateway.query(
        "query($id: Int!) { case(id: $id) { recordsConnection(last: 5) { edges { node { id } } } } }",
        {"id": case_id},
    )
    assert [e["node"]["id"] for e in last["data"]["case"]["recordsConnection"]["edges"]] == [
        i for _, i in flat[-5:]
    ]
    assert listing_pages(calls.requests()[1:]) == [
        (f"/api/v2/cases/{case_id}/records", 1, 50)
    ]  # count: the case's
    calls.reset()
    answer = gateway.query(
        "{ cases(perPage: 50) { items { recordsConnection(first: 50) { totalCount edges { node { id } } } } } }"
    )
    served = [r for r in calls.requests() if r["path"].endswith("/records")]
    big = [i for i in answer["data"]["cases"]["items"] if i["recordsConnection"]["totalCount"] > 20]
    assert len(served) == len(big) > 0  # the others are whole in the embedded page


def test_node_refetches_every_edges_node(gateway, calls):
    v2 = gateway.query(
        "{ casesConnection(first: 7, after: null) { edges { node { id caseId name status } } } }"
    )
    v1 = gateway.query("{ legacyCasesConnection(last: 7) { edges { node { id legacyId caseNumber } } } }")
    nodes = [e["node"] for e in v2["data"]["casesConnection"]["edges"]] + [
        e["node"] for e in v1["data"]["legacyCasesConnection"]["edges"]
    ]
    fields = "... on Case { id caseId name status } ... on LegacyCase { id legacyId caseNumber }"
    query = "{ %s }" % " ".join(f'n{i}: node(id: "{n["id"]}") {{ {fields} }}' for i, n in enumerate(nodes))
    answer = gateway.query(query)
    assert "errors" not in answer
    assert [answer["data"][f"n{i}"] for i in range(len(nodes))] == nodes


def test_the_limits_count_connections_as_their_descriptions_say():
    """Each connection's worst case (gateway/planning/limits.py): two pages and a count page per window; a user's or
    tag's first window batched as the list field, with a count call per parent."""
    nested = "{ cases(perPage: 20) { items { assignees { casesConnection(first: 3%s) { totalCount edges { node { caseId } } } } } } }"
    for query, variables, cost in [
        (
            "{ casesConnection(first: 50) { edges { node { caseId legacyCase { caseNumber } } } } }",
            {},
            3 + 50,
        ),
        ("{ legacyCasesConnection(last: 100) { edges { node { legacyId case { caseId } } } } }", {}, 3 + 2),
        ("{ casesConnection { edges { node { linkedCases { caseId } } } } }", {}, 3 + 2),  # 20 by default
        # 100 users (5 per case): combined listings for 4 cases each, and a count call per user
        (nested % "", {}, 1 + 2 * 100 + 8 + 1),
        # with a cursor, each user's own listing
        ("query($c: String) " + nested % ", after: $c", {"c": None}, 1 + 3 * 100),
        (
            "{ cases(perPage: 50) { items { activitiesConnection(last: 5) { edges { node { id } } } } } }",
            {},
            1 + 150,
        ),
        ("{ case(id: 1) { recordsConnection { edges { node { id } } } } }", {}, 1 + 3),
    ]:
        document = parse(query)
        assert check_document(schema._schema, document, variables, Limits(max_cost=cost)) == [], query
        assert check_document(schema._schema, document, variables, Limits(max_cost=cost - 1)) != [], query


def test_a_connection_too_costly_is_refused_without_upstream_calls(gateway, calls):
    answer = gateway.query(
        "{ casesConnection(first: 50) { edges { node { assignees { casesConnection(first: 10) { edges { node "
        "{ legacyCase { caseNumber } } } } } } } } }"
    )
    assert [error["extensions"]["code"] for error in answer["errors"]] == ["QUERY_TOO_COMPLEX"]
    assert calls.requests() == []
