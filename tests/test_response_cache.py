"""Whole answers reused while their upstream answers are cached: same bytes, no upstream call, no
execution; never across credentials or variables, never past the first upstream entry's expiry, never
when an upstream call failed; shared between gateway processes through Redis.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import AUTH, Gateway, Upstream, needs_redis, stop_gateways
from tests.test_cache import (  # noqa: F401 - redis_server is a fixture
    AUTH_2,
    NESTED,
    answer_without_extensions,
    redis_server,
    start_gateways,
)


def responses(gw: Gateway) -> dict[str, Any]:
    return gw.client.get("/healthz").json()["responses"]


def upstream_cache(gw: Gateway) -> dict[str, Any]:
    return gw.client.get("/healthz").json()["cache"]


@pytest.fixture(scope="module")
def gateways(upstream: Upstream, logs_dir: Path) -> Iterator[dict[str, Gateway]]:
    envs = {
        "long": {"CACHE_TTL": "60"},
        "short": {"CACHE_TTL": "1"},
        "no_case_cache": {"CACHE_TTL": "60", "CACHE_TTL_CASE": "0"},
    }
    started = start_gateways(upstream, logs_dir, envs)
    yield started
    stop_gateways(started)


def test_a_repeated_query_is_answered_whole_without_execution(gateways, calls):
    gw = gateways["long"]
    cold = gw.query(NESTED)
    cost = len(calls.requests())
    assert cost >= 3 and cold["extensions"] == {"upstream": {"calls": cost, "sharedCalls": 0, "cacheHits": 0}}
    before, lookups = responses(gw), upstream_cache(gw)
    assert before["enabled"] is True and before["stored"] >= 1

    calls.reset()
    warm = gw.query(NESTED)
    assert calls.requests() == []
    assert answer_without_extensions(warm) == answer_without_extensions(cold)
    assert warm["extensions"] == {
        "upstream": {"calls": 0, "sharedCalls": 0, "cacheHits": cost},
        "cacheControl": {"fromCache": True},
    }
    assert responses(gw) == {**before, "hits": before["hits"] + 1}
    assert upstream_cache(gw) == lookups  # not one upstream cache lookup: nothing was executed


def test_a_kept_answer_is_the_same_bytes_with_the_requests_own_extensions(gateways, calls):
    gw = gateways["long"]
    query = "{ kept: cases(perPage: 5, page: 7) { items { caseId name createdAt tags { name } } } }"

    def body() -> bytes:
        return gw.client.post("/graphql", json={"query": query}, headers=AUTH).content

    cold, warm = body(), body()
    assert len(calls.requests()) == 1
    data_cold, _, extensions_cold = cold.partition(b',"extensions":')
    data_warm, _, extensions_warm = warm.partition(b',"extensions":')
    assert data_warm == data_cold and data_cold.startswith(b'{"data":{"kept":')
    assert extensions_cold == b'{"upstream":{"calls":1,"sharedCalls":0,"cacheHits":0}}}'
    assert (
        extensions_warm
        == b'{"upstream":{"calls":0,"sharedCalls":0,"cacheHits":1},"cacheControl":{"fromCache":true}}}'
    )


def test_variables_nested_too_deep_are_refused_before_the_cache_key(gateways, calls):
    """300 levels broke the answer's cache key (orjson stops at 254): a 500 for a 707-byte body."""
    deep: object = 1
    for _ in range(300):
        deep = [deep]
    response = gateways["long"].client.post(
        "/graphql", json={"query": "query($v: [Int]) { __typename }", "variables": {"v": deep}}, headers=AUTH
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert calls.requests() == []


def test_variables_and_credentials_make_separate_answers(gateways, calls):
    gw = gateways["long"]
    query = "query($n: Int!) { cases(perPage: $n) { items { caseId } pageInfo { count } } }"
    three = gw.query(query, {"n": 3})
    four = gw.query(query, {"n": 4})
    theirs = gw.query(query, {"n": 3}, headers=AUTH_2)
    assert len(calls.requests()) == 3
    assert len(three["data"]["cases"]["items"]) == 3 and len(four["data"]["cases"]["items"]) == 4
    assert theirs["data"]["cases"]["pageInfo"]["count"] < three["data"]["cases"]["pageInfo"]["count"]
    assert {r["authorized_as"] for r in calls.requests()} == {"168", "169"}

    calls.reset()
    assert answer_without_extensions(gw.query(query, {"n": 3}, headers=AUTH_2)) == answer_without_extensions(
        theirs
    )
    assert answer_without_extensions(gw.query(query, {"n": 3})) == answer_without_extensions(three)
    assert calls.requests() == []


def test_an_answer_built_on_an_upstream_failure_is_not_kept(gateways, calls):
    gw = gateways["long"]
    for _ in range(2):
        answer = gw.query("{ case(id: 999999) { caseId } }")
        assert answer["data"] == {"case": None}
        assert answer["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert [r["path"] for r in calls.requests()] == ["/api/v2/cases/999999"] * 2


def test_an_answer_using_an_uncached_route_is_not_kept(gateways, calls):
    gw = gateways["no_case_cache"]  # single cases have TTL 0
    for _ in range(2):
        assert gw.query("{ case(id: 5) { caseId name } }")["data"]["case"]["caseId"] == 5
    assert [r["path"] for r in calls.requests()] == ["/api/v2/cases/5"] * 2
    assert responses(gw)["stored"] == 0


def test_a_kept_answer_expires_with_its_first_upstream_entry(gateways, calls):
    gw = gateways["short"]  # everything kept 1 s
    first = gw.query(NESTED)
    cost = len(calls.requests())
    calls.reset()
    assert answer_without_extensions(gw.query(NESTED)) == answer_without_extensions(first)
    assert calls.requests() == []
    time.sleep(1.1)
    again = gw.query(NESTED)
    assert len(calls.requests()) == cost
    assert again["extensions"]["upstream"]["calls"] == cost


@needs_redis
def test_a_kept_answer_is_shared_through_redis(upstream, logs_dir, redis_server, calls):  # noqa: F811
    envs = {name: {"CACHE_URL": redis_server.url, "CACHE_TTL": "60"} for name in ("a", "b")}
    pair = start_gateways(upstream, logs_dir, envs)
    try:
        query = "{ legacyCases(perPage: 5, page: 3) { items { legacyId case { caseId name } } } }"
        first = pair["a"].query(query)
        cost = len(calls.requests())
        assert cost == 2
        assert responses(pair["a"])["stored"] == 1, responses(pair["a"])
        calls.reset()
        second = pair["b"].query(query)
        assert calls.requests() == []
        assert answer_without_extensions(second) == answer_without_extensions(first)
        assert second["extensions"]["cacheControl"] == {"fromCache": True}
        assert responses(pair["b"])["hits"] == 1
        assert upstream_cache(pair["b"])["hits"] == 0  # whole answer: no upstream entry was looked up
    finally:
        stop_gateways(pair)
