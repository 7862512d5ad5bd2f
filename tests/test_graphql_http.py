"""GraphQL over HTTP, over real HTTP against gateway processes (gateway/http/graphql_http.py, gateway/http/apq.py):
media types from `Accept`, status codes, GET for queries only, GraphiQL, automatic persisted queries (in
memory and shared through Redis), caching headers on GET answers, CORS.

The expected data always comes from the demo upstream itself; "no upstream call" is read from its log.
"""

from __future__ import annotations

import http.client
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from gateway.http.apq import sha256_hex
from tests.support import (
    AUTH,
    DEMO_TOKEN,
    Gateway,
    RedisServer,
    Upstream,
    running_redis,
    start_gateways_with,
    stop_gateways,
)

GRJ = "application/graphql-response+json"
GRJ_TYPE = f"{GRJ}; charset=utf-8"  # the Content-Type sent with it
JSON = "application/json"
QUERY = "{ cases(perPage: 3) { items { caseId name } pageInfo { count } } }"
# v2 and v1 side by side: a v2 fault leaves the v1 half intact
BOTH = "{ cases(perPage: 2) { items { caseId } } legacyCases(perPage: 2) { items { legacyId } } }"
ALLOWED_ORIGIN = "https://app.example"


def cases_of(upstream: Upstream, per_page: int) -> dict[str, Any]:
    """What `cases(perPage: n) { items { caseId name } pageInfo { count } }` must answer, from the demo
    upstream's own listing (the caller is the demo token)."""
    listing = upstream.get("/api/v2/cases", per_page=per_page).json()
    return {
        "items": [{"caseId": case["case_id"], "name": case["name"]} for case in listing["cases"]],
        "pageInfo": {"count": listing["meta"]["count"]},
    }


@pytest.fixture(scope="module")
def expected(upstream: Upstream) -> dict[str, Any]:
    """QUERY's answer, from the upstream (asked before any test empties its log)."""
    return {"cases": cases_of(upstream, 3)}


@pytest.fixture
def faults(calls: Upstream) -> Iterator[Upstream]:
    """The session upstream with an empty log; every fault a test adds is removed after it."""
    with calls.clean() as upstream:
        yield upstream


def post(gw: Gateway, body: Any, accept: str | None = None, **headers: str) -> httpx.Response:
    sent = {**AUTH, **headers}
    if accept is not None:
        sent["Accept"] = accept
    if isinstance(body, (bytes, str)):
        return gw.client.post("/graphql", content=body, headers={"Content-Type": JSON, **sent})
    return gw.client.post("/graphql", json=body, headers=sent)


def get(gw: Gateway, params: dict[str, str], accept: str | None = None, **headers: str) -> httpx.Response:
    sent = {**AUTH, **headers}
    if accept is not None:
        sent["Accept"] = accept
    return gw.client.get("/graphql", params=params, headers=sent)


def persisted(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def hash_only_get(gw: Gateway, digest: str, accept: str | None = None, **headers: str) -> httpx.Response:
    """The short, stable URL of a persisted query: `/graphql?extensions={...}` and nothing else."""
    return get(gw, {"extensions": json.dumps(persisted(digest), separators=(",", ":"))}, accept, **headers)


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


def unique_query(label: str, per_page: int = 2) -> str:
    """A query no other test (nor an earlier run against the same Redis) has sent: its hash is unknown."""
    alias = f"{label}_{uuid.uuid4().hex[:12]}"
    return "{ %s: cases(perPage: %d) { items { caseId name } } }" % (alias, per_page)


# --- media types (Accept) ------------------------------------------------------------------------------------

NEGOTIATION = [
    (None, GRJ),  # the spec's default
    ("*/*", GRJ),
    ("application/*", GRJ),  # a tie between the two: the spec's preferred type
    (GRJ, GRJ),
    (JSON, JSON),
    (f"{JSON}, {GRJ}", GRJ),  # both named, same quality: the preferred one
    (f"{JSON};q=0.9, {GRJ};q=0.5", JSON),
    (f"{GRJ};q=0.5, {JSON};q=0.9", JSON),
    (f"{GRJ};q=0, */*", JSON),  # refused by name, the wildcard still allows JSON
    (f"{JSON}, */*;q=0.5", JSON),  # named beats a lower-quality wildcard
    (f"*/*;q=0.2, {JSON};q=0.1", GRJ),
    (f"text/html, {JSON};q=0.1", JSON),
    (f"{JSON}; charset=utf-8", JSON),
    ("APPLICATION/JSON", JSON),  # media ranges are case-insensitive
]


@pytest.mark.parametrize(("accept", "media"), NEGOTIATION, ids=[str(a) for a, _ in NEGOTIATION])
def test_the_answer_is_in_the_media_type_accept_ranks_highest(gateway, calls, expected, accept, media):
    response = post(gateway, {"query": QUERY}, accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == (GRJ_TYPE if media == GRJ else JSON)
    assert response.json()["data"] == expected
    assert "errors" not in response.json()
    assert len(calls.requests()) == 1


@pytest.mark.parametrize(
    "accept", ["text/html", "text/plain", "application/xml", f"{JSON};q=0, {GRJ};q=0", "image/*"]
)
def test_an_accept_allowing_neither_type_is_406_before_anything_runs(gateway, calls, accept):
    response = post(gateway, {"query": QUERY}, accept)
    assert response.status_code == 406
    assert response.headers["content-type"] == JSON
    assert codes(response) == ["NOT_ACCEPTABLE"]
    assert GRJ in response.text and JSON in response.text
    assert calls.requests() == []
    # a GET with a query is no GraphiQL request: a browser-only Accept is refused the same way
    assert get(gateway, {"query": QUERY}, accept).status_code == 406
    assert calls.requests() == []


# --- status codes ----------------------------------------------------------------------------------------------

REQUEST_ERRORS = [
    ("{ cases(perPage: 3) { items { caseId } ", "GRAPHQL_PARSE_FAILED"),
    ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED"),
    ("{ cases(perPage: 3) { items { noSuchField } } }", "GRAPHQL_VALIDATION_FAILED"),
    ("mutation { anything }", "GRAPHQL_VALIDATION_FAILED"),  # the schema has no Mutation type
    ("query($n: Int!) { cases(perPage: $n) { items { caseId } } }", "BAD_USER_INPUT"),  # $n missing
]


@pytest.mark.parametrize(("query", "code"), REQUEST_ERRORS, ids=[c for _, c in REQUEST_ERRORS])
def test_a_request_error_is_400_without_data_in_graphql_response_json(gateway, calls, query, code):
    for accept in (None, GRJ):
        response = post(gateway, {"query": query}, accept)
        assert response.status_code == 400
        assert response.headers["content-type"] == GRJ_TYPE
        body = response.json()
        assert "data" not in body
        assert codes(response) == [code]
        assert all("path" not in error for error in body["errors"])
    assert calls.requests() == []


@pytest.mark.parametrize(("query", "code"), REQUEST_ERRORS, ids=[c for _, c in REQUEST_ERRORS])
def test_a_request_error_is_200_with_null_data_in_application_json(gateway, calls, query, code):
    response = post(gateway, {"query": query}, JSON)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    body = response.json()
    assert "data" in body and body["data"] is None
    assert codes(response) == [code]
    assert calls.requests() == []


def test_a_field_error_is_200_with_partial_data_and_its_path(gateway, faults, upstream, expected):
    legacy = [case["id"] for case in upstream.get("/api/v1/cases", per_page=2).json()]
    for accept in (GRJ, JSON):
        faults.reset()
        faults.fault(status=500, paths=["/api/v2/cases"], times=3)  # each attempt the gateway makes fails
        response = post(gateway, {"query": BOTH}, accept)
        assert response.status_code == 200
        assert response.headers["content-type"] == (GRJ_TYPE if accept == GRJ else JSON)
        body = response.json()
        assert body["data"]["cases"] is None
        assert [item["legacyId"] for item in body["data"]["legacyCases"]["items"]] == legacy
        [error] = body["errors"]
        assert error["path"] == ["cases"]
        assert error["extensions"] == {"code": "UPSTREAM_ERROR", "upstreamStatus": 500}
        v2_statuses = [r["status"] for r in faults.requests() if r["path"] == "/api/v2/cases"]
        assert v2_statuses == [500, 500, 500]  # RETRY_ATTEMPTS=3
        # a success: the session gateway's v2 breaker counts no consecutive failures any more
        assert post(gateway, {"query": QUERY}).json()["data"] == expected
    v2 = gateway.client.get("/healthz").json()["upstreams"]["v2"]["breaker"]
    assert v2["state"] == "closed" and v2["consecutiveFailures"] == 0


MALFORMED = [
    ("{not json", "Unable to parse request body as JSON"),
    ('{"query": "{ cases { pageInfo { count } } }"', "Unable to parse request body as JSON"),
    ("", "The request body is empty"),
    ("42", "must be a JSON object"),
    ("true", "must be a JSON object"),
    ("null", "must be a JSON object"),
    ('"{ cases { pageInfo { count } } }"', "must be a JSON object"),
    ('{"query": 5}', "`query` must be a string"),
    ('{"query": ["{ cases { pageInfo { count } } }"]}', "`query` must be a string"),
    ('{"query": "{ cases { pageInfo { count } } }", "variables": [1]}', "`variables` must be an object"),
    ('{"query": "{ cases { pageInfo { count } } }", "variables": "{}"}', "`variables` must be an object"),
    ('{"query": "{ cases { pageInfo { count } } }", "extensions": "x"}', "`extensions` must be an object"),
    (
        '{"query": "{ cases { pageInfo { count } } }", "operationName": {"a": 1}}',
        "`operationName` must be a string",
    ),
    (
        '{"query": "{ cases { pageInfo { count } } }", "operationName": ["A"]}',
        "`operationName` must be a string",
    ),
    ('{"query": "{ cases { pageInfo { count } } }", "operationName": 1}', "`operationName` must be a string"),
    (
        '{"query": "{ cases { pageInfo { count } } }", "operationName": true}',
        "`operationName` must be a string",
    ),
    ("{}", "No GraphQL query found"),
    ('{"qeury": "{ cases { pageInfo { count } } }"}', "No GraphQL query found"),
    ('[{"query": "{ cases { pageInfo { count } } }"}]', "Batching is not enabled"),
]


@pytest.mark.parametrize("accept", [GRJ, JSON])
@pytest.mark.parametrize(("body", "reason"), MALFORMED, ids=[b or "empty" for b, _ in MALFORMED])
def test_a_malformed_request_is_400_in_json_whatever_the_media_type(gateway, calls, body, reason, accept):
    response = post(gateway, body, accept)
    assert response.status_code == 400
    assert response.headers["content-type"] == (GRJ_TYPE if accept == GRJ else JSON)
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert reason in error["message"]
    assert "data" not in response.json()
    assert calls.requests() == []


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/graphql",
        "text/plain",
        "application/x-www-form-urlencoded",
        f"{JSON}; charset=latin-1",
    ],
)
def test_an_unsupported_content_type_is_415(gateway, calls, content_type):
    headers = {**AUTH} if content_type is None else {**AUTH, "Content-Type": content_type}
    response = gateway.client.post("/graphql", content=json.dumps({"query": QUERY}), headers=headers)
    assert response.status_code == 415
    assert codes(response) == ["UNSUPPORTED_MEDIA_TYPE"]
    assert calls.requests() == []


@pytest.mark.parametrize(
    "content_type",
    ["APPLICATION/JSON", f"{JSON}; charset=utf-8", f"{JSON};charset=UTF-8", "Application/Json ; x=y"],
)
def test_media_types_are_case_insensitive_and_utf_8_is_accepted(gateway, calls, expected, content_type):
    response = gateway.client.post(
        "/graphql", content=json.dumps({"query": QUERY}), headers={**AUTH, "Content-Type": content_type}
    )
    assert response.status_code == 200
    assert response.json()["data"] == expected
    assert len(calls.requests()) == 1


TWO_OPERATIONS = "query First { cases(perPage: 1) { items { caseId } } } query Second { __typename }"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"query": TWO_OPERATIONS}, "`operationName` must name the one to run"),
        ({"query": TWO_OPERATIONS, "operationName": "Third"}, "Unknown operation named 'Third'."),
        (
            {"query": "{ cases(perPage: 1) { items { caseId } } }", "operationName": "Named"},
            "Unknown operation",
        ),
        ({"query": "fragment F on Query { __typename }"}, "must contain one operation"),
    ],
)
def test_a_document_naming_no_single_operation_runs_none(gateway, calls, body, message):
    """The GraphQL spec's GetOperation: several operations and no operationName is a request error (never
    the first of them), as is a name the document does not define."""
    for accept, status in ((GRJ, 400), (JSON, 200)):
        response = post(gateway, body, accept)
        assert response.status_code == status
        [error] = response.json()["errors"]
        assert error["extensions"] == {"code": "OPERATION_RESOLUTION_FAILURE"}
        assert message in error["message"]
    assert calls.requests() == []
    assert post(gateway, {**body, "operationName": "Second"}).json().get("data") in (
        {"__typename": "Query"},
        None,  # a document without a `Second`
    )
    assert calls.requests() == []


# --- GET ------------------------------------------------------------------------------------------------------


def test_a_query_by_get_answers_as_by_post(gateway, calls, expected):
    by_get = get(gateway, {"query": QUERY})
    by_post = post(gateway, {"query": QUERY})
    assert by_get.status_code == by_post.status_code == 200
    assert by_get.headers["content-type"] == by_post.headers["content-type"] == GRJ_TYPE
    assert by_get.json() == by_post.json()
    assert by_get.json()["data"] == expected
    assert [r["path"] for r in calls.requests()] == ["/api/v2/cases"] * 2
    # variables and the operation name travel in the URL too
    named = get(
        gateway,
        {
            "query": "query Other { a: cases { pageInfo { count } } } "
            "query Mine($n: Int!) { cases(perPage: $n) { items { caseId name } pageInfo { count } } }",
            "operationName": "Mine",
            "variables": json.dumps({"n": 3}),
        },
    )
    assert named.status_code == 200 and named.json()["data"] == expected
    # an empty parameter is an absent one
    empty = get(gateway, {"query": QUERY, "variables": "", "operationName": "", "extensions": ""})
    assert empty.status_code == 200 and empty.json()["data"] == expected


def test_a_get_whose_query_is_over_the_limit_is_414(gateway, calls):
    """A URL's query over 32 KiB: 414 (sent by http.client, to say exactly how long)."""
    host, port = gateway.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for size, status in ((32 * 1024, 200), (32 * 1024 + 1, 414)):
            query = urlencode({"query": "{ __typename }"})
            query += "&padding=" + "x" * (size - len(query) - len("&padding="))
            connection.request("GET", f"/graphql?{query}", headers=AUTH)
            response = connection.getresponse()
            body = json.loads(response.read())
            assert response.status == status, body
        assert body["errors"][0]["extensions"]["code"] == "URL_TOO_LONG"
    finally:
        connection.close()
    assert calls.requests() == []


@pytest.mark.parametrize(
    ("params", "kind"),
    [
        ({"query": "mutation { anything }"}, "Mutations"),
        ({"query": "mutation Change { anything }", "operationName": "Change"}, "Mutations"),
        (
            {
                "query": "query Read { cases { pageInfo { count } } } mutation Write { x }",
                "operationName": "Write",
            },
            "Mutations",
        ),
        ({"query": "subscription { anything }"}, "Subscriptions"),
    ],
)
def test_a_mutation_by_get_is_405_allowing_post(gateway, calls, params, kind):
    for accept in (None, JSON):
        response = get(gateway, params, accept)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        [error] = response.json()["errors"]
        assert error["message"].startswith(f"{kind} are not allowed over GET")
        assert error["extensions"] == {"code": "METHOD_NOT_ALLOWED"}
    assert calls.requests() == []


def test_the_query_of_a_mixed_document_still_runs_by_get(gateway, calls, expected):
    response = get(
        gateway,
        {
            "query": "query Read { cases(perPage: 3) { items { caseId name } pageInfo { count } } } "
            "mutation Write { x }",
            "operationName": "Read",
        },
    )
    # the document as a whole does not validate (no Mutation type): a request error, not a 405
    assert response.status_code == 400
    assert codes(response) == ["GRAPHQL_VALIDATION_FAILED"]
    assert calls.requests() == []
    assert get(gateway, {"query": QUERY}).json()["data"] == expected


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(gateway, calls, method):
    response = gateway.client.request(method, "/graphql", json={"query": QUERY}, headers=AUTH)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "POST"}
    assert codes(response) == ["METHOD_NOT_ALLOWED"]
    assert calls.requests() == []


def test_head_is_405_naming_get_and_post(gateway, calls):
    response = gateway.client.head("/graphql", params={"query": QUERY}, headers=AUTH)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == {"GET", "POST"}
    assert calls.requests() == []


def test_graphiql_is_served_to_a_browser_get_without_a_query(gateway, calls):
    response = gateway.client.get("/graphql", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()
    # but never for a persisted query's hash-only GET: that is a GraphQL request
    digest = sha256_hex(unique_query("ide"))
    miss = hash_only_get(gateway, digest, accept="text/html,*/*;q=0.8")
    assert miss.status_code == 404 and miss.headers["content-type"] == GRJ_TYPE
    assert codes(miss) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert calls.requests() == []


# --- automatic persisted queries ------------------------------------------------------------------------------


def apq_counts(gw: Gateway) -> dict[str, Any]:
    return gw.client.get("/healthz").json()["persistedQueries"]


def test_an_unknown_hash_is_not_found_without_an_upstream_call(gateway, calls):
    digest = sha256_hex(unique_query("unknown"))
    before = apq_counts(gateway)
    for response, status in [
        (post(gateway, {"extensions": persisted(digest)}), 404),
        (post(gateway, {"extensions": persisted(digest)}, GRJ), 404),
        (post(gateway, {"extensions": persisted(digest)}, JSON), 200),
        (hash_only_get(gateway, digest), 404),
        (hash_only_get(gateway, digest, JSON), 200),
    ]:
        assert response.status_code == status
        assert response.headers["content-type"] == (GRJ_TYPE if status == 404 else JSON)
        assert response.headers["cache-control"] == "no-store"
        assert response.json() == {
            "errors": [
                {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
            ]
        }
    assert calls.requests() == []
    assert apq_counts(gateway) == {**before, "misses": before["misses"] + 5}


def test_a_hash_sent_with_its_query_registers_it_for_hash_only_requests(gateway, calls, upstream):
    query = unique_query("register")
    digest = sha256_hex(query)
    before = apq_counts(gateway)
    assert post(gateway, {"extensions": persisted(digest)}).status_code == 404  # the client's first try

    first = post(gateway, {"query": query, "extensions": persisted(digest)})
    assert first.status_code == 200
    [items] = first.json()["data"].values()
    listing = [c["case_id"] for c in upstream.get("/api/v2/cases", per_page=2).json()["cases"]]
    assert [c["caseId"] for c in items["items"]] == listing
    calls.reset()

    by_get = hash_only_get(gateway, digest)
    by_post = post(gateway, {"extensions": persisted(digest)})
    assert by_get.status_code == by_post.status_code == 200
    assert by_get.json()["data"] == by_post.json()["data"] == first.json()["data"]
    assert [r["path"] for r in calls.requests()] == ["/api/v2/cases"] * 2  # the cache is off: it runs
    # the upper-case spelling of the same hash names the same query
    assert post(gateway, {"extensions": persisted(digest.upper())}).json()["data"] == first.json()["data"]
    assert apq_counts(gateway) == {
        **before,
        "misses": before["misses"] + 1,
        "hits": before["hits"] + 3,
        "registered": before["registered"] + 1,
    }


@pytest.mark.parametrize("accept", [GRJ, JSON])
def test_a_hash_that_is_not_the_querys_is_400_and_runs_nothing(gateway, calls, accept):
    query = unique_query("mismatch")
    wrong = sha256_hex(query + " ")
    response = post(gateway, {"query": query, "extensions": persisted(wrong)}, accept)
    assert response.status_code == 400
    assert codes(response) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    assert calls.requests() == []
    # and nothing was registered under either hash
    for digest in (wrong, sha256_hex(query)):
        assert codes(post(gateway, {"extensions": persisted(digest)})) == ["PERSISTED_QUERY_NOT_FOUND"]


@pytest.mark.parametrize(
    "extension",
    [
        {"persistedQuery": {"version": 1, "sha256Hash": "abc"}},
        {"persistedQuery": {"version": 1, "sha256Hash": "g" * 64}},
        {"persistedQuery": {"version": 1}},
        {"persistedQuery": {"version": 2, "sha256Hash": "a" * 64}},
        {"persistedQuery": "a" * 64},
    ],
)
def test_a_malformed_persisted_query_extension_is_400(gateway, calls, extension):
    for accept in (GRJ, JSON):
        response = post(gateway, {"extensions": extension}, accept)
        assert response.status_code == 400
        assert codes(response) == ["PERSISTED_QUERY_INVALID"]
    assert calls.requests() == []


@pytest.mark.parametrize(
    "invalid", ["{ noSuchField }", "{ cases(perPage: 2) { items { caseId } ", "mutation { anything }"]
)
def test_an_invalid_query_is_never_registered(gateway, calls, invalid):
    query = f"{invalid} # {uuid.uuid4().hex}"  # a comment: a hash no other test has registered
    digest = sha256_hex(query)
    refused = post(gateway, {"query": query, "extensions": persisted(digest)})
    assert refused.status_code == 400
    assert codes(refused)[0] in ("GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED")
    again = post(gateway, {"extensions": persisted(digest)})
    assert again.status_code == 404 and codes(again) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert calls.requests() == []


def test_a_query_with_field_errors_is_registered(gateway, calls):
    """Registration follows parsing and validation, not the data: a field error does not prevent it."""
    query = "{ %s: case(id: 999999) { caseId } }" % f"gone_{uuid.uuid4().hex[:8]}"
    digest = sha256_hex(query)
    first = post(gateway, {"query": query, "extensions": persisted(digest)})
    assert first.status_code == 200
    assert codes(first) == ["NOT_FOUND"]
    again = hash_only_get(gateway, digest)
    assert again.status_code == 200
    assert again.json()["data"] == first.json()["data"]
    assert codes(again) == ["NOT_FOUND"]


# --- gateways with other settings -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_for_apq(logs_dir: Path) -> Iterator[RedisServer]:
    with running_redis(logs_dir / "redis-graphql-http.log") as server:
        yield server


@pytest.fixture(scope="module")
def gateways(upstream: Upstream, logs_dir: Path, redis_for_apq: RedisServer) -> Iterator[dict[str, Gateway]]:
    """a, b: passthrough, sharing one Redis (persisted queries and the response cache); token: one upstream
    credential for every caller, the response cache on, CORS for one origin, persisted queries off."""
    shared = {"CACHE_URL": redis_for_apq.url, "CACHE_TTL": "60"}
    started = start_gateways_with(
        upstream.url,
        logs_dir,
        {
            "http-a": ([], shared),
            "http-b": ([], shared),
            "http-token": (
                [],
                {
                    "AUTH_MODE": "token",
                    "UPSTREAM_TOKEN": DEMO_TOKEN,
                    "CACHE_TTL": "60",
                    "CORS_ORIGINS": f"{ALLOWED_ORIGIN}, https://admin.example",
                    "PERSISTED_QUERIES": "false",
                },
            ),
        },
    )
    yield {name.removeprefix("http-"): gw for name, gw in started.items()}
    stop_gateways(started.values())


def test_a_query_registered_on_one_gateway_is_run_by_another_through_redis(gateways, calls, redis_for_apq):
    a, b = gateways["a"], gateways["b"]
    query = unique_query("shared", per_page=7)
    digest = sha256_hex(query)
    before_a, before_b = apq_counts(a), apq_counts(b)
    assert codes(hash_only_get(b, digest)) == ["PERSISTED_QUERY_NOT_FOUND"]
    registered = post(a, {"query": query, "extensions": persisted(digest)})
    assert registered.status_code == 200
    assert redis_for_apq.client.get(f"casegraph:apq:{digest}") is not None
    from_b = hash_only_get(b, digest)
    assert from_b.status_code == 200
    assert from_b.json()["data"] == registered.json()["data"]
    assert [r["path"] for r in calls.requests()] == ["/api/v2/cases"]  # b reused a's whole answer too
    assert apq_counts(b) == {**before_b, "misses": before_b["misses"] + 1, "hits": before_b["hits"] + 1}
    assert apq_counts(a) == {**before_a, "registered": before_a["registered"] + 1}


def responses(gw: Gateway) -> dict[str, Any]:
    """The response cache's counters (/healthz)."""
    return gw.client.get("/healthz").json()["responses"]


def max_age(response: httpx.Response) -> int:
    match = re.fullmatch(r"(public|private), max-age=(\d+)", response.headers["cache-control"])
    assert match, response.headers["cache-control"]
    return int(match.group(2))


def vary(response: httpx.Response) -> set[str]:
    return {v.strip() for v in response.headers.get("vary", "").split(",") if v.strip()}


def test_get_answers_from_the_response_cache_are_private_per_caller_in_passthrough(gateways, calls):
    a = gateways["a"]
    query = unique_query("private", per_page=4)  # no other test of this module lists 4
    before = responses(a)
    first = get(a, {"query": query})
    assert first.status_code == 200
    # executed, and reusable: the caller's browser may keep it and revalidate it each time
    assert first.headers["cache-control"] == "private, no-cache"
    assert vary(first) == {"Accept", "Authorization"}
    assert responses(a) == {**before, "misses": before["misses"] + 1, "stored": before["stored"] + 1}

    again = get(a, {"query": query})
    assert responses(a)["hits"] == before["hits"] + 1
    assert again.json()["extensions"]["cacheControl"] == {"fromCache": True}
    assert again.json()["data"] == first.json()["data"]
    assert again.headers["cache-control"] == "private, no-cache"
    assert again.headers["etag"] == first.headers["etag"]  # over data and errors, not extensions
    assert vary(again) == {"Accept", "Authorization"}
    assert len(calls.requests()) == 1

    # a persisted query's hash-only GET: registered by POST (no caching headers), then answered whole
    digest = sha256_hex(query)
    registered = post(a, {"query": query, "extensions": persisted(digest)})
    assert "cache-control" not in registered.headers and "vary" not in registered.headers
    by_hash = hash_only_get(a, digest)
    assert by_hash.status_code == 200 and by_hash.json()["data"] == first.json()["data"]
    assert by_hash.headers["cache-control"] == "private, no-cache"
    assert by_hash.headers["etag"] == first.headers["etag"]
    assert vary(by_hash) == {"Accept", "Authorization"}
    assert len(calls.requests()) == 1

    # POST answers never carry caching headers, from the cache or not
    posted = post(a, {"query": query})
    assert posted.json()["extensions"]["cacheControl"] == {"fromCache": True}
    assert "cache-control" not in posted.headers and "etag" not in posted.headers


def test_get_answers_from_the_response_cache_are_public_with_one_upstream_credential(gateways, calls):
    gw = gateways["token"]
    query = unique_query("public", per_page=6)
    before = responses(gw)
    first = gw.client.get("/graphql", params={"query": query})  # no Authorization: the gateway's token
    assert first.status_code == 200 and first.headers["cache-control"].startswith("public, ")
    again = gw.client.get("/graphql", params={"query": query})
    assert responses(gw) == {
        **before,
        "misses": before["misses"] + 1,
        "stored": before["stored"] + 1,
        "hits": before["hits"] + 1,
    }
    assert again.json()["data"] == first.json()["data"]
    assert again.json()["extensions"]["cacheControl"] == {"fromCache": True}
    assert again.headers["cache-control"].startswith("public, ")
    assert 0 < max_age(again) <= 60
    assert vary(again) == {"Accept", "Origin"}  # Origin: the CORS middleware's, this gateway has CORS on
    assert len(calls.requests()) == 1
    assert calls.requests()[0]["authorized_as"] is not None  # the configured token was used
    # errors are never cacheable by HTTP
    refused = gw.client.get("/graphql", params={"query": "{ noSuchField }"})
    assert refused.status_code == 400 and refused.headers["cache-control"] == "no-store"


def test_persisted_queries_off_answers_not_supported(gateways, calls):
    gw = gateways["token"]
    query = unique_query("off")
    digest = sha256_hex(query)
    body = {
        "errors": [
            {"message": "PersistedQueryNotSupported", "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"}}
        ]
    }
    for request, status in [
        (lambda accept: post(gw, {"extensions": persisted(digest)}, accept), {GRJ: 400, JSON: 200}),
        (
            lambda accept: post(gw, {"query": query, "extensions": persisted(digest)}, accept),
            {GRJ: 400, JSON: 200},
        ),
        (lambda accept: hash_only_get(gw, digest, accept), {GRJ: 400, JSON: 200}),
    ]:
        for accept in (GRJ, JSON):
            response = request(accept)
            assert response.status_code == status[accept]
            assert response.json() == body
    assert calls.requests() == []
    assert apq_counts(gw) == {"enabled": False, "hits": 0, "misses": 0, "registered": 0}
    # the same query without the extension runs as usual
    assert post(gw, {"query": query}).status_code == 200


# --- CORS -----------------------------------------------------------------------------------------------------


def preflight(gw: Gateway, origin: str) -> httpx.Response:
    return gw.client.options(
        "/graphql",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization, x-request-id",
        },
    )


def test_cors_preflight_from_an_allowed_origin_gets_the_allow_headers(gateways, calls):
    gw = gateways["token"]
    for origin in (ALLOWED_ORIGIN, "https://admin.example"):
        response = preflight(gw, origin)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
        methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
        assert methods == {"GET", "POST"}
        allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
        assert {"content-type", "authorization", "x-request-id", "accept"} <= allowed
        assert "Origin" in vary(response)
    answer = post(gw, {"query": QUERY}, Origin=ALLOWED_ORIGIN)
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-request-id" in answer.headers["access-control-expose-headers"].lower()
    assert len(calls.requests()) == 1


def test_cors_refuses_other_origins(gateways, calls):
    gw = gateways["token"]
    for origin in ("https://evil.example", "http://app.example", "https://app.example.evil"):
        response = preflight(gw, origin)
        assert response.status_code == 400
        assert "access-control-allow-origin" not in response.headers
        answer = post(gw, {"query": QUERY}, Origin=origin)
        assert answer.status_code == 200  # the browser, not the server, withholds it from the page
        assert "access-control-allow-origin" not in answer.headers


def test_without_cors_origins_no_cors_headers_are_sent(gateway, calls):
    response = preflight(gateway, ALLOWED_ORIGIN)
    assert response.status_code == 405
    assert not [h for h in response.headers if h.startswith("access-control-")]
    answer = post(gateway, {"query": QUERY}, Origin=ALLOWED_ORIGIN)
    assert answer.status_code == 200
    assert not [h for h in answer.headers if h.startswith("access-control-")]
