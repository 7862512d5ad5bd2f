"""Graceful shutdown over real processes: a request in flight when SIGTERM arrives completes, no new
connection is accepted meanwhile, and the process then exits 0; SHUTDOWN_TIMEOUT bounds the wait. The
same with `serve --workers 2`, where SIGTERM goes to uvicorn's supervisor.

A request is held in flight by a latency fault on the demo upstream: once the rule has fired, the
gateway's upstream call has arrived and is waiting. The demo upstream is this module's own process: a call
the gateway gave up on still completes upstream seconds later, and would land in another test's request log.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import AUTH, Gateway, Upstream, start_gateway, start_upstream, stop, wait_for

QUERY = "{ cases(perPage: 3) { items { caseId name } } }"
V2_LIST = ["/api/v2/cases"]


@pytest.fixture(scope="module")
def own_upstream(logs_dir: Path) -> Iterator[Upstream]:
    upstream = start_upstream(logs_dir / "shutdown-upstream.log")
    yield upstream
    stop(upstream.process)


@pytest.fixture
def slow(own_upstream: Upstream) -> Iterator[Upstream]:
    """This module's upstream, its faults removed before and after the test."""
    with own_upstream.clean() as clean:
        yield clean


def launch(upstream: Upstream, logs_dir: Path, name: str, args: list[str], **env: str) -> Gateway:
    return start_gateway(upstream.url, logs_dir / f"{name}.log", *args, **{"CACHE_TTL": "0", **env})


class InFlight:
    """A query sent from a thread of its own, on a connection of its own."""

    def __init__(self, gw: Gateway, query: str) -> None:
        self.result: httpx.Response | BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(gw.url, query), daemon=True)
        self.thread.start()

    def _run(self, url: str, query: str) -> None:
        try:
            self.result = httpx.post(f"{url}/graphql", json={"query": query}, headers=AUTH, timeout=60)
        except BaseException as exc:
            self.result = exc

    def wait(self, limit: float = 30) -> httpx.Response | BaseException | None:
        self.thread.join(limit)
        assert not self.thread.is_alive(), f"the request did not end within {limit}s"
        return self.result


def fired(upstream: Upstream) -> bool:
    rules = upstream.client.get("/_demo/faults").json()["rules"]
    return bool(rules) and rules[0]["fired"] == 1


def refuses_connections(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=2)
    except httpx.ConnectError:
        return True
    return False


def not_served(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=0.5)
    except httpx.TransportError:  # refused, or accepted by the kernel and never answered
        return True
    return False


def exit_code(proc: subprocess.Popen[bytes], limit: float) -> int:
    """The process's exit code, at most `limit` seconds after now (a generous bound)."""
    try:
        return proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"still running {limit}s after SIGTERM") from None


def cases_of(upstream: Upstream) -> dict[str, Any]:
    listing = upstream.get("/api/v2/cases", per_page=3).json()["cases"]
    return {"cases": {"items": [{"caseId": c["case_id"], "name": c["name"]} for c in listing]}}


def drains_then_exits(
    gw: Gateway, slow: Upstream, expected: dict[str, Any], supervised: bool = False
) -> None:
    """SIGTERM while a query waits on the upstream: the query completes, no new request is served
    meanwhile, and the process exits 0.

    One process closes its listening socket at once: new connections are refused. uvicorn's supervisor
    (`--workers`) keeps the socket open until its workers have exited, so a new connection is accepted
    by the kernel but never served: it waits, then is dropped."""
    slow.fault(latency_ms=3000, paths=V2_LIST, times=1)
    request = InFlight(gw, QUERY)
    wait_for(lambda: fired(slow), "the gateway's upstream call to arrive")
    gw.process.proc.send_signal(signal.SIGTERM)

    if supervised:
        wait_for(lambda: not_served(gw.url), "new requests to go unanswered", limit=10)
    else:
        wait_for(lambda: refuses_connections(gw.url), "new connections to be refused", limit=10)
    assert request.thread.is_alive(), "the request ended before new connections were turned away"

    response = request.wait()
    assert isinstance(response, httpx.Response), response
    assert response.status_code == 200
    assert response.json()["data"] == expected
    assert "errors" not in response.json()
    assert exit_code(gw.process.proc, 15) == 0
    assert [r["status"] for r in slow.requests() if r["path"] == "/api/v2/cases"][-1] == 200


def test_a_request_in_flight_at_sigterm_completes_then_the_process_exits_0(slow, logs_dir):
    expected = cases_of(slow)
    gw = launch(slow, logs_dir, "shutdown-graceful", [], SHUTDOWN_TIMEOUT="30")
    try:
        drains_then_exits(gw, slow, expected)
        assert "POST /graphql 200" in gw.process.log()  # its summary line was written before the exit
    finally:
        stop(gw.process)


def test_shutdown_timeout_bounds_the_wait_for_requests_in_flight(slow, logs_dir):
    gw = launch(slow, logs_dir, "shutdown-timeout", [], SHUTDOWN_TIMEOUT="1")
    try:
        slow.fault(latency_ms=8000, paths=V2_LIST, times=1)
        request = InFlight(gw, QUERY)
        wait_for(lambda: fired(slow), "the gateway's upstream call to arrive")
        signalled = time.monotonic()
        gw.process.proc.send_signal(signal.SIGTERM)
        # gone well before the upstream answers (8 s): the wait was cut after SHUTDOWN_TIMEOUT
        assert exit_code(gw.process.proc, 6) == 0
        assert time.monotonic() - signalled < 6
        result = request.wait(10)
        # the cut request got no answer: a 5xx, or the connection closed
        if isinstance(result, httpx.Response):
            assert result.status_code >= 500
        else:
            assert isinstance(result, httpx.TransportError), result
    finally:
        stop(gw.process)


def test_with_two_workers_sigterm_to_the_supervisor_drains_both(slow, logs_dir):
    expected = cases_of(slow)
    gw = launch(slow, logs_dir, "shutdown-workers", ["--workers", "2"], SHUTDOWN_TIMEOUT="30")
    try:
        drains_then_exits(gw, slow, expected, supervised=True)
        log = gw.process.log()
        assert "POST /graphql 200" in log
        assert log.count("Finished server process") == 2  # both workers stopped before the supervisor
    finally:
        stop(gw.process)
