"""Credentials stay where they belong: only sent to the configured upstream, never in answers or logs;
ids and filter values can never change the upstream host or path."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import respx

from gateway.http.app import create_app
from gateway.ops.config import load_settings
from gateway.ops.errors import UpstreamBadResponse
from gateway.upstream.credentials import Credential
from gateway.upstream.http import path_segment, scrub
from tests.support import Gateway, Upstream, start_gateway, stop

SECRET = "demo-token-2"  # the configured UPSTREAM_TOKEN of the token-mode gateway below


class Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]]

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization")))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def evil() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    """A server on loopback that records every request it gets: no credential may ever reach it."""
    seen: list[tuple[str, str | None]] = []
    handler = type("EvilRecorder", (Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def token_gateway(upstream: Upstream, logs_dir: Path) -> Iterator[Gateway]:
    """AUTH_MODE=token at debug level: the most a log could say."""
    gw = start_gateway(
        upstream.url,
        logs_dir / "token-gateway.log",
        CACHE_TTL="0",
        AUTH_MODE="token",
        UPSTREAM_TOKEN=SECRET,
        LOG_LEVEL="debug",
        RETRY_BACKOFF="0.01",
    )
    yield gw
    stop(gw.process)


@pytest.fixture
def faulty(upstream: Upstream) -> Iterator[Upstream]:
    with upstream.clean() as clean:
        yield clean


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_never_followed(token_gateway, faulty, evil, status):
    evil_url, seen = evil
    faulty.fault(status=status, headers={"Location": f"{evil_url}/steal"}, paths=["/api/v2/cases/3"], times=1)
    answer = token_gateway.query("{ case(id: 3) { caseId } }", headers={})
    assert answer["data"] == {"case": None}
    assert answer["errors"][0]["extensions"] == {"code": "UPSTREAM_ERROR", "upstreamStatus": status}
    assert seen == []
    assert [r["authorized_as"] for r in faulty.requests()] == [None]  # the fault answered before auth


def test_the_configured_token_is_sent_to_the_configured_upstream(token_gateway, faulty):
    answer = token_gateway.query(
        "{ cases(perPage: 1) { items { caseId } } }", headers={"Authorization": "Bearer x"}
    )
    assert len(answer["data"]["cases"]["items"]) == 1
    [request] = faulty.requests()
    assert request["authorized_as"] is not None and request["status"] == 200


def test_an_upstream_error_echoing_the_token_is_scrubbed(token_gateway, faulty):
    faulty.fault(
        status=400, error=f"token {SECRET} (Bearer {SECRET}) is not allowed", paths=["/api/v2/cases/3"]
    )
    answer = token_gateway.query("{ case(id: 3) { caseId } }", headers={})
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "UPSTREAM_BAD_REQUEST"
    assert SECRET not in str(answer)
    assert "token [redacted] ([redacted]) is not allowed" in error["message"]


def test_the_logs_of_a_full_gateway_run_hold_no_token(token_gateway, faulty, logs_dir):
    """Faults of every kind, at debug level, with an upstream echoing the token: then the log is read."""
    for rule in ({"status": 503}, {"reset": True}, {"malformed": True}, {"status": 401, "error": SECRET}):
        faulty.fault(**rule, paths=["/api/v2/cases"], times=3)
        token_gateway.query("{ cases(perPage: 2) { items { caseId } } }", headers={})
    token_gateway.query(
        "{ cases(perPage: 3) { items { caseId assignees { email } legacyCase { caseNumber } } } }"
    )
    token_gateway.query("{ case(id: 0) { caseId } }")
    log = token_gateway.process.log()
    assert "GET /api/v2/cases" in log and "DEBUG" in log  # the log did record the run
    assert "demo-token" not in log and SECRET not in log


def test_a_test_run_logs_no_token(gateway, logs_dir):
    """Every gateway log written so far (conftest.py checks all of them again at the end of the session)."""
    gateway.query("{ case(id: 1) { caseId } }")
    leaks = [p.name for p in logs_dir.glob("*.log") if "demo-token" in p.read_text(errors="replace")]
    assert leaks == []


# --- ids and filter values cannot change where a request goes --------------------------------------------

HOSTILE = [
    "1/../../x",
    "%2e%2e",
    "..",
    ".",
    "http://evil",
    "//evil/x",
    "1?admin=1",
    "1#x",
    "1 ",
    "-1",
    "0",
    "",
    "1\r\nX: y",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_path_segments_accept_only_positive_ids(value):
    with pytest.raises(UpstreamBadResponse):
        path_segment(value)


def test_path_segments_of_ids():
    assert [path_segment(1), path_segment("42"), path_segment(10**17)] == ["1", "42", str(10**17)]
    with pytest.raises(UpstreamBadResponse):
        path_segment(True)


@pytest.mark.parametrize("raw", ["1/../../x", "%2e%2e", "http://evil", "..", "1/activities"])
def test_hostile_global_ids_make_no_upstream_call(gateway, calls, raw):
    for type_name in ("Case", "LegacyCase"):
        node_id = base64.urlsafe_b64encode(f"{type_name}:{raw}".encode()).decode()
        answer = gateway.query("query($id: ID!) { node(id: $id) { id } }", {"id": node_id})
        assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    answer = gateway.query("query($id: Int!) { case(id: $id) { caseId } }", {"id": raw})
    assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert calls.requests() == []


def test_filter_values_stay_in_the_query_string(gateway, calls):
    hostile = "../../admin?evil=1#x http://evil/ \r\n"
    answer = gateway.query(
        "query($s: String!) { cases(filter: {search: $s, name: $s, tags: [$s]}, perPage: 1) { items { caseId } } "
        "legacyCases(filter: {caseNumber: $s}, perPage: 1) { items { legacyId } } }",
        {"s": hostile},
    )
    assert "errors" not in answer
    requests = {r["path"]: r["params"] for r in calls.requests()}
    assert set(requests) == {"/api/v2/cases", "/api/v1/cases"}
    assert json.loads(requests["/api/v2/cases"]["filters"][0]) == {
        "name": hostile,
        "search": hostile,
        "tags": [hostile],
    }
    assert requests["/api/v1/cases"]["case_number"] == [hostile]


UP = "http://up.test"


@pytest.mark.usefixtures("httpx_upstream_transport")
@respx.mock(assert_all_called=False)
async def test_ids_and_urls_from_upstream_answers_are_never_followed(respx_mock):
    """An upstream answer full of hostile ids and page URLs: the only requests are to the configured base,
    on paths the gateway built; URLs in the answer are never fetched (with the caller's token or at all)."""
    case = {
        "case_id": 1,
        "name": "one",
        "linked_cases": [{"case_id": "../../admin", "name": "x"}, {"case_id": "..", "name": "y"}],
        "metadata": {"trackops_case_id": "1/../../x"},
        "activities_meta": {"next_page_url": "http://evil.test/steal?page=2", "per_page": 1, "pages": 9},
        "activities": [],
    }
    respx_mock.get(f"{UP}/api/v2/cases/1").mock(return_value=httpx.Response(200, json=case))
    cases = respx_mock.get(f"{UP}/api/v2/cases").mock(return_value=httpx.Response(200, json={"cases": []}))
    activities = respx_mock.get(f"{UP}/api/v2/cases/1/activities").mock(
        return_value=httpx.Response(200, json={"activities": [], "meta": {}})
    )
    evil = respx_mock.get(url__regex=r"http://evil\.test/.*").mock(return_value=httpx.Response(200, json={}))
    app = create_app(load_settings(v1_url=UP, v2_url=UP, cache_ttl=0, retry_attempts=1))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            response = await client.post(
                "/graphql",
                json={
                    "query": "{ case(id: 1) { caseId linkedCases { caseId } legacyCase { caseNumber } "
                    "activityPage(page: 2, perPage: 1) { items { id } } } }"
                },
                headers={"Authorization": "Bearer tok-123"},
            )
    finally:
        await app.state.services.aclose()
    answer = response.json()
    assert answer["data"]["case"]["caseId"] == 1
    assert {e["extensions"]["code"] for e in answer["errors"]} <= {"NOT_FOUND", "UPSTREAM_BAD_RESPONSE"}
    assert not evil.called
    hosts_paths = {(call.request.url.host, call.request.url.path) for call in respx_mock.calls}
    assert hosts_paths <= {
        ("up.test", "/api/v2/cases/1"),
        ("up.test", "/api/v2/cases"),
        ("up.test", "/api/v2/cases/1/activities"),
    }
    assert activities.called and all(c.request.url.params["page"] == "2" for c in activities.calls)
    assert all(call.request.headers["authorization"] == "Bearer tok-123" for call in respx_mock.calls)
    assert cases.call_count <= 1


def test_scrub_blanks_the_credential():
    credential = Credential("Bearer s3cret-value")
    assert (
        scrub("no Bearer s3cret-value or s3cret-value here", credential) == "no [redacted] or [redacted] here"
    )
    assert scrub("nothing to hide", Credential(None)) == "nothing to hide"


def test_a_cookie_one_callers_answer_sets_never_goes_out_for_another(faulty, logs_dir):
    """The gateway's pooled HTTP client is shared by every caller: an upstream session cookie (Set-Cookie
    on Alice's answer) must not be kept and sent with Bob's requests, where it could stand for Alice."""
    gw = start_gateway(faulty.url, logs_dir / "cookie-gateway.log", CACHE_TTL="0")
    try:
        faulty.fault(headers={"Set-Cookie": "session=alice-session; Path=/"}, times=1, paths=["/api/v2/*"])
        query = "{ cases(perPage: 1) { items { caseId } } }"
        assert gw.query(query)["data"]["cases"]["items"]  # demo-token: the first demo user
        assert gw.query(query, headers={"Authorization": "Bearer demo-token-2"})["data"]["cases"]["items"]
        assert gw.query(query)["data"]["cases"]["items"]
    finally:
        stop(gw.process)
    [rule] = faulty.faults()
    assert rule["fired"] == 1
    log = [(r["authorized_as"], r["cookie"]) for r in faulty.requests() if r["path"] == "/api/v2/cases"]
    first, second = (user for user, _ in log[:2])
    assert first != second
    assert log == [(first, None), (second, None), (first, None)]
