"""The upstream cache: warm answers cost nothing upstream, entries expire, never cross credentials, are shared
between gateway processes through Redis, and a broken Redis never breaks a query.

Upstream calls are counted by the demo upstream's own request log; the gateways and Redis are real
processes on loopback. Unit tests cover the key, in-flight deduplication and the failure/recovery cycle.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

import gateway.upstream.cache as cache_module
from gateway.http.app import create_app
from gateway.ops.config import load_settings
from gateway.ops.errors import UpstreamError
from gateway.upstream.cache import RETRY_AFTER, UpstreamCache, cache_key, redis_backend
from gateway.upstream.credentials import Caller, Credential
from gateway.upstream.http import UpstreamHTTP, query_string
from tests.support import (
    AUTH,
    DEMO_TOKEN,
    Gateway,
    RedisServer,
    Upstream,
    free_port,
    needs_redis,
    running_redis,
    start_gateways_with,
    stop_gateways,
)

TOKEN_2 = "demo-token-2"  # valid on the demo upstream; sees the first team's cases only
AUTH_2 = {"Authorization": f"Bearer {TOKEN_2}"}

# Nested: one listing, the linked cases not on the page (one case_ids call), the assignees' cases (combined).
NESTED = """{ cases(perPage: 10) { pageInfo { count pages } items { caseId name
  linkedCases { caseId name } assignees { userId cases(first: 2) { caseId name } } } } }"""
LEGACY = "{ legacyCases(perPage: 7, page: 2) { pageInfo { page perPage pages count hasNextPage } items { legacyId caseNumber } } }"


def answer_without_extensions(answer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in answer.items() if key != "extensions"}


def sent(requests: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """What reached the upstream, order aside: path, query string and whose token."""
    return sorted((r["path"], r["query"], r["authorized_as"]) for r in requests)


def health(gw: Gateway) -> dict[str, Any]:
    return gw.client.get("/healthz").json()["cache"]


# --- processes -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(logs_dir: Path) -> Iterator[RedisServer]:
    with running_redis(logs_dir / "redis.log") as server:
        yield server


def start_gateways(upstream: Upstream, logs_dir: Path, envs: dict[str, dict[str, str]]) -> dict[str, Gateway]:
    """Several gateway processes with these settings, started side by side (logs `gateway-<name>.log`)."""
    started = start_gateways_with(
        upstream.url, logs_dir, {f"gateway-{n}": ([], env) for n, env in envs.items()}
    )
    return {name: started[f"gateway-{name}"] for name in envs}


@pytest.fixture(scope="module")
def gateways(upstream: Upstream, logs_dir: Path) -> Iterator[dict[str, Gateway]]:
    """memory: a long TTL; short: lists kept 1 s, single cases 60 s; redis_down: CACHE_URL names a port
    where nothing listens. The response cache is off: these test the upstream cache under it (see
    test_response_cache.py for whole answers)."""
    envs = {
        "memory": {"CACHE_TTL": "60", "RESPONSE_CACHE": "false"},
        "short": {"CACHE_TTL": "1", "CACHE_TTL_CASE": "60", "RESPONSE_CACHE": "false"},
        "redis_down": {"CACHE_URL": f"redis://127.0.0.1:{free_port()}/0", "RESPONSE_CACHE": "false"},
    }
    started = start_gateways(upstream, logs_dir, envs)
    yield started
    stop_gateways(started)


@pytest.fixture(scope="module")
def shared_pair(
    upstream: Upstream, logs_dir: Path, redis_server: RedisServer
) -> Iterator[dict[str, Gateway]]:
    """Two gateway processes sharing one Redis."""
    envs = {
        name: {"CACHE_URL": redis_server.url, "CACHE_TTL": "60", "RESPONSE_CACHE": "false"}
        for name in ("a", "b")
    }
    started = start_gateways(upstream, logs_dir, envs)
    yield started
    stop_gateways(started)


@pytest.fixture
async def no_cache(upstream: Upstream) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway with CACHE_TTL=0, in this process (cheaper than one more process), still calling the demo
    upstream over real HTTP."""
    app = create_app(load_settings(v1_url=upstream.url, v2_url=upstream.url, cache_ttl=0))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=AUTH) as client:
        yield client
    await app.state.services.aclose()


# --- warm cache, TTL, credentials (memory) --------------------------------------------------------------


def test_a_repeated_nested_query_makes_no_upstream_call(gateways, calls):
    gw = gateways["memory"]
    before = health(gw)
    cold = gw.query(NESTED)
    assert cold["data"] is not None
    cold_sent = calls.requests()
    paths = [r["path"] for r in cold_sent]
    assert paths[0] == "/api/v2/cases" and len(paths) >= 3
    assert cold["extensions"] == {"upstream": {"calls": len(cold_sent), "sharedCalls": 0, "cacheHits": 0}}
    assert len(cold["data"]["cases"]["items"]) == 10
    assert health(gw) == {**before, "misses": before["misses"] + len(cold_sent)}

    calls.reset()
    warm = gw.query(NESTED)
    assert calls.requests() == []
    assert answer_without_extensions(warm) == answer_without_extensions(cold)
    assert warm["extensions"] == {
        "upstream": {"calls": 0, "sharedCalls": 0, "cacheHits": len(cold_sent)},
        "cacheControl": {"fromCache": True},
    }
    assert health(gw) == {
        **before,
        "hits": before["hits"] + len(cold_sent),
        "misses": before["misses"] + len(cold_sent),
    }


def test_a_query_partly_from_cache_is_not_marked_from_cache(gateways, calls):
    gw = gateways["memory"]
    gw.query("{ cases(perPage: 4) { items { caseId } } }")
    calls.reset()
    answer = gw.query("{ cases(perPage: 4) { items { caseId } } legacyCase(id: 1003) { legacyId } }")
    assert [r["path"] for r in calls.requests()] == ["/api/v1/cases/1003"]
    assert answer["data"]["legacyCase"] == {"legacyId": 1003}
    assert answer["extensions"] == {"upstream": {"calls": 1, "sharedCalls": 0, "cacheHits": 1}}


def test_v1_page_info_from_cache_equals_the_live_one(gateways, upstream, calls):
    """v1 pagination travels in headers: a cached v1 page must keep them (and read them case-insensitively)."""
    gw = gateways["memory"]
    live = upstream.get("/api/v1/cases", per_page=7, page=2)
    calls.reset()
    cold = gw.query(LEGACY)
    warm = gw.query(LEGACY)
    assert "errors" not in cold
    assert len(calls.requests()) == 1
    assert warm["extensions"]["cacheControl"] == {"fromCache": True}
    assert warm["data"] == cold["data"]
    count = int(live.headers["X-Total-Count"])
    assert count > 14
    assert warm["data"]["legacyCases"]["pageInfo"] == {
        "page": 2,
        "perPage": 7,
        "pages": int(live.headers["X-Total-Pages"]),
        "count": count,
        "hasNextPage": True,
    }
    assert [c["legacyId"] for c in warm["data"]["legacyCases"]["items"]] == [c["id"] for c in live.json()]


def test_entries_expire_after_their_ttl_per_route(gateways, upstream, calls):
    """Lists kept 1 s, single cases 60 s: after a second the lists are fetched again, the case is not."""
    gw = gateways["short"]
    single = upstream.get("/api/v2/cases", per_page=50, page=2).json()["cases"][0]["case_id"]
    query = NESTED.replace("{ cases(", "{ one: case(id: %d) { caseId name } cases(" % single, 1)
    calls.reset()
    cold = gw.query(query)
    cold_sent = sent(calls.requests())
    assert ("/api/v2/cases/%d" % single, "", cold_sent[0][2]) in cold_sent
    assert cold["data"]["one"]["caseId"] == single

    calls.reset()
    assert answer_without_extensions(gw.query(query)) == answer_without_extensions(cold)
    assert calls.requests() == []

    time.sleep(1.1)
    calls.reset()
    again = gw.query(query)
    assert answer_without_extensions(again) == answer_without_extensions(cold)
    assert sent(calls.requests()) == [r for r in cold_sent if r[0] != "/api/v2/cases/%d" % single]
    assert again["extensions"]["upstream"]["cacheHits"] == 1


def test_credentials_get_separate_entries_and_never_each_others_data(gateways, upstream, calls):
    gw = gateways["memory"]
    query = "{ cases(perPage: 40, order: RECENTLY_EDITED) { pageInfo { count } items { caseId name } } }"
    mine = gw.query(query)
    theirs = gw.query(query, headers=AUTH_2)
    requests = calls.requests()
    assert len(requests) == 2
    assert requests[0]["query"] == requests[1]["query"]
    assert requests[0]["authorized_as"] != requests[1]["authorized_as"]
    assert "errors" not in mine and "errors" not in theirs
    assert theirs["data"]["cases"]["pageInfo"]["count"] < mine["data"]["cases"]["pageInfo"]["count"]
    # each answer is exactly what the upstream gives that token for the same request
    for answer, token in ((mine, DEMO_TOKEN), (theirs, TOKEN_2)):
        own = upstream.client.get(
            f"/api/v2/cases?{requests[0]['query']}", headers={"Authorization": f"Bearer {token}"}
        ).json()["cases"]
        assert [c["caseId"] for c in answer["data"]["cases"]["items"]] == [c["case_id"] for c in own]
    assert theirs["data"]["cases"]["items"] != mine["data"]["cases"]["items"]

    calls.reset()
    assert gw.query(query)["data"] == mine["data"]
    assert gw.query(query, headers=AUTH_2)["data"] == theirs["data"]
    assert calls.requests() == []

    # a credential that was never answered gets nothing from the cache: the upstream refuses it
    for headers in ({"Authorization": "Bearer not-a-token"}, {}):
        answer = gw.query(query, headers=headers)
        assert answer["data"] == {"cases": None}  # the field fails, not the answer
        assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert [r["status"] for r in calls.requests()] == [401, 401]


# --- in-flight deduplication ----------------------------------------------------------------------------


async def test_identical_calls_in_one_request_are_sent_once_without_a_cache(no_cache, calls):
    query = "{ a: cases(perPage: 6) { items { caseId } } b: cases(perPage: 6) { items { caseId name } } }"
    for _ in range(2):  # CACHE_TTL=0: the second time costs the same, nothing is kept
        calls.reset()
        answer = (await no_cache.post("/graphql", json={"query": query})).json()
        assert len(calls.requests()) == 1
        assert answer["extensions"] == {"upstream": {"calls": 1, "sharedCalls": 1, "cacheHits": 0}}
        a, b = answer["data"]["a"]["items"], answer["data"]["b"]["items"]
        assert [c["caseId"] for c in a] == [c["caseId"] for c in b] and len(a) == 6
    health = (await no_cache.get("/healthz")).json()
    assert health["cache"] == {"backend": "memory", "hits": 0, "misses": 0, "errors": 0}
    assert health["responses"] == {"enabled": False, "hits": 0, "misses": 0, "stored": 0}


class GatedUpstream:
    """A mock upstream that holds every request until released, so concurrent callers pile up on it."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.seen: list[httpx.Request] = []
        self.release = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        await self.release.wait()
        if self.status != 200:
            return httpx.Response(self.status, json={"error": "down"})
        return httpx.Response(200, json={"cases": [{"case_id": 1}], "who": request.headers["authorization"]})


async def until(condition, what: str) -> None:
    """Let the event loop run until `condition()` holds (no clock involved)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


def gated_http(ttl: float, upstream: GatedUpstream) -> UpstreamHTTP:
    settings_ = load_settings(v2_url="http://up.test", cache_ttl=ttl)
    return UpstreamHTTP(settings_, UpstreamCache(settings_), transport=httpx.MockTransport(upstream))


def list_cases(http: UpstreamHTTP, caller: Caller, **params: Any) -> asyncio.Future[Any]:
    return asyncio.ensure_future(http.get_json("v2", "http://up.test", "/api/v2/cases", params, caller))


@pytest.mark.parametrize("ttl", [0, 30])
async def test_concurrent_identical_calls_across_requests_are_sent_once(ttl):
    upstream = GatedUpstream()
    http = gated_http(ttl, upstream)
    one, two = Credential("Bearer one"), Credential("Bearer two")
    callers = [Caller(one) for _ in range(5)] + [Caller(two) for _ in range(2)]  # 7 GraphQL requests
    tasks = [list_cases(http, c, page=1, per_page=5) for c in callers]
    try:
        await until(
            lambda: sum(c.stats.upstream_calls + c.stats.shared_calls for c in callers) == 7, "all ask"
        )
        await until(lambda: len(upstream.seen) == 2, "both calls sent")
        # the callers that started the calls go away: the others still get their answers
        tasks[0].cancel()
        tasks[5].cancel()
    finally:
        upstream.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    try:
        assert sorted(r.headers["authorization"] for r in upstream.seen) == ["Bearer one", "Bearer two"]
        assert [type(results[0]), type(results[5])] == [asyncio.CancelledError] * 2
        assert [r.data["who"] for r in results[1:5]] == ["Bearer one"] * 4
        assert results[6].data["who"] == "Bearer two"
        started, joined = (1, 0), (0, 1)
        stats = [(c.stats.upstream_calls, c.stats.shared_calls) for c in callers]
        assert stats == [started, joined, joined, joined, joined, started, joined]
        assert http._inflight == {}
        # once settled, the same call (parameters in another order) is in the cache, or with ttl 0 sent again
        later = Caller(one)
        await list_cases(http, later, per_page=5, page=1)
        assert (later.stats.cache_hits, len(upstream.seen)) == ((1, 2) if ttl else (0, 3))
    finally:
        await http.aclose()


async def test_a_failed_shared_call_fails_every_waiter_and_is_neither_kept_nor_stuck():
    upstream = GatedUpstream(status=502)
    http = gated_http(30, upstream)
    credential = Credential("Bearer one")
    tasks = [list_cases(http, Caller(credential), page=1) for _ in range(3)]
    try:
        await until(lambda: len(upstream.seen) == 1, "the call sent")
        await asyncio.sleep(0)
    finally:
        upstream.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    try:
        assert [type(r) for r in results] == [UpstreamError] * 3
        # one logical call, retried (a 502 is retried RETRY_ATTEMPTS=3 times in all) for every waiter at once
        assert (http.calls, http.attempts, len(upstream.seen)) == (1, 3, 3)
        assert http._inflight == {}
        upstream.status = 200
        answer = await list_cases(http, Caller(credential), page=1)
        assert answer.data["cases"] == [{"case_id": 1}]
        assert len(upstream.seen) == 4
        assert http.cache.stats.hits == 0
    finally:
        await http.aclose()


# --- the key --------------------------------------------------------------------------------------------


def test_cache_key_ignores_parameter_order_and_filters_key_order():
    cred = Credential(f"Bearer {DEMO_TOKEN}")
    filters_a = quote(json.dumps({"status": "OPEN", "priority": ["HIGH"]}))
    filters_b = quote(json.dumps({"priority": ["HIGH"], "status": "OPEN"}))
    a = cache_key("v2", "/api/v2/cases", f"page=1&per_page=5&filters={filters_a}", cred)
    b = cache_key("v2", "/api/v2/cases", f"filters={filters_b}&per_page=5&page=1", cred)
    assert a == b
    assert a == cache_key(
        "v2",
        "/api/v2/cases",
        query_string(
            {"per_page": 5, "page": 1, "filters": json.dumps({"priority": ["HIGH"], "status": "OPEN"})}
        ),
        cred,
    )
    assert DEMO_TOKEN not in a and "Bearer" not in a
    assert a.startswith("casegraph:v2:")
    different = [
        cache_key("v2", "/api/v2/cases", f"page=2&per_page=5&filters={filters_a}", cred),
        cache_key(
            "v2", "/api/v2/cases", f"page=1&per_page=5&filters={quote(json.dumps({'status': 'OPEN'}))}", cred
        ),
        cache_key("v1", "/api/v2/cases", f"page=1&per_page=5&filters={filters_a}", cred),
        cache_key("v2", "/api/v2/cases/5", f"page=1&per_page=5&filters={filters_a}", cred),
        cache_key(
            "v2", "/api/v2/cases", f"page=1&per_page=5&filters={filters_a}", Credential("Bearer demo-token-2")
        ),
        cache_key("v2", "/api/v2/cases", f"page=1&per_page=5&filters={filters_a}", Credential(None)),
        cache_key("v2", "/api/v2/cases", f"page=1&per_page=5&filters={filters_a}", cred, "http://other"),
    ]
    assert len({a, *different}) == 1 + len(different)


@settings(max_examples=60, deadline=None)
@given(
    params=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=6),
    order=st.randoms(use_true_random=False),
)
def test_cache_key_is_the_same_for_any_parameter_order(params, order):
    cred = Credential("Bearer x")
    items = list(params.items())
    shuffled = items[:]
    order.shuffle(shuffled)
    assert cache_key("v2", "/p", as_query(items), cred) == cache_key("v2", "/p", as_query(shuffled), cred)


def as_query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


# --- Redis: shared between processes ---------------------------------------------------------------------


SHARED = """{ cases(perPage: 8, order: CREATED_ASC) { items { caseId linkedCases { caseId } } }
  legacyCases(perPage: 5, page: 3) { pageInfo { page pages count } items { legacyId caseNumber } } }"""


@needs_redis
def test_an_answer_of_one_gateway_is_served_by_another_from_redis(shared_pair, redis_server, calls):
    a, b = shared_pair["a"], shared_pair["b"]
    first = a.query(SHARED)
    assert len(first["data"]["cases"]["items"]) == 8 and len(first["data"]["legacyCases"]["items"]) == 5
    assert {e["extensions"]["code"] for e in first.get("errors", [])} <= {"NOT_FOUND"}  # dangling links
    cost = len(calls.requests())
    [me] = {r["authorized_as"] for r in calls.requests()}
    assert cost >= 2 and first["extensions"]["upstream"] == {"calls": cost, "sharedCalls": 0, "cacheHits": 0}

    calls.reset()
    second = b.query(SHARED)
    assert calls.requests() == []
    assert answer_without_extensions(second) == answer_without_extensions(first)
    assert second["extensions"] == {
        "upstream": {"calls": 0, "sharedCalls": 0, "cacheHits": cost},
        "cacheControl": {"fromCache": True},
    }
    assert health(b) == {"backend": "redis", "hits": cost, "misses": 0, "errors": 0}

    # another credential on the other gateway: its own entries, its own answer
    theirs = b.query(SHARED, headers=AUTH_2)
    whose = {r["authorized_as"] for r in calls.requests()}
    assert len(whose) == 1 and me not in whose
    assert theirs["data"]["cases"] != first["data"]["cases"]
    assert theirs["extensions"]["upstream"]["cacheHits"] == 0

    keys = redis_server.client.keys("*")
    assert keys and all(k.startswith(b"casegraph:") for k in keys)
    for key in keys:
        assert DEMO_TOKEN.encode() not in key and TOKEN_2.encode() not in key
        assert DEMO_TOKEN.encode() not in redis_server.client.get(key)


def test_redis_down_at_start_answers_every_query_without_the_cache(gateways, calls):
    down, reference = gateways["redis_down"], gateways["memory"]
    expected = reference.query(NESTED)
    calls.reset()
    first = down.query(NESTED)
    first_sent = sent(calls.requests())
    assert len(first_sent) >= 3
    for answer in (first, down.query(NESTED)):  # nothing cached: the second time costs the same
        assert answer_without_extensions(answer) == answer_without_extensions(expected)
        assert answer["extensions"] == {
            "upstream": {"calls": len(first_sent), "sharedCalls": 0, "cacheHits": 0}
        }
    assert sent(calls.requests()) == sorted(first_sent * 2)
    stats = health(down)
    assert stats["backend"] == "redis" and stats["hits"] == 0 and stats["errors"] >= 1
    log = down.process.log()
    assert "WARNING gateway.cache: cache read failed" in log
    assert DEMO_TOKEN not in log


@needs_redis
def test_redis_killed_mid_run_answers_every_query_without_the_cache(upstream, logs_dir, calls):
    server = RedisServer(logs_dir / "redis-killed.log")
    try:
        started = start_gateways(
            upstream, logs_dir, {"killed": {"CACHE_URL": server.url, "RESPONSE_CACHE": "false"}}
        )
        gw = started["killed"]
        try:
            first = gw.query(NESTED)
            first_sent = sent(calls.requests())
            calls.reset()
            assert answer_without_extensions(gw.query(NESTED)) == answer_without_extensions(first)
            assert calls.requests() == []

            server.kill()
            for _ in range(2):
                calls.reset()
                answer = gw.query(NESTED)
                assert answer_without_extensions(answer) == answer_without_extensions(first)
                assert sent(calls.requests()) == first_sent
            stats = health(gw)
            assert stats["hits"] == len(first_sent) and stats["errors"] >= 1
            log = gw.process.log()
            assert "WARNING gateway.cache: cache read failed" in log
            assert DEMO_TOKEN not in log
        finally:
            stop_gateways(started)
    finally:
        server.stop()


# --- the cache object: Redis round trip, failure and recovery, clear -----------------------------------


@needs_redis
async def test_redis_entries_round_trip_with_case_insensitive_headers(redis_server):
    cache = UpstreamCache(load_settings(cache_url=redis_server.url.replace("/0", "/1")))
    try:
        key = cache_key("v1", "/api/v1/cases", "page=2", Credential("Bearer x"))
        await cache.set(key, [{"id": 1}], httpx.Headers({"X-Total-Count": "9", "Secret": "s"}), 30.0)
        got = await cache.get(key)
        assert got is not None and got.data == [{"id": 1}]
        assert got.headers.get("X-Total-Count") == "9" and "secret" not in got.headers
        with redis.Redis(port=redis_server.port, db=1) as db1:
            assert 29_000 < db1.pttl(key) <= 30_000
        assert cache.report() == {"backend": "redis", "hits": 1, "misses": 0, "errors": 0}
    finally:
        await cache.aclose()


async def test_memory_entries_keep_headers_case_insensitive():
    cache = UpstreamCache(load_settings())
    await cache.set("k", [1], httpx.Headers({"X-Page": "3"}), 30.0)
    got = await cache.get("k")
    assert got is not None and got.headers.get("X-Page") == "3" and got.headers["x-page"] == "3"
    assert await cache.get("other") is None
    assert cache.report() == {"backend": "memory", "hits": 1, "misses": 1, "errors": 0}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:  # wall clock, for entries' expiry times
        return 1_700_000_000.0 + self.now


@needs_redis
async def test_a_failing_redis_is_skipped_then_retried_and_recovers(redis_server, monkeypatch, caplog):
    clock = Clock()
    monkeypatch.setattr(cache_module, "time", clock)
    caplog.set_level("INFO", logger="gateway.cache")
    closed = free_port()
    cache = UpstreamCache(load_settings(cache_url=f"redis://:hunter2@127.0.0.1:{closed}/1"))
    live = redis_backend(redis_server.url.replace("/0", "/1"), 0.25)
    try:
        assert await cache.get("casegraph:k") is None
        await cache.set("casegraph:k", {"a": 1}, {}, 30.0)  # skipped: no second failure, no second warning
        assert await cache.get("casegraph:k") is None
        assert cache.report() == {"backend": "redis", "hits": 0, "misses": 2, "errors": 1}
        [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert re.fullmatch(
            r"cache read failed \((ConnectionError|TimeoutError)\); serving without the cache for 5s", warning
        )
        assert "hunter2" not in caplog.text

        clock.now += RETRY_AFTER  # retried, fails again: logged again
        assert await cache.get("casegraph:k") is None
        assert cache.stats.errors == 2
        assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 2

        old, cache.backend = cache.backend, live  # Redis is back
        await old.client.aclose()
        clock.now += RETRY_AFTER
        await cache.set("casegraph:k", {"a": 1}, {}, 30.0)
        got = await cache.get("casegraph:k")
        assert got is not None and got.data == {"a": 1}
        assert cache.report() == {"backend": "redis", "hits": 1, "misses": 3, "errors": 2}
        assert caplog.records[-1].getMessage() == "cache is working again"
    finally:
        await cache.aclose()


@needs_redis
async def test_clear_removes_only_the_gateways_keys(redis_server):
    url = redis_server.url.replace("/0", "/2")
    cache = UpstreamCache(load_settings(cache_url=url))
    other = redis.Redis(port=redis_server.port, db=2)
    try:
        other.set("someone-else:key", "keep")
        key = cache_key("v2", "/api/v2/cases", "", Credential(None))
        await cache.set(key, {"cases": []}, {}, 30.0)
        assert other.exists(key)
        await cache.clear()
        assert not other.exists(key)
        assert other.get("someone-else:key") == b"keep"
    finally:
        other.delete("someone-else:key")
        other.close()
        await cache.aclose()


def test_a_tls_redis_url_is_accepted():
    cache = UpstreamCache(load_settings(cache_url="rediss://user:p%40ss@cache.example:6380/3"))
    backend = cache.backend
    assert cache.kind == "redis"
    pool = backend.client.connection_pool
    assert pool.connection_class is redis.asyncio.SSLConnection
    assert pool.connection_kwargs["host"] == "cache.example"
    assert pool.connection_kwargs["port"] == 6380
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["username"] == "user"
    assert pool.connection_kwargs["password"] == "p@ss"


def test_a_cache_entry_that_cannot_be_encoded_is_not_a_redis_failure():
    """Encoding is the entry's problem (left uncached, counted as `encode`); only a failed Redis call turns the
    shared cache off for RETRY_AFTER seconds. Nothing listens on the port: the Redis call itself fails."""

    async def scenario() -> list[tuple[int, str]]:
        cache = UpstreamCache(
            load_settings(cache_url=f"redis://127.0.0.1:{free_port()}/0", cache_timeout=0.2)
        )
        seen = []
        await cache.set("k1", "\ud800 cannot be UTF-8", {}, 30)  # a lone surrogate: msgpack refuses it
        seen.append((cache.stats.errors, cache.breaker.state))
        await cache.set("k2", b"an upstream body", {}, 30)  # encodable: the Redis call fails
        seen.append((cache.stats.errors, cache.breaker.state))
        await cache.aclose()
        return seen

    assert asyncio.run(scenario()) == [(1, "closed"), (2, "open")]  # the cache's breaker (skipped while open)
