"""v1 <-> v2 links and batched nested fields, with exact upstream call counts from the demo's own log."""

from __future__ import annotations

import base64
import json
import math

from gateway.upstream.links import v1_id_of, v2_id_of
from tests.support import DEMO_TOKEN


def filters_of(request: dict) -> dict:
    return json.loads(request["params"]["filters"][0])


def test_twenty_legacy_cases_with_their_v2_case_cost_two_calls(gateway, upstream, calls):
    legacy = upstream.get("/api/v1/cases", per_page=20).json()
    calls.reset()
    answer = gateway.query("{ legacyCases(perPage: 20) { items { legacyId case { caseId name } } } }")
    requests = calls.requests()
    assert [r["path"] for r in requests] == ["/api/v1/cases", "/api/v2/cases"]
    links = {c["id"]: v2_id_of(c, "Tines case") for c in legacy}
    linked_ids = {i for i in links.values() if i is not None}
    assert len(linked_ids) > 10
    assert set(filters_of(requests[1])["case_ids"]) == linked_ids
    assert requests[1]["params"]["per_page"] == ["50"]
    got = {
        item["legacyId"]: item["case"] and item["case"]["caseId"]
        for item in answer["data"]["legacyCases"]["items"]
    }
    missing = {i for i in linked_ids if upstream.get(f"/api/v2/cases/{i}").status_code == 404}
    assert got == {lid: (v2 if v2 not in missing else None) for lid, v2 in links.items()}
    assert len(answer.get("errors", [])) == sum(1 for v2 in links.values() if v2 in missing)


def test_fifty_cases_with_linked_cases_cost_two_calls(gateway, upstream, calls):
    page = upstream.get("/api/v2/cases", per_page=50).json()["cases"]
    calls.reset()
    answer = gateway.query("{ cases(perPage: 50) { items { caseId linkedCases { caseId name } } } }")
    requests = calls.requests()
    on_page = {c["case_id"] for c in page}
    linked = {ref["case_id"] for c in page for ref in c["linked_cases"]}
    to_fetch = linked - on_page
    assert len(requests) == 1 + math.ceil(len(to_fetch) / 50) == 2
    assert set(filters_of(requests[1])["case_ids"]) == to_fetch
    exists = {
        c["case_id"]: c
        for c in upstream.get(
            "/api/v2/cases", per_page=50, filters=json.dumps({"case_ids": sorted(linked)})
        ).json()["cases"]
    }
    for case, item in zip(page, answer["data"]["cases"]["items"], strict=True):
        expected = [
            {"caseId": r["case_id"], "name": exists[r["case_id"]]["name"]} if r["case_id"] in exists else None
            for r in case["linked_cases"]
        ]
        assert item["linkedCases"] == expected
    dangling = sum(1 for c in page for r in c["linked_cases"] if r["case_id"] not in exists)
    assert dangling > 0
    errors = answer["errors"]
    assert len(errors) == dangling
    assert {e["extensions"]["code"] for e in errors} == {"NOT_FOUND"}
    assert all(e["path"][:2] == ["cases", "items"] and e["path"][3] == "linkedCases" for e in errors)


def busiest_assignee(upstream) -> str:
    counts: dict[str, int] = {}
    for case in upstream.get("/api/v2/cases", per_page=50).json()["cases"]:
        for person in case["assignees"]:
            counts[person["user_id"]] = counts.get(person["user_id"], 0) + 1
    return max(counts, key=counts.__getitem__)


def test_the_same_user_under_thirty_cases_is_asked_for_once(gateway, upstream, calls):
    user = busiest_assignee(upstream)
    calls.reset()
    answer = gateway.query(
        "query($u: [String!]) { cases(perPage: 30, filter: {assignees: $u}) { items { assignees { userId cases(first: 5) { caseId } } } } }",
        {"u": [user]},
    )
    assert "errors" not in answer
    items = answer["data"]["cases"]["items"]
    assert len(items) == 30
    requests = calls.requests()
    listings = requests[1:]
    asking_for_user = [r for r in listings if user in json.dumps(filters_of(r))]
    assert len(asking_for_user) == 1
    users = {p["userId"] for item in items for p in item["assignees"]}
    assert len(listings) < len(users) / 2  # combined, not one call per user
    # each user's cases are exactly the first five of that user's own listing
    for item in items:
        for person in item["assignees"]:
            own = upstream.get(
                "/api/v2/cases", per_page=5, filters=json.dumps({"and_assignees": [person["userId"]]})
            )
            assert [c["caseId"] for c in person["cases"]] == [c["case_id"] for c in own.json()["cases"]]


def test_tag_cases_are_combined_with_or_tags(gateway, upstream, calls):
    answer = gateway.query(
        "{ cases(perPage: 20) { items { tags { name cases(first: 3, filter: {status: OPEN}) { caseId status } } } } }"
    )
    assert "errors" not in answer
    tags = {t["name"] for item in answer["data"]["cases"]["items"] for t in item["tags"]}
    assert len(tags) > 3
    listings = calls.requests()[1:]
    assert len(listings) < len(tags)
    assert set(filters_of(listings[0])["or_tags"]) == tags
    for item in answer["data"]["cases"]["items"]:
        for tag in item["tags"]:
            own = upstream.get(
                "/api/v2/cases", per_page=3, filters=json.dumps({"and_tags": [tag["name"]], "status": "OPEN"})
            )
            assert [c["caseId"] for c in tag["cases"]] == [c["case_id"] for c in own.json()["cases"]]


def test_case_to_legacy_case_and_back(gateway, upstream, calls):
    page = upstream.get("/api/v2/cases", per_page=10).json()["cases"]
    calls.reset()
    answer = gateway.query(
        "{ cases(perPage: 10) { items { caseId legacyCase { legacyId caseNumber case { caseId } } } } }"
    )
    requests = calls.requests()
    v1_ids = [v1_id_of(c, "trackops_case_id") for c in page]
    distinct = {i for i in v1_ids if i is not None}
    # one listing, one v1 GET per distinct linked v1 case, and the way back costs nothing: all primed
    assert len(requests) == 1 + len(distinct)
    assert sorted(r["path"] for r in requests[1:]) == sorted(f"/api/v1/cases/{i}" for i in distinct)
    for case, item in zip(page, answer["data"]["cases"]["items"], strict=True):
        legacy = item["legacyCase"]
        if v1_id_of(case, "trackops_case_id") is None:
            assert legacy is None
        elif legacy is not None:
            assert legacy["legacyId"] == v1_id_of(case, "trackops_case_id")
            assert legacy["case"] == {"caseId": case["case_id"]}


def test_v1_lookups_are_deduplicated(gateway, calls):
    answer = gateway.query(
        "{ a: legacyCase(id: 1001) { caseNumber } b: legacyCase(id: 1001) { caseNumber } c: legacyCase(id: 1002) { caseNumber } }"
    )
    assert answer["data"]["a"] == answer["data"]["b"] and answer["data"]["a"]["caseNumber"]
    assert sorted(r["path"] for r in calls.requests()) == ["/api/v1/cases/1001", "/api/v1/cases/1002"]


def test_missing_linked_case_is_null_with_an_error_and_the_rest_intact(gateway, upstream, calls):
    broken = None
    for legacy in upstream.get("/api/v1/cases", per_page=100).json():
        v2 = v2_id_of(legacy, "Tines case")
        if v2 is not None and upstream.get(f"/api/v2/cases/{v2}").status_code == 404:
            broken = legacy
            break
    assert broken is not None, "the demo data has legacy cases pointing at missing v2 cases"
    answer = gateway.query("{ legacyCase(id: %d) { legacyId caseNumber case { caseId } } }" % broken["id"])
    assert answer["data"]["legacyCase"] == {
        "legacyId": broken["id"],
        "caseNumber": broken["case_number"],
        "case": None,
    }
    [error] = answer["errors"]
    assert error["path"] == ["legacyCase", "case"]
    assert error["extensions"]["code"] == "NOT_FOUND"


def test_node_fetches_both_types_by_global_id(gateway, calls):
    answer = gateway.query("{ case(id: 3) { id } legacyCase(id: 1001) { id } }")
    case_gid, legacy_gid = answer["data"]["case"]["id"], answer["data"]["legacyCase"]["id"]
    assert base64.urlsafe_b64decode(case_gid).decode() == "Case:3"
    assert base64.urlsafe_b64decode(legacy_gid).decode() == "LegacyCase:1001"
    answer = gateway.query(
        "query($a: ID!, $b: ID!) { a: node(id: $a) { __typename id ... on Case { caseId } } "
        "b: node(id: $b) { __typename id ... on LegacyCase { legacyId } } }",
        {"a": case_gid, "b": legacy_gid},
    )
    assert answer["data"] == {
        "a": {"__typename": "Case", "id": case_gid, "caseId": 3},
        "b": {"__typename": "LegacyCase", "id": legacy_gid, "legacyId": 1001},
    }


def test_case_beside_cases_costs_nothing_extra(gateway, upstream, calls):
    first = upstream.get("/api/v2/cases", per_page=5).json()["cases"][0]["case_id"]
    calls.reset()
    answer = gateway.query(
        "{ one: case(id: %d) { caseId name } cases(perPage: 5) { items { caseId } } }" % first
    )
    assert answer["data"]["one"]["caseId"] == first
    assert [r["path"] for r in calls.requests()] == ["/api/v2/cases"]


def test_token_of_another_user_sees_only_its_cases(gateway, upstream, calls):
    mine = gateway.query("{ cases(perPage: 50) { pageInfo { count } } }")
    theirs = gateway.query(
        "{ cases(perPage: 50) { pageInfo { count } } }", headers={"Authorization": "Bearer demo-token-2"}
    )
    assert theirs["data"]["cases"]["pageInfo"]["count"] < mine["data"]["cases"]["pageInfo"]["count"]
    assert DEMO_TOKEN != "demo-token-2"


def test_link_values_are_ascii_digits_only():
    """A superscript or Arabic-Indic digit in a link is no link (str.isdigit accepts them, int() does not)."""
    labels = {"case_type": {"reference_labels": ["Tines case"]}}
    assert v2_id_of({**labels, "reference_value_1": "²"}, "Tines case") is None
    assert v2_id_of({**labels, "reference_value_1": "١٢"}, "Tines case") is None
    assert v2_id_of({**labels, "reference_value_1": " 12 "}, "Tines case") == 12
    assert v1_id_of({"metadata": {"trackops_case_id": "²"}}, "trackops_case_id") is None


async def test_loaders_are_made_on_first_use_and_release_empties_each():
    """A request makes only the loaders it uses; once its answer is built, `release` empties every one of them
    and cuts its load function (the cycle that would keep the request's upstream data until a full GC)."""
    from gateway.upstream.loaders import Loaders

    loaders = Loaders(v1=None, v2=None, caller=None)  # type: ignore[arg-type]
    assert [
        name for name in ("case", "legacy_case", "activities", "records", "related") if name in vars(loaders)
    ] == []
    loaders.prime_cases([{"case_id": 1}, {"case_id": 2}])
    loaders.prime_legacy_cases([{"id": 7}])
    made = {name: vars(loaders)[name] for name in ("case", "legacy_case")}
    assert {name: sorted(loader.cache_map.cache_map) for name, loader in made.items()} == {
        "case": [1, 2],
        "legacy_case": [7],
    }
    assert "activities" not in vars(loaders)
    loaders.release()
    assert {name: (loader.cache_map.cache_map, loader.load_fn) for name, loader in made.items()} == {
        "case": ({}, None),
        "legacy_case": ({}, None),
    }
    assert loaders._known == {}
