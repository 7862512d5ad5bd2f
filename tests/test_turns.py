"""Slow clients and greedy callers, over real HTTP against a gateway process on the demo upstream: a request
takes one of the MAX_CONCURRENT_REQUESTS turns only once its body is read (BODY_TIMEOUT bounds the read: 408,
connection closed), and no caller holds more than its share of the turns (gateway/http/turns.py).

127.0.0.2 serves as a second client address (every 127/8 address is the machine's own). The gateway trusts no
proxy (`FORWARDED_ALLOW_IPS` names an address no test connects from), so a forged `X-Forwarded-For` is ignored.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.demo import DEMO_TOKEN_2
from gateway.http.deadlines import Deadlines
from gateway.http.turns import ADDRESS_SHARE, CREDENTIAL_SHARE, OVERLOADED, Holder, Turns, holder_of, share
from tests.support import AUTH, Gateway, Metrics, Upstream, free_port, start_gateway, stop, wait_for

BODY_TIMEOUT = 2.0
HEADER_TIMEOUT = 1.5
METRICS_PORTS: dict[str, int] = {}  # a gateway's URL -> the port of its /metrics (METRICS_PORT)
FAST = "query Fast { legacyCases(perPage: 2) { items { legacyId caseNumber } } }"  # a v1 route
SLOW = "query Slow { cases(perPage: 1) { items { caseId } } }"  # the v2 route made slow below


@pytest.fixture(scope="module")
def gw(upstream: Upstream, logs_dir: Path) -> Iterator[Gateway]:
    """The default turns (64: 16 per credential, 32 per address), a short BODY_TIMEOUT, no trusted proxy."""
    metrics_port = free_port()
    gateway = start_gateway(
        upstream.url,
        logs_dir / "gateway-turns.log",
        CACHE_TTL="0",
        BODY_TIMEOUT=str(BODY_TIMEOUT),
        HEADER_TIMEOUT=str(HEADER_TIMEOUT),
        MAX_HEADER_BYTES="16384",
        FORWARDED_ALLOW_IPS="192.0.2.1",
        METRICS_PORT=str(metrics_port),
    )
    METRICS_PORTS[gateway.url] = metrics_port
    yield gateway
    stop(gateway.process)


@pytest.fixture
def clean(calls: Upstream) -> Iterator[Upstream]:
    with calls.clean() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def clients() -> Iterator[dict[str, httpx.Client]]:
    """One client per source address, each with enough connections for every request of a test at once."""
    made = {
        source: httpx.Client(
            transport=httpx.HTTPTransport(
                local_address=source, limits=httpx.Limits(max_connections=256, max_keepalive_connections=0)
            ),
            timeout=30,
        )
        for source in ("127.0.0.1", "127.0.0.2")
    }
    yield made
    for client in made.values():
        client.close()


def timed_post(
    client: httpx.Client, gw: Gateway, query: str, headers: dict[str, str]
) -> tuple[httpx.Response, float]:
    """One query on a connection of its own: the answer and how long it took."""
    started = time.perf_counter()
    response = client.post(f"{gw.url}/graphql", json={"query": query}, headers=headers)
    return response, time.perf_counter() - started


def metrics(gw: Gateway) -> Metrics:
    """The gateway's metrics, on their own port (METRICS_PORT: one process serving both)."""
    response = httpx.get(f"http://127.0.0.1:{METRICS_PORTS[gw.url]}/metrics", timeout=10)
    assert response.status_code == 200
    return Metrics(response.text)


def in_flight(gw: Gateway) -> float:
    return metrics(gw).get("casegraph_requests_in_flight")


def shed(gw: Gateway, reason: str) -> float:
    return metrics(gw).get("casegraph_requests_shed_total", reason=reason)


def test_metrics_are_on_their_own_port_only(gw):
    assert gw.client.get("/metrics").status_code == 404
    assert "casegraph_requests_total" in metrics(gw).text


# --- the body is read before a turn is taken ----------------------------------------------------------------


def half_sent(gw: Gateway) -> socket.socket:
    """A POST whose headers promise 100 bytes of body, of which 50 are sent."""
    host, port = gw.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    body = b'{"query": "{ __typename }"' + b" " * 74
    sock.sendall(
        b"POST /graphql HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (host.encode(), len(body), body[:50])
    )
    return sock


def answer_of(sock: socket.socket) -> tuple[bytes, bool]:
    """What the server wrote on the socket until it closed it: (the bytes, whether it closed)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received, True


def test_half_sent_bodies_hold_no_turn_and_get_408_after_body_timeout(gw, clean, clients):
    before = shed(gw, "body_timeout")
    held = [half_sent(gw) for _ in range(200)]
    sent_at = time.monotonic()
    try:
        response, took = timed_post(clients["127.0.0.1"], gw, FAST, AUTH)
        assert response.status_code == 200 and response.json()["data"]["legacyCases"]["items"], response.text
        assert took < 0.5, f"a normal query took {took:.2f} s beside 200 half-sent bodies"
        assert time.monotonic() - sent_at < BODY_TIMEOUT  # answered while every body was still held
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(answer_of, held))
        waited = time.monotonic() - sent_at
    finally:
        for sock in held:
            sock.close()
    assert BODY_TIMEOUT - 0.2 <= waited < BODY_TIMEOUT + 10
    for received, closed in answers:
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), received[:200]
        assert b"connection: close" in head.lower()
        assert orjson.loads(body)["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
        assert closed
    assert shed(gw, "body_timeout") - before == 200
    assert [r["path"] for r in clean.requests()] == ["/api/v1/cases"]  # the normal query's only


# --- the request head: bounded by the server protocol (gateway/http/server.py) ------------------------------


def connect(gw: Gateway) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def test_a_head_that_never_ends_gets_408_after_header_timeout(gw, clean, clients):
    held = [connect(gw) for _ in range(50)]
    for n, sock in enumerate(held):
        if n % 2:
            sock.sendall(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Ty")  # half a head
        # the others send nothing at all
    opened = time.monotonic()
    try:
        response, took = timed_post(clients["127.0.0.1"], gw, FAST, AUTH)
        assert response.status_code == 200 and took < 0.5, (response.status_code, took)
        with ThreadPoolExecutor(50) as pool:
            answers = list(pool.map(answer_of, held))
        waited = time.monotonic() - opened
    finally:
        for sock in held:
            sock.close()
    assert HEADER_TIMEOUT - 0.2 <= waited < HEADER_TIMEOUT + 10
    for received, closed in answers:
        assert received.startswith(b"HTTP/1.1 408 "), received[:100]
        assert orjson.loads(received.partition(b"\r\n\r\n")[2])["errors"][0]["extensions"]["code"] == (
            "REQUEST_TIMEOUT"
        )
        assert closed


def test_a_head_larger_than_max_header_bytes_gets_431(gw, clean):
    with connect(gw) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000)
        received, closed = answer_of(sock)
    assert received.startswith(b"HTTP/1.1 431 ") and closed, received[:100]
    with connect(gw) as sock:  # a head just below the limit is served
        sock.sendall(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: %s\r\n\r\n" % (b"a" * 15_000)
        )
        received, _ = answer_of(sock)
    assert received.startswith(b"HTTP/1.1 200 "), received[:100]


def test_a_kept_alive_connection_gets_a_new_head_time_per_request(gw, clean):
    with connect(gw) as sock:
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(request)
        time.sleep(HEADER_TIMEOUT * 0.7)
        sock.sendall(request)  # after most of a head time: its own time starts with it
        time.sleep(HEADER_TIMEOUT * 0.7)
        sock.sendall(b"GET /heal")
        received, closed = answer_of(sock)
    assert received.count(b"HTTP/1.1 200 ") == 2 and received.count(b"HTTP/1.1 408 ") == 1, received
    assert closed


# --- fair turns ------------------------------------------------------------------------------------------------


def hold_slow(client: httpx.Client, gw: Gateway, headers: list[dict[str, str]]) -> list[httpx.Response]:
    """The slow query sent once per headers, all at once, each on its own connection."""
    with ThreadPoolExecutor(len(headers)) as pool:
        return [r for r, _ in pool.map(lambda h: timed_post(client, gw, SLOW, h), headers)]


def fast_ones(client: httpx.Client, gw: Gateway, headers: dict[str, str]) -> list[float]:
    """The fast query five times, one after the other: each answered 200 with data; how long each took."""
    times = []
    for _ in range(5):
        response, took = timed_post(client, gw, FAST, headers)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["legacyCases"]["items"], response.text
        times.append(took)
    return times


def while_held(
    gw: Gateway, clients: dict[str, httpx.Client], slow: list[dict[str, str]], then: Any
) -> tuple[list[httpx.Response], Any]:
    """The slow query sent at once with each of `slow`'s headers from 127.0.0.1 (its v2 route answers after
    3 s); once they hold their turns, `then()`. A's answers, and what `then()` returned."""
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(hold_slow, clients["127.0.0.1"], gw, slow)
        wait_for(lambda: in_flight(gw) >= 16, "the slow queries hold their turns", limit=30)
        time.sleep(0.3)  # the rest of them are waiting for a turn by now
        result = then()
        return held.result(), result


def test_a_caller_holding_slow_queries_leaves_turns_to_another_credential_of_its_address(gw, clean, clients):
    clean.fault(latency_ms=3000, paths=["/api/v2/cases"])
    before = shed(gw, CREDENTIAL_SHARE)
    b_headers = {"Authorization": f"Bearer {DEMO_TOKEN_2}"}  # B: another credential, the same address
    a_answers, b_times = while_held(
        gw, clients, [AUTH] * 100, lambda: fast_ones(clients["127.0.0.1"], gw, b_headers)
    )
    assert max(b_times) < 0.5, f"caller B's answers took {b_times} s"
    # A: its share of the turns (16 of 64) answered, the rest shed once QUEUE_TIMEOUT (1 s) had passed
    assert sorted(r.status_code for r in a_answers) == [200] * 16 + [503] * 84
    assert all(r.json()["data"]["cases"]["items"] for r in a_answers if r.status_code == 200)
    reasons = {r.json()["errors"][0]["extensions"]["reason"] for r in a_answers if r.status_code == 503}
    assert reasons == {CREDENTIAL_SHARE}
    assert shed(gw, CREDENTIAL_SHARE) - before == 84


def test_made_up_tokens_from_one_address_leave_turns_to_another_address(gw, clean, clients):
    """Each slow query carries a token of its own and a forged X-Forwarded-For: one address all the same."""
    clean.fault(latency_ms=3000, paths=["/api/v2/cases"])
    before = shed(gw, ADDRESS_SHARE)
    made_up = [
        {"Authorization": f"Bearer made-up-{n}", "X-Forwarded-For": f"198.51.100.{n}"} for n in range(100)
    ]
    slow_answers, other_times = while_held(
        gw, clients, made_up, lambda: fast_ones(clients["127.0.0.2"], gw, AUTH)
    )
    assert max(other_times) < 0.5, f"the other address's answers took {other_times} s"
    # the address's share (32 of 64) went upstream (where the made-up tokens were refused), the rest shed
    assert sorted(r.status_code for r in slow_answers) == [200] * 32 + [503] * 68
    assert {r.json()["errors"][0]["extensions"]["code"] for r in slow_answers if r.status_code == 200} == {
        "UNAUTHENTICATED"
    }
    reasons = {r.json()["errors"][0]["extensions"]["reason"] for r in slow_answers if r.status_code == 503}
    assert reasons == {ADDRESS_SHARE}
    assert shed(gw, ADDRESS_SHARE) - before == 68


# --- the turns themselves (gateway/http/turns.py) ------------------------------------------------------------------


def test_shares_are_parts_of_the_turns_at_least_one():
    assert [share(64, 0.25), share(64, 0.5), share(1, 0.25), share(3, 0.5)] == [16, 32, 1, 1]


def test_the_anonymous_caller_is_one_per_address_and_whitespace_is_no_part_of_a_credential():
    assert holder_of(None, "10.0.0.1") == Holder("anonymous@10.0.0.1", "10.0.0.1")
    assert holder_of(" Bearer x\t", "10.0.0.1") == Holder("Bearer x", "10.0.0.1")


def test_a_freed_turn_goes_to_the_first_waiting_request_its_shares_allow():
    async def scenario() -> list[str]:
        turns = Turns(total=2, credential_share=1, address_share=2)
        a, a2, b = Holder("a", "x"), Holder("a", "x"), Holder("b", "y")
        order: list[str] = []
        assert await turns.take(a, 1) is None  # a holds its share
        assert await turns.take(Holder("c", "z"), 1) is None  # every turn taken

        async def wait(name: str, holder: Holder) -> None:
            assert await turns.take(holder, 5) is None
            order.append(name)

        first = asyncio.create_task(wait("a2", a2))  # a's second: held back by its share
        await asyncio.sleep(0)
        second = asyncio.create_task(wait("b", b))
        await asyncio.sleep(0)
        turns.release(Holder("c", "z"))  # b may go, a2 may not (a still holds its one)
        await asyncio.sleep(0)
        assert order == ["b"]
        turns.release(a)
        await asyncio.gather(first, second)
        return order

    assert asyncio.run(scenario()) == ["b", "a2"]


def test_a_request_that_gets_no_turn_says_why():
    async def scenario() -> list[str | None]:
        turns = Turns(total=3, credential_share=1, address_share=2)
        await turns.take(Holder("a", "x"), 0)
        reasons = [
            await turns.take(Holder("a", "x"), 0.01),  # its credential's share
            await turns.take(Holder("b", "x"), 0),  # fits: the address's second turn
            await turns.take(Holder("c", "x"), 0.01),  # the address's share
            await turns.take(Holder("d", "y"), 0),  # fits: the last turn
            await turns.take(Holder("e", "z"), 0.01),  # none free
        ]
        assert not turns.waiting and turns.free == 0
        return reasons

    assert asyncio.run(scenario()) == [CREDENTIAL_SHARE, None, ADDRESS_SHARE, None, OVERLOADED]


async def test_one_timer_bounds_every_body_read_like_asyncio_timeout():
    """`Deadlines` (the endpoint's BODY_TIMEOUT): a read past its deadline raises TimeoutError within a tenth
    of the timeout, the others finish, and a cancellation from elsewhere stays a cancellation."""
    deadlines = Deadlines(0.3)

    async def read(seconds: float) -> str:
        with deadlines:
            await asyncio.sleep(seconds)
        return "read"

    started = time.monotonic()
    results = await asyncio.gather(read(0.05), read(5), read(0.2), return_exceptions=True)
    took = time.monotonic() - started
    assert results[0] == results[2] == "read" and isinstance(results[1], TimeoutError), results
    assert 0.3 <= took < 0.3 + deadlines.period + 0.2
    task = asyncio.ensure_future(read(5))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert deadlines._reading == {} and deadlines._expired == set()
