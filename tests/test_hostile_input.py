"""Hostile input, over real HTTP against a gateway process on the demo upstream: whatever a client sends, and
whatever shape the upstream answers in, the gateway answers without a 5xx, with the documented code, and a
request it cannot send upstream costs no upstream call and no circuit-breaker count.

Header bytes no HTTP client library would send are written on a raw socket. Wrong-shaped upstream answers
come from the demo upstream's `rewrite` fault rule (gateway/demo/faults.py).
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import AUTH, DEMO_TOKEN, Gateway, Metrics, Upstream, start_gateway, stop

GRJ = "application/graphql-response+json"


@pytest.fixture
def clean(calls: Upstream) -> Iterator[Upstream]:
    with calls.clean() as upstream:
        yield upstream


def raw_post(gw: Gateway, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """A POST written byte for byte on a socket: (status, body)."""
    host, port = gw.url.removeprefix("http://").split(":")
    head = b"POST /graphql HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n" % host.encode()
    head += b"".join(b"%s: %s\r\n" % (name, value) for name, value in headers)
    head += b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def post(gw: Gateway, body: Any, accept: str | None = None) -> Any:
    headers = {**AUTH, **({"Accept": accept} if accept else {})}
    if isinstance(body, bytes | str):
        return gw.client.post(
            "/graphql", content=body, headers={**headers, "Content-Type": "application/json"}
        )
    return gw.client.post("/graphql", json=body, headers=headers)


def codes(answer: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in answer.get("errors", [])]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def breaker(gw: Gateway, api: str = "v2") -> dict[str, Any]:
    return gw.client.get("/healthz").json()["upstreams"][api]


# --- malformed requests ----------------------------------------------------------------------------------------

DEEP_VARIABLES = (
    b'{"query": "query($v: [Int]) { __typename }", "variables": {"v": %s}}' % json.dumps(nested(300)).encode()
)

# What tests/test_graphql_http.py's MALFORMED leaves out (scalars, non-string fields and the like are there)
MALFORMED = {
    "empty array": b"[]",
    "not utf-8": b'{"query": "\xff\xfe"}',
    "nested 2000 deep": b"[" * 2000 + b"]" * 2000,
    "variables 300 deep": DEEP_VARIABLES,
    "query object": b'{"query": {"a": 1}}',
    "extensions list": b'{"query": "{ __typename }", "extensions": [1]}',
    "variables number": b'{"query": "{ __typename }", "variables": 5}',
}


@pytest.mark.parametrize("accept", [GRJ, "application/json"])
@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_body_is_a_coded_400(gateway, calls, body, accept):
    response = post(gateway, body, accept)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(accept)
    assert codes(response.json()) == ["BAD_REQUEST"]
    assert calls.requests() == []


def test_the_300_deep_variable_is_small():
    assert len(DEEP_VARIABLES) < 800  # a 707-byte body was enough to cause a 500


# --- what cannot go upstream ------------------------------------------------------------------------------------

UNSENDABLE = {
    "inner tab": b"Bearer demo\ttoken",
    "byte 0xFF": b"Bearer demo-token\xff",
    "latin-1 letter": b"Bearer caf\xe9",
}


@pytest.mark.parametrize("value", UNSENDABLE.values(), ids=UNSENDABLE.keys())
def test_an_authorization_header_that_cannot_go_upstream_is_400_and_hurts_nobody(gateway, clean, value):
    before = breaker(gateway)
    body = b'{"query": "{ cases(perPage: 1) { items { caseId } } }"}'
    for _ in range(4):  # before, two of these opened the v2 breaker for every caller
        status, content = raw_post(gateway, body, [(b"Authorization", value)])
        assert status == 400, content
        answer = json.loads(content)
        assert codes(answer) == ["BAD_REQUEST"]
        assert "Authorization header cannot be sent upstream" in answer["errors"][0]["message"]
        assert value.decode("latin-1").strip() not in content.decode("latin-1")
    assert clean.requests() == []
    after = breaker(gateway)
    assert after["breaker"]["state"] == "closed" and after["breaker"]["consecutiveFailures"] == 0
    assert (after["attempts"], after["retries"]) == (before["attempts"], before["retries"])
    assert gateway.query("{ cases(perPage: 1) { items { caseId } } }")["data"]["cases"]["items"]


# Whitespace around a header value is not part of it (RFC 9110 5.5): whichever server parses the header (some
# keep a trailing TAB, some strip it), the gateway sends the value without it.
PADDED = {
    "trailing tab": b"Bearer demo-token\t",
    "leading tab": b"\tBearer demo-token",
    "trailing spaces": b"Bearer demo-token  ",
}


@pytest.mark.parametrize("value", PADDED.values(), ids=PADDED.keys())
def test_whitespace_around_an_authorization_header_is_not_part_of_it(gateway, clean, value):
    body = b'{"query": "{ cases(perPage: 1) { items { caseId } } }"}'
    status, content = raw_post(gateway, body, [(b"Authorization", value)])
    assert status == 200, content
    answer = json.loads(content)
    assert "errors" not in answer and len(answer["data"]["cases"]["items"]) == 1
    assert [request["path"] for request in clean.requests()] == ["/api/v2/cases"]


def test_a_header_that_is_not_http_is_refused_by_the_server_before_the_gateway(gateway, clean):
    """A control byte in a header value breaks HTTP itself: uvicorn's parser answers 400 (plain text, the one
    refusal not made by the gateway) and the gateway never sees the request."""
    status, content = raw_post(
        gateway, b'{"query": "{ __typename }"}', [(b"Authorization", b"Bearer a\x01b")]
    )
    assert status == 400 and content == b"Invalid HTTP request received."
    assert clean.requests() == []


def test_no_authorization_header_says_no_credential_was_sent(gateway, clean):
    answer = gateway.query("{ cases(perPage: 1) { items { caseId } } }", headers={})
    assert codes(answer) == ["UNAUTHENTICATED"]
    assert answer["errors"][0]["message"].startswith("No credential was sent")
    refused = gateway.query(
        "{ cases(perPage: 1) { items { caseId } } }", headers={"Authorization": "Bearer nope"}
    )
    assert refused["errors"][0]["message"] == "The v2 upstream refused the credentials."


@pytest.mark.parametrize("value", [DEMO_TOKEN, "Bearer"], ids=["token without its scheme", "scheme alone"])
def test_a_one_word_authorization_header_gets_a_hint_about_the_scheme(gateway, clean, value):
    answer = gateway.query("{ cases(perPage: 1) { items { caseId } } }", headers={"Authorization": value})
    assert codes(answer) == ["UNAUTHENTICATED"]
    assert answer["errors"][0]["message"] == (
        "The v2 upstream refused the credentials. The Authorization header is one word: the upstreams "
        "expect a scheme and a token, `Authorization: Bearer <token>`."
    )
    assert DEMO_TOKEN not in json.dumps(answer)  # the hint never repeats the credential
    assert [request["path"] for request in clean.requests()] == ["/api/v2/cases"]


LONG_INPUT = [
    (
        "15,000 ids",
        "query($ids: [Int!]) { cases(filter: {caseIds: $ids}) { items { caseId } } }",
        {"ids": list(range(1, 15_001))},
    ),
    (
        "a 90 KB search",
        "query($s: String) { cases(filter: {search: $s}) { items { caseId } } }",
        {"s": "x" * 90_000},
    ),
    (
        "a 20 KB v1 reference",
        "query($r: String) { legacyCases(filter: {referenceValue1: $r}) { items { legacyId } } }",
        {"r": "é" * 10_000},
    ),
]


@pytest.mark.parametrize(("query", "variables"), [c[1:] for c in LONG_INPUT], ids=[c[0] for c in LONG_INPUT])
def test_input_too_long_for_an_upstream_url_is_bad_user_input_before_any_call(
    gateway, clean, query, variables
):
    before = breaker(gateway, "v1"), breaker(gateway, "v2")
    response = post(gateway, {"query": query, "variables": variables})
    assert response.status_code == 200
    answer = response.json()
    assert codes(answer) == ["BAD_USER_INPUT"]
    assert "upstream URL for this request would be" in answer["errors"][0]["message"]
    assert clean.requests() == []
    assert (breaker(gateway, "v1"), breaker(gateway, "v2")) == before


@pytest.mark.parametrize("raw", ["Case:2147483648", "Case:99999999999999999999", "LegacyCase:0", "Case:-3"])
def test_a_node_id_out_of_range_is_the_callers_error(gateway, clean, raw):
    node_id = base64.urlsafe_b64encode(raw.encode()).decode()
    answer = gateway.query("query($id: ID!) { node(id: $id) { id } }", {"id": node_id})
    assert answer["data"] == {"node": None}
    assert codes(answer) == ["BAD_USER_INPUT"]
    assert clean.requests() == []


# --- wrong-shaped upstream answers -------------------------------------------------------------------------------

CASE = (
    "caseId name status priority createdAt updatedAt metadata assignees { userId } tags { name } "
    "subStatus { id name } team { id name } sla { status percentElapsed } linkedCases { caseId } "
    "activities { id createdAt user { userId } } activitiesMeta { currentPage nextPage perPage }"
)
QUERY = (
    "{ cases(perPage: 3) { pageInfo { count perPage } items { %s } } legacyCases(perPage: 2) { items { legacyId } } }"
    % CASE
)

# (upstream path rewritten in the 2nd case of the list, value, the error's path below that case). Where the
# field is non-null on `Case` (caseId, status, createdAt), GraphQL nulls the nearest nullable parent: `cases`.
NON_NULL_ON_CASE = {"case_id", "status", "created_at"}
WRONG_SHAPES = [
    ("assignees", "x", ["assignees"]),  # a string for a list
    ("tags", {"name": "t"}, ["tags"]),  # an object for a list
    ("sub_status", "x", ["subStatus"]),  # a string for an object
    ("team", 5, ["team"]),  # a number for an object
    ("sla", "x", ["sla"]),  # a string for an object with a resolver below
    ("case_id", "x", ["caseId"]),  # a string for an id
    ("status", "HALF_OPEN", ["status"]),  # not an enum value
    ("priority", 3, ["priority"]),  # a number for an enum
    ("assignees.0.user_id", None, ["assignees", 0, "userId"]),  # a required id missing
    ("created_at", "not a date", ["createdAt"]),
    ("updated_at", 12345, ["updatedAt"]),
    ("metadata", nested(300), ["metadata"]),  # deeper than any answer can be encoded
    ("linked_cases", "x", ["linkedCases"]),
    ("activities.0.user", "x", ["activities", 0, "user"]),
    ("activities.0.created_at", "yesterday", ["activities", 0, "createdAt"]),
    ("sla.percent_elapsed", "lots", ["sla"]),
]


@pytest.fixture(scope="module")
def normal(gateway: Gateway, upstream: Upstream) -> dict[str, Any]:
    upstream.clear_faults()
    answer = gateway.query(QUERY)
    assert "errors" not in answer or codes(answer) == ["NOT_FOUND"]  # a dangling link is fine
    return answer


@pytest.mark.parametrize(("key", "value", "path"), WRONG_SHAPES, ids=[w[0] for w in WRONG_SHAPES])
def test_a_wrong_shaped_upstream_answer_is_upstream_bad_response_on_its_field(
    gateway, clean, normal, key, value, path
):
    clean.fault(rewrite={f"cases.1.{key}": value}, paths=["/api/v2/cases"], times=1)
    response = post(gateway, {"query": QUERY})
    assert response.status_code == 200
    answer = response.json()
    wrong = [e for e in answer["errors"] if e["extensions"]["code"] != "NOT_FOUND"]
    assert wrong, answer
    assert {e["extensions"]["code"] for e in wrong} == {"UPSTREAM_BAD_RESPONSE"}
    assert all(e["path"][:3] == ["cases", "items", 1] for e in wrong)
    assert path in [e["path"][3 : 3 + len(path)] for e in wrong]
    # the rest intact: the v1 half, the other cases and the page info
    assert answer["data"]["legacyCases"] == normal["data"]["legacyCases"]
    if key in NON_NULL_ON_CASE:
        assert answer["data"]["cases"] is None
    else:
        items, normal_items = answer["data"]["cases"]["items"], normal["data"]["cases"]["items"]
        assert [items[0], items[2]] == [normal_items[0], normal_items[2]]
        assert answer["data"]["cases"]["pageInfo"] == normal["data"]["cases"]["pageInfo"]
    if not isinstance(value, list):
        assert json.dumps(value) not in json.dumps(wrong)  # the upstream's value is not echoed


def test_a_page_meta_that_is_no_number_is_upstream_bad_response_on_the_list(gateway, clean, normal):
    clean.fault(rewrite={"meta.per_page": "abc"}, paths=["/api/v2/cases"], times=1)
    answer = post(gateway, {"query": QUERY}).json()
    assert answer["data"]["cases"] is None
    assert [(e["path"], e["extensions"]["code"]) for e in answer["errors"]] == [
        (["cases"], "UPSTREAM_BAD_RESPONSE")
    ]
    assert answer["data"]["legacyCases"] == normal["data"]["legacyCases"]


def test_no_upstream_url_reaches_an_answer(gateway, clean, normal, upstream):
    """Page URLs are page numbers; the host appears only in `Case.url`, the case's own page in the case
    system (the reference's `url`)."""
    answer = post(gateway, {"query": "{ cases(perPage: 3) { items { url %s } } }" % CASE}).json()
    metas = [item["activitiesMeta"] for item in answer["data"]["cases"]["items"]]
    assert metas and all(meta["currentPage"] == 1 for meta in metas)
    for item in answer["data"]["cases"]["items"]:
        item.pop("url")
    text = json.dumps(answer)
    host = upstream.url.removeprefix("http://")
    assert host not in text and "/api/v" not in text


# --- overload ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def narrow(upstream: Upstream, logs_dir: Path) -> Iterator[Gateway]:
    """A gateway answering one request at once, the next waiting its turn at most 1 s."""
    gw = start_gateway(
        upstream.url,
        logs_dir / "gateway-narrow.log",
        CACHE_TTL="0",
        MAX_CONCURRENT_REQUESTS="1",
        QUEUE_TIMEOUT="1",
    )
    yield gw
    stop(gw.process)


def at_once(gw: Gateway, queries: list[str]) -> list[httpx.Response]:
    """The queries sent together, each on a connection of its own."""

    def one(query: str) -> httpx.Response:
        return httpx.post(f"{gw.url}/graphql", json={"query": query}, headers=AUTH, timeout=30)

    with ThreadPoolExecutor(len(queries)) as pool:
        return list(pool.map(one, queries))


def staggered(gw: Gateway, first: str, second: str) -> tuple[httpx.Response, httpx.Response]:
    """`first` sent, then `second` once `first` is surely being answered."""
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(at_once, gw, [first])
        time.sleep(0.5)
        late = at_once(gw, [second])[0]
        return pending.result()[0], late


def test_beyond_the_limit_a_request_waits_its_turn_then_gets_503_with_retry_after(narrow, clean):
    clean.fault(latency_ms=3000, paths=["/api/v2/cases"], times=1)  # the first request holds the only turn
    slow, shed = "query Slow { cases(perPage: 1) { items { caseId } } }", "query Shed { __typename }"
    first, second = staggered(narrow, slow, shed)
    assert first.status_code == 200 and first.json()["data"]["cases"]["items"]
    assert second.status_code == 503
    assert second.headers["retry-after"] == "1"
    assert codes(second.json()) == ["OVERLOADED"]
    assert narrow.client.get("/healthz").status_code == 200  # the other endpoints are not limited
    assert [r["path"] for r in clean.requests()] == ["/api/v2/cases"]
    m = Metrics.of(narrow)
    assert m.get("casegraph_requests_total", operation="unknown", outcome="shed") == 1
    assert m.get("casegraph_requests_total", operation="Slow", outcome="ok") == 1


def test_a_turn_freed_within_the_queue_timeout_serves_the_waiting_request(narrow, clean):
    clean.fault(latency_ms=100, paths=["/api/v2/cases"], times=2)
    answers = at_once(narrow, ["{ cases(perPage: %d) { items { caseId } } }" % n for n in (1, 2)])
    assert [a.status_code for a in answers] == [200, 200]
    assert [len(a.json()["data"]["cases"]["items"]) for a in answers] == [1, 2]
