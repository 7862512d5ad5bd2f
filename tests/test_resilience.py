"""Upstream faults over real HTTP: each fault kind gives its code with the rest of the answer intact,
timeouts fire within their limit, retries happen (counted in the demo upstream's log) and stop at the
budget, and the circuit breaker opens, fails fast and closes after a probe.

The demo upstream here is this module's own process, so its injected faults never reach other tests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.http.app import create_app
from gateway.ops.config import load_settings
from gateway.upstream.http import retry_after_seconds
from gateway.upstream.resilience import BreakerState, CircuitBreaker, RetryBudget
from tests.support import Gateway, Upstream, start_gateway, start_upstream, stop, wait_for

READ_TIMEOUT = 0.5
# Fast backoff, and the budget and the breaker out of the way unless a test is about them.
FAST = {
    "CACHE_TTL": "0",
    "READ_TIMEOUT": str(READ_TIMEOUT),
    "ATTEMPT_TIMEOUT": "3",
    "RETRY_BACKOFF": "0.01",
    "RETRY_BACKOFF_MAX": "0.05",
    "RETRY_AFTER_MAX": "1",
    "MAX_UPSTREAM_BODY_BYTES": "1000000",
    "BREAKER_FAILURES": "1000",
    "RETRY_BUDGET_MIN": "1000",
}
BOTH = "{ cases(perPage: 2) { items { caseId } } legacyCases(perPage: 2) { items { legacyId } } }"
V2_LIST = ["/api/v2/cases"]


@pytest.fixture(scope="module")
def faulty(logs_dir: Path) -> Iterator[Upstream]:
    upstream = start_upstream(logs_dir / "faulty-upstream.log")
    yield upstream
    stop(upstream.process)


@pytest.fixture
def up(faulty: Upstream) -> Iterator[Upstream]:
    """The faulty upstream with no faults and an empty log; faults are cleared after the test too."""
    with faulty.clean() as clean:
        yield clean


@contextmanager
def gateway_on(upstream: Upstream, logs_dir: Path, name: str, **env: str) -> Iterator[Gateway]:
    gw = start_gateway(upstream.url, logs_dir / f"{name}.log", **{**FAST, **env})
    process = gw.process
    try:
        yield gw
    finally:
        stop(process)


@pytest.fixture(scope="module")
def gw(faulty: Upstream, logs_dir: Path) -> Iterator[Gateway]:
    with gateway_on(faulty, logs_dir, "resilience-gateway") as gateway:
        yield gateway


def sent(upstream: Upstream, path: str) -> list[dict[str, Any]]:
    return [r for r in upstream.requests() if r["path"] == path]


def v2_report(gateway: Gateway) -> dict[str, Any]:
    return gateway.client.get("/healthz").json()["upstreams"]["v2"]


# --- each fault kind ---------------------------------------------------------------------------------------

EVIL = "http://127.0.0.1:9/steal"
FAULTS = [
    # (rule, code, other extensions, attempts the gateway makes)
    ({"status": 503}, "UPSTREAM_ERROR", {"upstreamStatus": 503}, 3),
    ({"status": 500}, "UPSTREAM_ERROR", {"upstreamStatus": 500}, 3),
    ({"status": 502}, "UPSTREAM_ERROR", {"upstreamStatus": 502}, 3),
    ({"reset": True}, "UPSTREAM_ERROR", {}, 3),
    ({"rate_limit": {"retry_after": 30}}, "UPSTREAM_RATE_LIMITED", {"retryAfter": "30"}, 1),
    ({"malformed": True}, "UPSTREAM_BAD_RESPONSE", {}, 1),
    ({"truncated": True}, "UPSTREAM_BAD_RESPONSE", {}, 1),
    ({"huge_body": True}, "UPSTREAM_BAD_RESPONSE", {}, 1),
    ({"status": 302, "headers": {"Location": EVIL}}, "UPSTREAM_ERROR", {"upstreamStatus": 302}, 1),
]


@pytest.mark.parametrize(("rule", "code", "extra", "attempts"), FAULTS, ids=[str(f[0]) for f in FAULTS])
def test_each_fault_is_a_coded_field_error_with_the_rest_intact(gw, up, rule, code, extra, attempts):
    up.fault(**rule, paths=V2_LIST)
    started = time.monotonic()
    answer = gw.query(BOTH)
    assert time.monotonic() - started < READ_TIMEOUT + 1  # nothing hangs (a huge body is cut short)
    assert answer["data"]["cases"] is None
    assert [item["legacyId"] for item in answer["data"]["legacyCases"]["items"]] == [1001, 1002]
    [error] = answer["errors"]
    assert error["path"] == ["cases"]
    assert error["extensions"] == {"code": code, **extra}
    assert "demo-token" not in str(answer) and "injected" not in error["message"]
    assert [r.get("fault") for r in sent(up, "/api/v2/cases")] == [next(iter(rule))] * attempts


def test_a_slow_upstream_times_out_within_the_read_timeout(gw, up):
    up.fault(latency_ms=1200, paths=V2_LIST)
    started = time.monotonic()
    answer = gw.query(BOTH)
    assert time.monotonic() - started < READ_TIMEOUT + 1
    assert answer["data"]["cases"] is None and len(answer["data"]["legacyCases"]["items"]) == 2
    assert [e["extensions"] for e in answer["errors"]] == [{"code": "UPSTREAM_TIMEOUT"}]
    # a read timeout is not retried: the upstream sees one request (logged when its delay is over)
    wait_for(lambda: sent(up, "/api/v2/cases"), "the delayed request to be logged", limit=5.0)
    assert up.client.get("/_demo/faults").json()["rules"][0]["fired"] == 1


# --- retries -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", [{"status": 503}, {"reset": True}, {"status": 504}])
def test_transient_failures_are_retried_as_one_logical_call(gw, up, rule):
    up.fault(**rule, paths=V2_LIST, times=2)
    answer = gw.query("{ cases(perPage: 2) { items { caseId } } }")
    assert "errors" not in answer
    assert len(answer["data"]["cases"]["items"]) == 2
    assert answer["extensions"]["upstream"]["calls"] == 1  # one logical call...
    assert [r["status"] for r in sent(up, "/api/v2/cases")][-1] == 200
    assert len(sent(up, "/api/v2/cases")) == 3  # ...made in three attempts


def test_a_short_retry_after_is_waited_out_and_retried(gw, up):
    up.fault(rate_limit={"retry_after": 0.3}, paths=V2_LIST, times=1)
    started = time.monotonic()
    answer = gw.query("{ cases(perPage: 2) { items { caseId } } }")
    assert time.monotonic() - started >= 0.25  # Retry-After honoured (the backoff alone is under 0.05 s)
    assert "errors" not in answer
    assert [r["status"] for r in sent(up, "/api/v2/cases")] == [429, 200]


def test_callers_joining_a_retried_call_share_its_attempts(gw, up):
    up.fault(
        status=503, paths=V2_LIST, times=2, latency_ms=300
    )  # both arrive during the first attempt (< READ_TIMEOUT)
    query = "{ cases(perPage: 3) { items { caseId } } }"
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: gw.query(query), range(2)))
    assert all("errors" not in a for a in answers)
    reports = sorted(
        (a["extensions"]["upstream"]["calls"], a["extensions"]["upstream"]["sharedCalls"]) for a in answers
    )
    assert reports == [(0, 1), (1, 0)]
    wait_for(lambda: len(sent(up, "/api/v2/cases")) == 3, "three attempts logged", limit=5.0)
    assert [r["status"] for r in sent(up, "/api/v2/cases")] == [503, 503, 200]


def test_retries_stop_at_the_budget(up, logs_dir):
    up.fault(status=503, paths=["/api/v2/cases/*"])
    with gateway_on(
        up, logs_dir, "budget-gateway", RETRY_BUDGET_PERCENT="0", RETRY_BUDGET_MIN="2"
    ) as gateway:
        for case_id in (1, 2, 3, 4):
            answer = gateway.query("{ case(id: %d) { caseId } }" % case_id)
            assert answer["errors"][0]["extensions"]["code"] == "UPSTREAM_ERROR"
        # 2 retries in the budget: the first lookup makes 3 attempts, the others 1 each
        assert [r["path"] for r in up.requests()] == ["/api/v2/cases/1"] * 3 + [
            "/api/v2/cases/2",
            "/api/v2/cases/3",
            "/api/v2/cases/4",
        ]
        report = v2_report(gateway)
        assert (report["requests"], report["attempts"], report["retries"], report["retriesDenied"]) == (
            4,
            6,
            2,
            3,
        )


# --- the circuit breaker -----------------------------------------------------------------------------------


def test_the_breaker_opens_fails_fast_and_closes_after_a_probe(up, logs_dir):
    env = {"BREAKER_FAILURES": "3", "BREAKER_RESET": "0.5", "RETRY_ATTEMPTS": "1"}
    query = "{ case(id: %d) { caseId } legacyCase(id: 1001) { legacyId } }"
    up.fault(status=503, paths=["/api/v2/*"])
    with gateway_on(up, logs_dir, "breaker-gateway", **env) as gateway:
        for case_id in (1, 2, 3):
            answer = gateway.query(query % case_id)
            assert answer["errors"][0]["extensions"]["code"] == "UPSTREAM_ERROR"
        assert v2_report(gateway)["breaker"]["state"] == "open"
        assert len(sent(up, "/api/v1/cases/1001")) == 3

        # open: v2 fails fast without a request; v1 has its own breaker and still answers
        up.reset()
        answer = gateway.query(query % 4)
        assert answer["data"] == {"case": None, "legacyCase": {"legacyId": 1001}}
        [error] = answer["errors"]
        assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
        assert 0 < error["extensions"]["retryAfter"] <= 0.5
        assert [r["path"] for r in up.requests()] == ["/api/v1/cases/1001"]

        # half-open: one probe goes through; it fails, so the breaker opens again
        wait_for(lambda: v2_report(gateway)["breaker"]["state"] == "half_open", "the cool-down", limit=5.0)
        up.reset()
        answer = gateway.query(query % 5)
        assert answer["errors"][0]["extensions"]["code"] == "UPSTREAM_ERROR"
        assert [r["path"] for r in up.requests() if r["path"].startswith("/api/v2")] == ["/api/v2/cases/5"]
        assert v2_report(gateway)["breaker"]["state"] == "open"

        # the upstream recovers: after the cool-down the probe succeeds and the breaker closes
        up.clear_faults()
        wait_for(
            lambda: v2_report(gateway)["breaker"]["state"] == "half_open", "the second cool-down", limit=5.0
        )
        up.reset()
        answer = gateway.query(query % 6)
        assert "errors" not in answer and answer["data"]["case"] == {"caseId": 6}
        report = v2_report(gateway)
        assert report["breaker"]["state"] == "closed" and report["breaker"]["timesOpened"] == 2
        assert report["breaker"]["rejected"] == 1
        assert len([r for r in up.requests() if r["path"].startswith("/api/v2")]) == 1


# --- in process: a body that drips in, and the policy's parts ----------------------------------------------


async def test_a_dripping_body_is_cut_at_the_attempt_timeout():
    async def drip():
        yield b'{"case_id": 1, '
        while True:
            await asyncio.sleep(0.1)
            yield b" "

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=drip())

    settings = load_settings(v2_url="http://up.test", read_timeout=5, attempt_timeout=0.5, cache_ttl=0)
    app = create_app(settings)
    services = app.state.services
    await services.http.client.aclose()
    services.http.client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
            started = time.monotonic()
            response = await client.post("/graphql", json={"query": "{ case(id: 1) { caseId } }"})
            assert time.monotonic() - started < 0.5 + 1
        assert response.json()["errors"][0]["extensions"] == {"code": "UPSTREAM_TIMEOUT"}
        assert services.http.attempts == 1  # the attempt deadline is not retried
    finally:
        await services.aclose()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_states():
    clock = FakeClock()
    breaker = CircuitBreaker("v2", failures=3, reset=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    breaker.success()  # a success in between starts the count again
    for _ in range(3):
        assert breaker.state is BreakerState.CLOSED and breaker.allow()
        breaker.failure()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow() and breaker.report()["retryInSeconds"] == 10
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()  # the probe...
    assert not breaker.allow()  # ...and only the probe
    breaker.failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now += 10
    assert breaker.allow()
    breaker.release()  # the probe ended without a verdict (a 429, a cancellation): another may go
    assert breaker.allow()
    breaker.success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow() and breaker.allow()
    assert breaker.report() == {"state": "closed", "consecutiveFailures": 0, "timesOpened": 2, "rejected": 4}


def test_retry_budget_is_a_share_of_recent_requests():
    clock = FakeClock()
    budget = RetryBudget(percent=20, minimum=1, window=10, clock=clock)
    for _ in range(10):
        budget.record_request()
    assert [budget.try_spend() for _ in range(4)] == [True, True, True, False]  # 1 + 20% of 10
    clock.now += 5
    for _ in range(5):
        budget.record_request()
    assert [budget.try_spend() for _ in range(2)] == [True, False]  # 1 + 20% of 15 = 4 retries
    clock.now += 6  # the first ten requests and their three retries leave the window
    assert [budget.try_spend() for _ in range(2)] == [True, False]  # 1 + 20% of 5 = 2, one spent already
    assert budget.denied == 3


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        ("0.5", 0.5),
        ("-4", 0.0),
        (None, None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_header(value, seconds):
    assert retry_after_seconds(value) == seconds
