"""The demo upstream's own contract, straight over HTTP: what the gateway (and every other test) relies on.

Authentication and its log, 401/404/400 with `{"error": ...}`, v1 header pagination, v2 `meta` links, the
v2 case shape of the reference sample, activities and records beyond the embedded page, a token limited
to one team, deterministic data, and the v1 <-> v2 links of the design.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.demo import DEMO_TOKEN_2
from gateway.demo.data import generate
from gateway.demo.faults import parse_rule

SAMPLE = json.loads((Path(__file__).parent / "data" / "v2_sample_response.json").read_text())
V1, V2 = "/api/v1/cases", "/api/v2/cases"
FREE_FORM = {"metadata"}  # keys whose object has no fixed shape
LINK_LABEL, BACK_LINK = "Tines case", "trackops_case_id"
PAGE_HEADERS = ("X-Total-Count", "X-Page", "X-Per-Page", "X-Total-Pages")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def follow(upstream, url: str, token: str = "demo-token") -> dict[str, Any]:
    """GET an absolute URL the upstream handed out."""
    assert url.startswith(upstream.url + "/api/"), url
    response = upstream.client.get(url, headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def every_v2_page(upstream, path: str = V2, token: str = "demo-token", **params: Any) -> list[dict[str, Any]]:
    """Every item of a v2 list, by following `next_page` from page 1."""
    body = upstream.get(path, token=token, per_page=50, **params).json()
    key = next(k for k in body if k != "meta")
    items = body[key]
    while body["meta"]["next_page"]:
        body = follow(upstream, body["meta"]["next_page"], token)
        items += body[key]
    return items


def shape_errors(template: Any, value: Any, where: str = "case") -> list[str]:
    """Where `value` has other keys than the reference `template` (objects compared recursively, every item
    of a list against the template's first item; nulls and free-form objects are not compared)."""
    if isinstance(template, dict) and isinstance(value, dict):
        errors = [] if set(value) == set(template) else [f"{where}: {sorted(set(value) ^ set(template))}"]
        for key in (template.keys() & value.keys()) - FREE_FORM:
            errors += shape_errors(template[key], value[key], f"{where}.{key}")
        return errors
    if isinstance(template, list) and isinstance(value, list) and template:
        return [error for item in value for error in shape_errors(template[0], item, f"{where}[]")]
    return []


def linked_v2_id(legacy: dict[str, Any]) -> str | None:
    """The reference value a v1 case holds under its "Tines case" label, or None when it has no such label."""
    labels = (legacy["case_type"] or {}).get("reference_labels") or []
    return legacy[f"reference_value_{labels.index(LINK_LABEL) + 1}"] if LINK_LABEL in labels else None


def flat_results(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The record results of a page, in ID order (a page groups them by record type)."""
    results = [result for group in groups for result in group["record_type_record_results"]]
    return sorted(results, key=lambda result: result["id"])


@pytest.fixture(scope="module")
def v2_cases(upstream) -> list[dict[str, Any]]:
    return every_v2_page(upstream)


@pytest.fixture(scope="module")
def v1_cases(upstream) -> list[dict[str, Any]]:
    out, page = [], 1
    while page:
        response = upstream.get(V1, per_page=100, page=page)
        out += response.json()
        page = page + 1 if page < int(response.headers["X-Total-Pages"]) else None
    return out


# --- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [V2, f"{V2}/1", f"{V2}/1/activities", V1, f"{V1}/1001"])
@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong-token"), {"Authorization": "demo-token"}, {"Authorization": "Basic demo-token"}],
    ids=["none", "wrong", "no-scheme", "basic"],
)
def test_401_without_a_valid_bearer_token(upstream, calls, path, headers):
    response = upstream.client.get(path, headers=headers)
    assert response.status_code == 401
    assert list(response.json()) == ["error"] and response.json()["error"]
    [entry] = calls.requests()
    assert (entry["path"], entry["status"], entry["authorized_as"]) == (path, 401, None)


@pytest.mark.parametrize(
    "path", [f"{V2}/999999", f"{V2}/999999/activities", f"{V2}/999999/records", f"{V1}/999999"]
)
def test_404_for_an_unknown_case(upstream, calls, path):
    response = upstream.get(path)
    assert response.status_code == 404
    assert list(response.json()) == ["error"] and "999999" in response.json()["error"]
    [entry] = calls.requests()
    assert (entry["path"], entry["status"], entry["authorized_as"]) == (path, 404, "168")


BAD_REQUESTS = [  # (path, query parameters)
    pytest.param(V2, {"colour": "red"}, id="unknown-parameter-v2"),
    pytest.param(V1, {"colour": "red"}, id="unknown-parameter-v1"),
    pytest.param(f"{V2}/1", {"page": "1"}, id="parameter-on-one-v2-case"),
    pytest.param(f"{V1}/1001", {"page": "1"}, id="parameter-on-one-v1-case"),
    pytest.param(V2, {"page": ["1", "2"]}, id="repeated-parameter"),
    pytest.param(V2, {"per_page": "51"}, id="per_page-51-v2"),
    pytest.param(V1, {"per_page": "101"}, id="per_page-101-v1"),
    pytest.param(f"{V2}/1/activities", {"per_page": "51"}, id="per_page-51-activities"),
    pytest.param(f"{V2}/1/records", {"per_page": "0"}, id="per_page-0-records"),
    pytest.param(V2, {"page": "0"}, id="page-0-v2"),
    pytest.param(V1, {"page": "0"}, id="page-0-v1"),
    pytest.param(V2, {"page": "-1"}, id="page-negative"),
    pytest.param(V2, {"page": "²"}, id="page-superscript-digit"),
    pytest.param(V1, {"per_page": "١٠"}, id="per_page-arabic-indic-digits"),
    pytest.param(V2, {"team_id": "x"}, id="team_id-not-a-number"),
    pytest.param(V2, {"order": "NEWEST"}, id="bad-order"),
    pytest.param(V2, {"order": "created_desc"}, id="lowercase-order"),
    pytest.param(V2, {"filters": "status=OPEN"}, id="filters-not-json"),
    pytest.param(V2, {"filters": '["status"]'}, id="filters-not-an-object"),
    pytest.param(V2, {"filters": '{"colour":"red"}'}, id="unknown-filter"),
    pytest.param(V2, {"filters": '{"priority":["URGENT"]}'}, id="bad-priority"),
    pytest.param(V2, {"filters": '{"status":"PENDING"}'}, id="bad-status"),
    pytest.param(V2, {"filters": '{"time_range":"25:00-06:00"}'}, id="bad-time_range-hour"),
    pytest.param(V2, {"filters": '{"time_range":"9:00-17:00"}'}, id="bad-time_range-format"),
    pytest.param(V2, {"filters": '{"relative_date":"last week"}'}, id="bad-relative_date"),
    pytest.param(V2, {"filters": '{"resolved_at_relative_date":"0 days"}'}, id="bad-relative_date-zero"),
    pytest.param(V2, {"filters": '{"start_date":"2024-02-30"}'}, id="bad-start_date"),
    pytest.param(V2, {"filters": '{"sla_status":["ok"]}'}, id="bad-sla_status"),
    pytest.param(V2, {"filters": '{"case_ids":["²"]}'}, id="bad-case_ids"),
    pytest.param(V2, {"filters": '{"tags":[]}'}, id="empty-filter-list"),
    pytest.param(V2, {"filters": '{"metadata":{"key":"source"}}'}, id="metadata-without-value"),
    pytest.param(V1, {"From": "2024-01-01", "created_from": "2024-01-01"}, id="From-and-created_from"),
    pytest.param(V1, {"To": "2024-01-01", "created_to": "2024-01-01"}, id="To-and-created_to"),
    pytest.param(V1, {"created_from": "2024-02-30"}, id="bad-v1-date"),
    pytest.param(V1, {"due_to": "01/02/2024"}, id="bad-v1-date-format"),
    pytest.param(V1, {"created_from_system": "yesterday"}, id="bad-v1-timestamp"),
    pytest.param(V1, {"client": "acme"}, id="bad-v1-id"),
    pytest.param(V1, {"is_request": "yes"}, id="bad-v1-boolean"),
    pytest.param(f"{V2}/²", {}, id="case-id-superscript-digit"),
    pytest.param(f"{V1}/0", {}, id="case-id-zero"),
]


@pytest.mark.parametrize(("path", "params"), BAD_REQUESTS)
def test_400_for_a_bad_parameter(upstream, calls, path, params):
    response = upstream.get(path, **params)
    assert response.status_code == 400, response.text
    assert list(response.json()) == ["error"] and response.json()["error"]
    [entry] = calls.requests()
    assert (entry["status"], entry["authorized_as"]) == (400, "168")


@pytest.mark.parametrize(
    ("path", "params", "size"),
    [(V2, {"per_page": "50"}, 50), (V1, {"per_page": "100"}, 100), (V2, {}, 20), (V1, {}, 25)],
    ids=["v2-max", "v1-max", "v2-default", "v1-default"],
)
def test_the_largest_and_default_pages_are_fine(upstream, path, params, size):
    response = upstream.get(path, **params)
    assert response.status_code == 200
    body = response.json()
    assert len(body["cases"] if path == V2 else body) == size


# --- pagination ----------------------------------------------------------------------------------------


def test_v1_pagination_headers_agree_with_the_body(upstream, v1_cases):
    total = upstream.client.get("/_demo/healthz").json()["v1_cases"]
    assert len(v1_cases) == total and [c["id"] for c in v1_cases] == sorted({c["id"] for c in v1_cases})
    pages = -(-total // 40)
    seen = []
    for page in range(1, pages + 2):  # and one past the end
        response = upstream.get(V1, per_page=40, page=page)
        assert response.status_code == 200
        assert {name: response.headers[name] for name in PAGE_HEADERS} == {
            "X-Total-Count": str(total),
            "X-Page": str(page),
            "X-Per-Page": "40",
            "X-Total-Pages": str(pages),
        }
        body = response.json()
        assert len(body) == (40 if page < pages else total - 40 * (pages - 1) if page == pages else 0)
        seen += body
    assert seen == v1_cases


def test_v1_headers_count_the_filtered_cases(upstream, v1_cases):
    closed = [c for c in v1_cases if c["case_status"] and c["case_status"]["id"] == 4]
    assert 7 < len(closed) < len(v1_cases)
    response = upstream.get(V1, case_status=4, per_page=7, page=2)
    assert response.headers["X-Total-Count"] == str(len(closed))
    assert response.headers["X-Total-Pages"] == str(-(-len(closed) // 7))
    assert response.json() == closed[7:14]


def test_v2_meta_links_are_absolute_and_followable_both_ways(upstream, v2_cases):
    filters = '{"status":"OPEN"}'
    first = upstream.get(V2, filters=filters, order="CREATED_ASC", per_page=30).json()
    meta = first["meta"]
    open_cases = sorted(
        (c for c in v2_cases if c["status"] == "OPEN"), key=lambda c: (c["created_at"], c["case_id"])
    )
    count, pages = len(open_cases), -(-len(open_cases) // 30)
    assert pages > 2
    assert meta == {  # the links are checked by following them
        "current_page": meta["current_page"],
        "previous_page": None,
        "next_page": meta["next_page"],
        "next_page_number": 2,
        "per_page": 30,
        "pages": pages,
        "count": count,
    }
    assert follow(upstream, meta["current_page"]) == first
    forward = [first]
    while forward[-1]["meta"]["next_page"]:
        forward.append(follow(upstream, forward[-1]["meta"]["next_page"]))
    assert [page["meta"]["next_page_number"] for page in forward] == [*range(2, pages + 1), None]
    assert [c["case_id"] for page in forward for c in page["cases"]] == [c["case_id"] for c in open_cases]
    backward = [forward[-1]]
    while backward[-1]["meta"]["previous_page"]:
        backward.append(follow(upstream, backward[-1]["meta"]["previous_page"]))
    assert backward == forward[::-1]


def test_v2_links_use_the_host_the_client_asked(upstream):
    """Answers are memoised per URL: a second host must not get the first one's links."""
    for host in ("127.0.0.1", "upstream.example:8080"):
        body = upstream.client.get(
            V2, params={"per_page": 3}, headers={**bearer("demo-token"), "Host": host}
        ).json()
        links = [
            body["meta"]["next_page"],
            body["cases"][0]["url"],
            body["cases"][0]["activities_meta"]["current_page"],
        ]
        assert all(link.startswith(f"http://{host}/") for link in links), links


def test_v2_page_past_the_end_is_empty_with_the_count(upstream, v2_cases):
    body = upstream.get(V2, per_page=50, page=7).json()
    assert body["cases"] == [] and body["meta"]["next_page"] is None
    assert (body["meta"]["count"], body["meta"]["pages"]) == (len(v2_cases), 6)


# --- the v2 case shape, activities and records ---------------------------------------------------------


def test_every_v2_case_has_the_keys_of_the_reference_sample(v2_cases):
    assert len(v2_cases) == 300
    template = SAMPLE["cases"][0]
    assert all(set(case) == set(template) for case in v2_cases)
    assert [error for case in v2_cases for error in shape_errors(template, case)] == []


def test_every_v2_meta_has_the_keys_of_the_reference_sample(upstream):
    body = upstream.get(V2).json()
    assert set(body) == set(SAMPLE) and set(body["meta"]) == set(SAMPLE["meta"])
    for name in ("activities", "records"):
        assert set(upstream.get(f"{V2}/7/{name}").json()) == {name, "meta"}
        assert set(upstream.get(f"{V2}/7/{name}").json()["meta"]) == set(SAMPLE["meta"])


@pytest.mark.parametrize("name", ["activities", "records"])
def test_embedded_page_then_more_pages(upstream, v2_cases, name):
    """The biggest case: its embedded list is page 1 of the endpoint, and the pages after it hold the rest."""
    case = max(v2_cases, key=lambda c: (c[f"{name}_meta"]["count"], -c["case_id"]))
    embedded, meta = case[name], case[f"{name}_meta"]
    count = meta["count"]
    assert (
        count > 20 and meta["next_page"] == f"{upstream.url}{V2}/{case['case_id']}/{name}?per_page=20&page=2"
    )
    path = f"{V2}/{case['case_id']}/{name}"
    first = upstream.get(path, page=1, per_page=20).json()
    assert first == {name: embedded, "meta": meta}
    pages = [first]
    while pages[-1]["meta"]["next_page"]:
        pages.append(follow(upstream, pages[-1]["meta"]["next_page"]))
    assert len(pages) == -(-count // 20) > 1
    flat = flat_results if name == "records" else list
    items = [item for page in pages for item in flat(page[name])]
    assert len(items) == count and len({item["id"] for item in items}) == count
    assert flat(embedded) == items[:20]
    assert flat(upstream.get(path, per_page=50).json()[name]) == items
    assert upstream.get(path, page=len(pages) + 1).json()[name] == []


# --- a token limited to one team -----------------------------------------------------------------------


def test_demo_token_2_sees_only_team_276(upstream, calls, v2_cases):
    seen = every_v2_page(upstream, token=DEMO_TOKEN_2)
    team = [c for c in v2_cases if c["team"]["id"] == 276]
    assert 0 < len(team) < len(v2_cases)
    assert [c["case_id"] for c in seen] == [c["case_id"] for c in team]
    assert {entry["authorized_as"] for entry in calls.requests()} == {"169"}
    assert upstream.get(V2, token=DEMO_TOKEN_2, team_id=277).json()["meta"]["count"] == 0


def test_demo_token_2_gets_404_for_another_teams_case(upstream, v2_cases):
    own = next(c for c in v2_cases if c["team"]["id"] == 276)
    other = next(c for c in v2_cases if c["team"]["id"] != 276)
    assert upstream.get(f"{V2}/{own['case_id']}", token=DEMO_TOKEN_2).json() == own
    for path in (
        f"{V2}/{other['case_id']}",
        f"{V2}/{other['case_id']}/activities",
        f"{V2}/{other['case_id']}/records",
    ):
        response = upstream.get(path, token=DEMO_TOKEN_2)
        assert response.status_code == 404 and list(response.json()) == ["error"]
    assert upstream.get(f"{V2}/{other['case_id']}").status_code == 200


# --- data ----------------------------------------------------------------------------------------------


def test_the_data_is_deterministic():
    assert generate(7) == generate(7)
    assert generate(7) != generate(8)


def test_the_upstream_serves_the_seeded_data(upstream, v2_cases, v1_cases):
    data = generate(7)
    assert {c["case_id"]: c["name"] for c in v2_cases} == {n: d.case["name"] for n, d in data.cases.items()}
    assert v1_cases == list(data.legacy.values())


def test_no_timestamp_is_after_demo_now(v2_cases, v1_cases):
    now = "2024-07-01T12:00:00Z"
    moments = [
        (c["case_id"], key, c[key])
        for c in v2_cases
        for key in ("created_at", "opened_at", "resolved_at", "updated_at")
        if c[key] is not None
    ]
    assert [m for m in moments if m[2] > now] == []
    assert [c["id"] for c in v1_cases if c["created_at"] > now or c["updated_at"] > now] == []


def test_v1_cases_link_to_v2_cases_that_link_back(v1_cases, v2_cases):
    v2_by_id = {str(c["case_id"]): c for c in v2_cases}
    linked = {legacy["id"]: ref for legacy in v1_cases if (ref := linked_v2_id(legacy)) is not None}
    assert len(linked) > 200
    dangling = {v1_id: ref for v1_id, ref in linked.items() if ref not in v2_by_id}
    assert 0 < len(dangling) <= 10
    wrong = {
        v1_id: (v2_by_id[ref]["metadata"] or {}).get(BACK_LINK)
        for v1_id, ref in linked.items()
        if v1_id not in dangling and (v2_by_id[ref]["metadata"] or {}).get(BACK_LINK) != str(v1_id)
    }
    assert wrong == {}


def test_v2_cases_link_back_to_v1_cases_that_link_to_them(v1_cases, v2_cases):
    v1_by_id = {str(c["id"]): c for c in v1_cases}
    back = {c["case_id"]: ref for c in v2_cases if (ref := (c["metadata"] or {}).get(BACK_LINK)) is not None}
    assert len(back) > 200
    dangling = {case_id: ref for case_id, ref in back.items() if ref not in v1_by_id}
    assert 0 < len(dangling) <= 10
    assert {
        case_id
        for case_id, ref in back.items()
        if case_id not in dangling and linked_v2_id(v1_by_id[ref]) != str(case_id)
    } == set()


def test_dangling_links_point_at_nothing(upstream, v1_cases, v2_cases):
    v2_ids = {str(c["case_id"]) for c in v2_cases}
    refs = [ref for c in v1_cases if (ref := linked_v2_id(c)) is not None and ref not in v2_ids]
    assert refs and all(upstream.get(f"{V2}/{ref}").status_code == 404 for ref in refs)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "a rule needs latency_ms, headers, rewrite, body or one of"),
        ({"rewrite": ["cases.0.name"]}, "rewrite must be an object of paths and values"),
        ({"rewrite": {"name": 1}, "status": 500}, "rewrite changes the normal answer: no failure beside it"),
        ({"status": 503, "reset": True}, "one failure per rule"),
        ({"body": "{}", "status": 500}, "body is a string replacing the normal answer's body"),
        ({"body": {"cases": []}}, "body is a string replacing the normal answer's body"),
        ({"headers": {"Set-Cookie": 1}}, "headers must be an object of strings"),
        ({"headers": ["Set-Cookie: a=b"]}, "headers must be an object of strings"),
        ({"latency_ms": -1}, "latency_ms must be between"),
        ({"status": 99}, "status must be an HTTP status"),
        ({"times": -1, "status": 500}, "times must be a non-negative integer"),
        ({"oops": 1}, "unknown keys: ['oops']"),
    ],
)
def test_a_fault_rule_that_makes_no_sense_is_refused(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_rule(1, spec)


def test_a_headers_only_rule_serves_the_normal_answer_with_them(upstream):
    with upstream.clean():
        upstream.fault(headers={"Set-Cookie": "lb=node-2; Path=/"}, times=1, paths=["/api/v1/cases"])
        first = upstream.get("/api/v1/cases", per_page=1)
        second = upstream.get("/api/v1/cases", per_page=1)
    assert first.status_code == second.status_code == 200
    assert first.headers["set-cookie"] == "lb=node-2; Path=/"
    assert "set-cookie" not in second.headers
    assert first.json() == second.json()


def test_a_rewrite_rule_serves_the_normal_answer_with_values_replaced(upstream):
    deep: object = "bottom"
    for _ in range(300):  # deeper than orjson encodes: the rule still serves it
        deep = [deep]
    with upstream.clean():
        normal = upstream.get("/api/v2/cases", per_page=2).json()
        upstream.fault(
            rewrite={
                "cases.0.created_at": "not a date",
                "cases.*.tags": "x",
                "meta.per_page": "abc",
                "cases.1.metadata": deep,
            },
            times=1,
            paths=["/api/v2/cases"],
        )
        rewritten = upstream.get("/api/v2/cases", per_page=2)
        again = upstream.get("/api/v2/cases", per_page=2).json()
        assert [r["fired"] for r in upstream.faults()] == [1]
    assert rewritten.status_code == 200
    assert int(rewritten.headers["content-length"]) == len(rewritten.content)
    body = rewritten.json()
    expected = copy.deepcopy(normal)
    expected["cases"][0]["created_at"] = "not a date"
    for case in expected["cases"]:
        case["tags"] = "x"
    expected["meta"]["per_page"] = "abc"
    expected["cases"][1]["metadata"] = deep
    assert body == expected
    assert again == normal
