"""What operations see, over real HTTP against gateway processes: `/metrics` counting exactly what a query
did (checked against the demo upstream's own request log and /healthz's counters), summed over the workers
of `serve --workers 2`; JSON log lines with the request id that is also returned to the client and
forwarded upstream; `/readyz` checking the upstreams and Redis.
"""

from __future__ import annotations

import re
import shutil
import socket
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.http.apq import sha256_hex
from tests.support import (
    AUTH,
    Gateway,
    Metrics,
    RedisServer,
    Upstream,
    free_port,
    running_redis,
    start_gateways_with,
    stop_gateways,
    wait_for,
)

# a listing, its assignees' cases (combined into one more v2 call), a v1 listing: no field errors
NAMED = (
    "query Nested { cases(perPage: 10) { pageInfo { count pages } items { caseId name "
    "assignees { userId cases(first: 2) { caseId name } } } } legacyCases(perPage: 3) { items { legacyId } } }"
)
LISTING = "query Listing { cases(perPage: 10) { pageInfo { count pages } items { caseId name } } }"
# v1 and v2: more than one upstream call, to two APIs
BOTH = "query Both { cases(perPage: 3) { items { caseId } } legacyCases(perPage: 2) { items { legacyId } } }"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
BAD_TOKEN = "wrong-token-for-readyz"


def route_of(path: str) -> str:
    """The route template metrics must label an upstream path with: ids as {id}."""
    return re.sub(r"/[0-9]+(?=/|$)", "/{id}", path)


def api_of(path: str) -> str:
    return path.split("/")[2]  # /api/v2/... -> v2


def upstream_counts(requests: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """What casegraph_upstream_requests_total must say for these requests of the demo upstream's log."""
    return Counter((api_of(r["path"]), route_of(r["path"]), str(r["status"])) for r in requests)


def health(gw: Gateway) -> dict[str, Any]:
    return gw.client.get("/healthz").json()


def post(gw: Gateway, query: str, **headers: str) -> httpx.Response:
    response = gw.client.post("/graphql", json={"query": query}, headers={**AUTH, **headers})
    assert response.headers["content-type"].startswith("application/"), response.text
    return response


@pytest.fixture(scope="module")
def redis_for_readyz(logs_dir: Path) -> Iterator[RedisServer]:
    """A Redis of this module's own: the readiness test stops it."""
    with running_redis(logs_dir / "redis-readyz.log") as server:
        yield server


@pytest.fixture(scope="module")
def multiproc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prometheus-multiproc")


@pytest.fixture(scope="module")
def workers_metrics_port() -> int:
    """Where the workers' gateway serves /metrics (METRICS_PORT)."""
    return free_port()


@pytest.fixture(scope="module")
def gws(
    upstream: Upstream,
    logs_dir: Path,
    redis_for_readyz: RedisServer,
    multiproc_dir: Path,
    workers_metrics_port: int,
) -> Iterator[dict[str, Gateway]]:
    """metered: a fresh process (every counter at zero) with the upstream and response caches on;
    json: JSON logs, CACHE_URL at this module's Redis (for /readyz) but CACHE_TTL=0 (every call goes
    upstream); broken: a token the upstream refuses and a v1 URL where nothing listens; workers: two
    worker processes sharing their metrics, served on a port of their own (METRICS_PORT)."""
    started = start_gateways_with(
        upstream.url,
        logs_dir,
        {
            "obs-metered": ([], {"CACHE_TTL": "60", "LOG_FORMAT": "json", "RETRY_BACKOFF": "0.01"}),
            "obs-json": ([], {"CACHE_URL": redis_for_readyz.url, "CACHE_TTL": "0", "LOG_FORMAT": "json"}),
            "obs-broken": (
                [],
                {
                    "AUTH_MODE": "token",
                    "UPSTREAM_TOKEN": BAD_TOKEN,
                    "V1_URL": f"http://127.0.0.1:{free_port()}",
                    "CACHE_TTL": "0",
                    "RETRY_ATTEMPTS": "1",
                    "BREAKER_FAILURES": "2",
                    "BREAKER_RESET": "600",
                },
            ),
            "obs-workers": (
                ["--workers", "2"],
                {
                    "CACHE_TTL": "0",
                    "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir),
                    "METRICS_PORT": str(workers_metrics_port),
                },
            ),
        },
    )
    yield {name.removeprefix("obs-"): gw for name, gw in started.items()}
    stop_gateways(started.values())


# --- /metrics -------------------------------------------------------------------------------------------------


def test_metrics_count_exactly_what_queries_did(gws, calls):
    gw = gws["metered"]
    fresh = Metrics.of(gw)
    for name in (
        "casegraph_requests_total",
        "casegraph_upstream_requests_total",
        "casegraph_cache_lookups_total",
        "casegraph_upstream_retries_total",
    ):
        assert fresh.series(name) == {}, name
    assert fresh.get("casegraph_requests_in_flight") == 0

    # 1. one named query, every upstream answer fetched (and looked up in the cache first)
    cold = post(gw, NAMED).json()
    assert "errors" not in cold
    sent = calls.requests()
    assert len(sent) >= 3 and {r["status"] for r in sent} == {200}
    assert cold["extensions"] == {"upstream": {"calls": len(sent), "sharedCalls": 0, "cacheHits": 0}}
    m = Metrics.of(gw)
    assert m.labelled("casegraph_requests_total", "operation", "outcome") == {("Nested", "ok"): 1}
    assert m.get("casegraph_request_duration_seconds_count", operation="Nested") == 1
    assert m.get("casegraph_request_duration_seconds_sum", operation="Nested") > 0
    assert m.labelled("casegraph_upstream_requests_total", "api", "route", "status") == upstream_counts(sent)
    assert sum(m.series("casegraph_upstream_request_duration_seconds_count").values()) == len(sent)
    assert m.labelled("casegraph_cache_lookups_total", "cache", "result") == {
        ("upstream", "miss"): len(sent),
        ("response", "miss"): 1,
    }
    report = health(gw)
    assert (report["cache"]["hits"], report["cache"]["misses"]) == (0, len(sent))
    assert (report["responses"]["hits"], report["responses"]["misses"]) == (0, 1)
    assert m.get("casegraph_requests_in_flight") == 0

    # 2. the same query again: the whole answer is reused, nothing looked up upstream or sent
    calls.reset()
    warm = post(gw, NAMED).json()
    assert calls.requests() == []
    assert warm["extensions"]["upstream"] == {"calls": 0, "sharedCalls": 0, "cacheHits": len(sent)}
    m = Metrics.of(gw)
    assert m.labelled("casegraph_requests_total", "operation", "outcome") == {("Nested", "ok"): 2}
    assert m.get("casegraph_request_duration_seconds_count", operation="Nested") == 2
    assert m.labelled("casegraph_upstream_requests_total", "api", "route", "status") == upstream_counts(sent)
    assert m.labelled("casegraph_cache_lookups_total", "cache", "result") == {
        ("upstream", "miss"): len(sent),
        ("response", "miss"): 1,
        ("response", "hit"): 1,
    }

    # 3. another query over the same listing: executed, its one upstream answer from the cache
    listing = post(gw, LISTING).json()
    assert calls.requests() == []
    assert listing["extensions"]["upstream"] == {"calls": 0, "sharedCalls": 0, "cacheHits": 1}
    m = Metrics.of(gw)
    lookups = {
        ("upstream", "miss"): len(sent),
        ("upstream", "hit"): 1,
        ("response", "miss"): 2,
        ("response", "hit"): 1,
    }
    assert m.labelled("casegraph_cache_lookups_total", "cache", "result") == lookups
    report = health(gw)
    assert (report["cache"]["hits"], report["cache"]["misses"]) == (1, len(sent))
    assert (report["responses"]["hits"], report["responses"]["misses"]) == (1, 2)

    # 4. an upstream 503, retried: the 503 and the retry are counted; the breaker stays closed
    calls.clear_faults()
    calls.fault(status=503, paths=["/api/v2/cases"], times=1)
    try:
        retried = post(gw, "query Retried { cases(perPage: 4) { items { caseId } } }").json()
    finally:
        calls.clear_faults()
    assert "errors" not in retried and len(retried["data"]["cases"]["items"]) == 4
    again = calls.requests()
    assert [r["status"] for r in again] == [503, 200]
    m = Metrics.of(gw)
    assert m.labelled("casegraph_upstream_requests_total", "api", "route", "status") == upstream_counts(
        sent + again
    )
    assert m.get("casegraph_upstream_requests_total", api="v2", route="/api/v2/cases", status="503") == 1
    assert m.labelled("casegraph_upstream_retries_total", "api") == {("v2",): 1}
    assert health(gw)["upstreams"]["v2"]["retries"] == 1
    assert m.series("casegraph_upstream_rejected_total") == {}
    for api in ("v1", "v2"):
        states = {
            state: m.get("casegraph_upstream_breaker_state", api=api, state=state)
            for state in ("closed", "open", "half_open")
        }
        assert states == {"closed": 1, "open": 0, "half_open": 0}
    assert m.labelled("casegraph_cache_lookups_total", "cache", "result") == {
        **lookups,
        ("upstream", "miss"): len(sent) + 1,  # one lookup per logical call, however many attempts
        ("response", "miss"): 3,
    }

    # 5. outcomes: refused before execution (named, anonymous, unparsable) and partial
    calls.reset()
    post(gw, "query Refused { noSuchField }")
    post(gw, "{ noSuchField }")
    post(gw, "query Broken {")
    partial = post(
        gw, "query Partly { case(id: 999999) { caseId } cases(perPage: 5) { items { caseId } } }"
    ).json()
    assert [e["extensions"]["code"] for e in partial["errors"]] == ["NOT_FOUND"]
    m = Metrics.of(gw)
    assert m.labelled("casegraph_requests_total", "operation", "outcome") == {
        ("Nested", "ok"): 2,
        ("Listing", "ok"): 1,
        ("Retried", "ok"): 1,
        ("Refused", "rejected"): 1,
        ("anonymous", "rejected"): 1,
        ("invalid", "rejected"): 1,
        ("Partly", "partial"): 1,
    }
    total = sum(m.series("casegraph_request_duration_seconds_count").values())
    assert total == 8
    not_found = [r for r in calls.requests() if r["status"] == 404]
    assert [r["path"] for r in not_found] == ["/api/v2/cases/999999"]
    assert m.get("casegraph_upstream_requests_total", api="v2", route="/api/v2/cases/{id}", status="404") == 1
    # the executed ones by the path that answered them, and why not a faster one
    assert m.labelled("casegraph_execution_total", "path", "fallback") == {
        ("projections", "shared-cases"): 2,  # Nested (its users' cases are v2 cases too), Partly (case(id))
        ("answers", "none"): 2,  # Listing, Retried
    }

    # 6. persisted queries: a miss, the registration, a hit, in the same counters as /healthz's
    digest = sha256_hex(LISTING)
    apq = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    assert gw.client.post("/graphql", json={"extensions": apq}, headers=AUTH).status_code == 404
    assert (
        gw.client.post("/graphql", json={"query": LISTING, "extensions": apq}, headers=AUTH).status_code
        == 200
    )
    assert (
        gw.client.get("/graphql", params={"extensions": orjson.dumps(apq).decode()}, headers=AUTH).status_code
        == 200
    )
    m = Metrics.of(gw)
    assert health(gw)["persistedQueries"] == {"enabled": True, "hits": 1, "misses": 1, "registered": 1}
    assert m.get("casegraph_cache_lookups_total", cache="apq", result="miss") == 1
    assert m.get("casegraph_cache_lookups_total", cache="apq", result="hit") == 1
    assert m.get("casegraph_requests_total", operation="unknown", outcome="rejected") == 1  # the miss
    assert m.get("casegraph_requests_total", operation="Listing", outcome="ok") == 3
    assert m.series("casegraph_cache_errors_total") == {}


def test_an_unreachable_upstream_and_its_open_breaker_in_the_metrics(gws):
    gw = gws["broken"]
    legacy = "query Legacy { legacyCases(perPage: 2) { items { legacyId } } }"
    before = Metrics.of(gw)
    assert before.get("casegraph_upstream_breaker_state", api="v1", state="closed") == 1
    answers = [post(gw, legacy).json() for _ in range(3)]
    assert [a["errors"][0]["extensions"]["code"] for a in answers] == ["UPSTREAM_ERROR"] * 2 + [
        "UPSTREAM_UNAVAILABLE"
    ]
    m = Metrics.of(gw)
    assert m.labelled("casegraph_upstream_requests_total", "api", "route", "status") == {
        ("v1", "/api/v1/cases", "error"): 2  # no status came: the connection was refused
    }
    assert m.labelled("casegraph_upstream_rejected_total", "api") == {("v1",): 1}
    assert m.labelled("casegraph_upstream_breaker_opened_total", "api") == {("v1",): 1}
    assert {
        state: m.get("casegraph_upstream_breaker_state", api="v1", state=state)
        for state in ("closed", "open", "half_open")
    } == {"closed": 0, "open": 1, "half_open": 0}
    assert m.get("casegraph_upstream_breaker_state", api="v2", state="closed") == 1
    assert m.labelled("casegraph_requests_total", "operation", "outcome")[("Legacy", "partial")] == 3
    breaker = health(gw)["upstreams"]["v1"]["breaker"]
    assert (breaker["state"], breaker["timesOpened"], breaker["rejected"]) == ("open", 1, 1)


def counter_pids(directory: Path) -> set[str]:
    """The worker processes that have counted something: prometheus-client's multiprocess mode keeps
    each process's counters in `counter_<pid>.db`."""
    return {path.stem.removeprefix("counter_") for path in directory.glob("counter_*.db")}


def test_metrics_are_summed_over_the_workers(gws, calls, multiproc_dir, workers_metrics_port):
    gw = gws["workers"]
    query = "query Multi($page: Int!) { cases(perPage: 2, page: $page) { items { caseId } } }"

    def one(page: int) -> int:
        # a connection of its own each time: either worker may accept it; a page of its own each time:
        # identical calls in flight together would be sent upstream once
        body = {"query": query, "variables": {"page": page}}
        return httpx.post(f"{gw.url}/graphql", json=body, headers=AUTH, timeout=30).status_code

    sent = 0
    with ThreadPoolExecutor(4) as pool:
        while len(counter_pids(multiproc_dir)) < 2 and sent < 80:
            assert list(pool.map(one, range(sent + 1, sent + 5))) == [200] * 4
            sent += 4
    assert len(counter_pids(multiproc_dir)) == 2, "every request went to one worker"
    assert len(calls.requests()) == sent
    # /metrics on METRICS_PORT only, served by the supervisor: the sum over the workers
    assert httpx.get(f"{gw.url}/metrics", timeout=10).status_code == 404
    for _ in range(2):
        m = Metrics(httpx.get(f"http://127.0.0.1:{workers_metrics_port}/metrics", timeout=10).text)
        assert m.labelled("casegraph_requests_total", "operation", "outcome") == {("Multi", "ok"): sent}
        assert m.get("casegraph_request_duration_seconds_count", operation="Multi") == sent
        assert m.labelled("casegraph_upstream_requests_total", "api", "route", "status") == {
            ("v2", "/api/v2/cases", "200"): sent
        }
        assert m.get("casegraph_requests_in_flight") == 0
        for state, value in (("closed", 1), ("open", 0), ("half_open", 0)):
            assert m.get("casegraph_upstream_breaker_state", api="v2", state=state) == value


def test_serve_starts_from_zero_in_a_metrics_directory_left_by_an_earlier_run(
    gws, upstream, logs_dir, tmp_path, multiproc_dir
):
    """PROMETHEUS_MULTIPROC_DIR given to one process (a container restarted with the same volume, say):
    the files an earlier run left there must not add up with the new process's counts."""
    assert post(gws["workers"], "query Multi { cases(perPage: 1) { items { caseId } } }").status_code == 200
    stale = tmp_path / "left-behind"
    shutil.copytree(multiproc_dir, stale)  # the workers' files, with their counts
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(stale))
    left = Metrics(generate_latest(registry).decode())
    assert left.get("casegraph_requests_total", operation="Multi", outcome="ok") >= 1  # they would count

    [gw] = start_gateways_with(
        upstream.url,
        logs_dir,
        {"obs-restarted": ([], {"CACHE_TTL": "0", "PROMETHEUS_MULTIPROC_DIR": str(stale)})},
    ).values()
    try:
        assert Metrics.of(gw).series("casegraph_requests_total") == {}
        assert post(gw, "query Single { cases(perPage: 1) { items { caseId } } }").status_code == 200
        m = Metrics.of(gw)
        assert m.labelled("casegraph_requests_total", "operation", "outcome") == {("Single", "ok"): 1}
        assert m.get("casegraph_requests_in_flight") == 0
    finally:
        stop_gateways([gw])


# --- logs and the request id ---------------------------------------------------------------------------------


def log_entries(gw: Gateway) -> list[dict[str, Any]]:
    """Every line the process wrote, each of which must be one JSON object (LOG_FORMAT=json)."""
    lines = [line for line in gw.process.log().splitlines() if line.strip()]
    entries = []
    for line in lines:
        entry = orjson.loads(line)
        assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= set(entry), line
        entries.append(entry)
    return entries


def summary_of(gw: Gateway, rid: str) -> dict[str, Any]:
    """The request summary line of request `rid` (written once the answer has gone: waited for)."""

    def find() -> list[dict[str, Any]]:
        return [
            e for e in log_entries(gw) if e["logger"] == "gateway.requests" and e.get("request_id") == rid
        ]

    [line] = wait_for(find, f"the summary line of request {rid}")
    return line


def test_a_summary_line_per_request_in_json_with_the_clients_request_id(gws, calls):
    gw = gws["json"]
    response = post(gw, BOTH, **{"X-Request-ID": "abc-123"})
    assert response.status_code == 200 and "errors" not in response.json()
    assert response.headers["x-request-id"] == "abc-123"
    sent = calls.requests()
    assert {r["path"] for r in sent} == {"/api/v2/cases", "/api/v1/cases"}
    assert [r["request_id"] for r in sent] == ["abc-123"] * len(sent)

    line = summary_of(gw, "abc-123")
    assert isinstance(line.pop("duration_ms"), float)
    assert line.pop("time").endswith("+00:00")
    assert line.pop("message").startswith("POST /graphql 200 Both ok ")
    assert line == {
        "level": "info",
        "logger": "gateway.requests",
        "request_id": "abc-123",
        "method": "POST",
        "path": "/graphql",
        "status": 200,
        "operation": "Both",
        "outcome": "ok",
        "upstream_calls": len(sent),
        "shared_calls": 0,
        "cache_hits": 0,
        "response_cache": None,
        "persisted_query": None,
        "parts": 0,
        "document_id": None,  # not a trusted document (tests/test_trusted_documents.py has those)
        "document_name": None,
        "trusted": False,
    }
    # the other lines the request caused carry its id too
    others = [
        e for e in log_entries(gw) if e.get("request_id") == "abc-123" and e["logger"] != "gateway.requests"
    ]
    assert all(e["level"] in ("debug", "info") for e in others)
    # one line per request, not one per upstream call: httpx's own request lines stay out at info
    assert [e for e in log_entries(gw) if e["logger"].startswith("httpx")] == []


def test_a_refused_request_is_summed_up_too(gws, calls):
    gw = gws["json"]
    response = post(gw, "query Refused { noSuchField }", **{"X-Request-ID": "refused-1"})
    assert response.status_code == 400
    line = summary_of(gw, "refused-1")
    assert (line["status"], line["operation"], line["outcome"], line["upstream_calls"]) == (
        400,
        "Refused",
        "rejected",
        0,
    )
    assert calls.requests() == []


def test_the_summary_line_says_what_became_of_a_persisted_query(gws, calls):
    gw = gws["json"]
    query = "query Kept { cases(perPage: 2) { items { caseId } } }"
    apq = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(query)}}
    for rid, body in [
        ("apq-miss", {"extensions": apq}),
        ("apq-sent", {"query": query, "extensions": apq}),
        ("apq-hit", {"extensions": apq}),
    ]:
        gw.client.post("/graphql", json=body, headers={**AUTH, "X-Request-ID": rid})
    lines = {rid: summary_of(gw, rid) for rid in ("apq-miss", "apq-sent", "apq-hit")}
    assert {
        rid: (e["status"], e["operation"], e["outcome"], e["persisted_query"], e["upstream_calls"])
        for rid, e in lines.items()
    } == {
        "apq-miss": (404, None, "rejected", "miss", 0),
        "apq-sent": (200, "Kept", "ok", "registered", 1),
        "apq-hit": (200, "Kept", "ok", "hit", 1),
    }
    assert [r["request_id"] for r in calls.requests()] == ["apq-sent", "apq-hit"]


def test_without_a_request_id_one_is_made_and_sent_upstream_with_every_call(gws, calls):
    gw = gws["json"]
    response = post(gw, BOTH)
    rid = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(rid)
    sent = calls.requests()
    assert len(sent) == 2 and {r["request_id"] for r in sent} == {rid}
    assert summary_of(gw, rid)["upstream_calls"] == 2
    other = post(gw, BOTH).headers["x-request-id"]
    assert GENERATED_ID.fullmatch(other) and other != rid


HOSTILE = {
    "spaces": "has some spaces",
    "long": "x" * 500,
    "129": "a" * 129,  # one past the longest accepted
    "tab": "a\tb",
    "quote": 'a"b',
    "braces": "{evil}",
    "latin1": "caf\xe9",
    "empty": "",
}


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_request_id_is_replaced(gws, calls, value):
    gw = gws["json"]
    response = gw.client.post(
        "/graphql",
        json={"query": BOTH},
        headers=[("Authorization", AUTH["Authorization"]), ("X-Request-ID", value.encode("latin-1"))],
    )
    assert response.status_code == 200
    rid = response.headers["x-request-id"]
    assert rid != value and GENERATED_ID.fullmatch(rid)
    assert {r["request_id"] for r in calls.requests()} == {rid}
    assert summary_of(gw, rid)["operation"] == "Both"
    if len(value) > 3:
        assert value not in gw.process.log()


def test_a_request_id_spread_over_two_header_lines_is_refused_before_the_gateway(gws, calls):
    """A newline cannot be sent inside a header value: an obsolete line folding is a 400 from the server."""
    host, port = gws["json"].url.removeprefix("http://").split(":")
    request = (
        "GET /graphql?query=%7B__typename%7D HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "X-Request-ID: first\r\n"
        " injected: line\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 400"), answer[:200]
    assert "injected" not in gws["json"].process.log()


def test_no_token_sent_by_a_caller_is_ever_logged(gws, calls):
    gw = gws["json"]
    token = f"secret-{uuid.uuid4().hex}"
    refused = post(gw, BOTH, Authorization=f"Bearer {token}", **{"X-Request-ID": "token-check"})
    codes = {e["extensions"]["code"] for e in refused.json()["errors"]}
    assert codes == {"UNAUTHENTICATED"}
    assert len(calls.requests()) == 2
    summary_of(gw, "token-check")  # the request has been logged in full
    assert token not in gw.process.log()
    # nor the token the gateway itself sends (AUTH_MODE=token), which its /readyz uses too
    broken = gws["broken"]
    broken.client.get("/readyz")
    broken.client.post("/graphql", json={"query": "{ cases(perPage: 1) { items { caseId } } }"})  # v2 only
    assert BAD_TOKEN not in broken.process.log()


# --- /readyz --------------------------------------------------------------------------------------------------


def test_readyz_checks_both_upstreams(gateway, upstream):
    without_token = httpx.get(f"{upstream.url}/api/v2/cases", params={"per_page": 1}).status_code
    upstream.reset()
    response = gateway.client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert (body["ready"], body["failed"]) == (True, [])
    assert set(body["checks"]) == {"v1", "v2"}  # no Redis: the cache is in memory
    for check in body["checks"].values():
        assert check.pop("ms") >= 0
        # passthrough: the gateway holds no credential, so any answer below 500 proves the upstream serving
        assert check == {"ok": True, "status": without_token}
    seen = sorted((r["path"], r["query"], r["authorized_as"]) for r in upstream.requests())
    assert seen == [("/api/v1/cases", "per_page=1", None), ("/api/v2/cases", "per_page=1", None)]


def test_readyz_calls_are_not_upstream_traffic_in_the_metrics(gws, calls):
    gw = gws["json"]
    before = Metrics.of(gw).series("casegraph_upstream_requests_total")
    gw.client.get("/readyz")
    assert len(calls.requests()) in (0, 2)  # 0: a result of the last second reused
    assert Metrics.of(gw).series("casegraph_upstream_requests_total") == before


def test_readyz_names_each_failed_check(gws):
    response = gws["broken"].client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert (body["ready"], body["failed"]) == (False, ["v2", "v1"])
    v2 = body["checks"]["v2"]
    assert v2.pop("ms") >= 0
    assert v2 == {"ok": False, "status": 401, "error": "the configured token was refused"}
    assert body["checks"]["v1"] == {"ok": False, "error": "ConnectError"}
    assert gws["broken"].client.get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_checks_redis_and_fails_once_it_is_gone(gws, redis_for_readyz):
    """Last in this module: it stops the Redis of the `json` gateway (whose CACHE_TTL=0 never uses it)."""
    gw = gws["json"]
    ready = gw.client.get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert set(checks) == {"v1", "v2", "redis"}
    assert all(check["ok"] for check in checks.values())
    assert checks["redis"]["ms"] >= 0

    redis_for_readyz.stop()

    def not_ready() -> httpx.Response | None:
        response = gw.client.get("/readyz")  # a result is reused for a second: asked until it changes
        return response if response.status_code == 503 else None

    body = wait_for(not_ready, "/readyz to see Redis gone").json()
    assert (body["ready"], body["failed"]) == (False, ["redis"])
    assert body["checks"]["redis"]["ok"] is False and body["checks"]["redis"]["error"]
    assert body["checks"]["v1"]["ok"] and body["checks"]["v2"]["ok"]
    assert gw.client.get("/healthz").status_code == 200  # Redis gone is not ill health

    # the first failed Redis operation is counted (then Redis is left alone for a while): a persisted
    # query lookup, which with Redis gone is a miss
    before, errors = Metrics.of(gw), health(gw)["cache"]["errors"]
    apq = {"persistedQuery": {"version": 1, "sha256Hash": sha256_hex(BOTH)}}
    response = gw.client.post("/graphql", json={"extensions": apq}, headers=AUTH)
    assert response.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    after = Metrics.of(gw)
    assert health(gw)["cache"]["errors"] == errors + 1
    assert (
        after.get("casegraph_cache_errors_total", action="read")
        == before.get("casegraph_cache_errors_total", action="read") + 1
    )
    assert (
        after.get("casegraph_cache_lookups_total", cache="apq", result="miss")
        == before.get("casegraph_cache_lookups_total", cache="apq", result="miss") + 1
    )
