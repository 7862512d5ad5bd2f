"""Incremental delivery (`@defer`, `@stream`; gateway/http/incremental.py, docs/incremental.md): the plan's view of
them (lookaheads, cost, limits), the parts over real HTTP from a gateway process against the demo upstream
(multipart/mixed part by part, merged JSON otherwise), upstream calls counted exactly, errors in their part,
a client going away mid-stream, and (in process, traced) the operation span and the response cache."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest
from opentelemetry.trace import SpanKind

from gateway.http.graphql_http import accepts_multipart, multipart_delivery
from gateway.http.incremental import CANCELLED, FAILED, SENT, Stream
from gateway.planning.checks import check
from gateway.planning.limits import Limits
from tests.support import AUTH, DEMO_TOKEN, Gateway, Upstream, wait_for
from tests.test_plan import plan_of
from tests.test_relay_client import NODE, NODE_DIR
from tests.test_tracing import traced  # noqa: F401 - a fixture

# the query: the v1 page at once, each case's v2 case when the v2 API has answered
DEFERRED = "{ legacyCases(perPage: 20) { items { legacyId caseNumber ... @defer { case { caseId name status } } } } }"
UNDEFERRED = DEFERRED.replace("... @defer { case { caseId name status } }", "case { caseId name status }")
# the same, deferred once at the root rather than once per item: one later part for the 20 cases
DEFERRED_AT_ROOT = (
    "{ legacyCases(perPage: 20) { items { legacyId caseNumber } } "
    "... @defer { legacyCases(perPage: 20) { items { case { caseId name status } } } } }"
)
MULTIPART = "multipart/mixed, application/graphql-response+json"
V2_SLOW = {"paths": ["/api/v2/cases"], "latency_ms": 1500}


def parts_of(body: bytes) -> list[dict[str, Any]]:
    """The JSON parts of a multipart/mixed body with boundary "-", checking its framing."""
    assert body.startswith(b"\r\n---\r\n") and body.endswith(b"\r\n-----\r\n"), body[:40] + body[-40:]
    parts = []
    for chunk in body[len(b"\r\n---") : -len(b"--\r\n")].split(b"\r\n---")[:-1]:
        headers, _, payload = chunk.partition(b"\r\n\r\n")
        assert headers == b"\r\nContent-Type: application/json; charset=utf-8"
        parts.append(orjson.loads(payload))
    return parts


def merged(parts: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    """The data and errors of parts applied one after the other, as a client does (for comparisons)."""
    data, errors = parts[0]["data"], list(parts[0].get("errors", ()))
    paths = {p["id"]: p["path"] for p in parts[0]["pending"]}
    for part in parts[1:]:
        paths.update({p["id"]: p["path"] for p in part.get("pending", ())})
        for entry in part.get("incremental", ()):
            target = data
            for step in [*paths[entry["id"]], *entry.get("subPath", ())]:
                target = target[step]
            if "items" in entry:
                target.extend(entry["items"])
            else:
                target.update(entry["data"])
            errors.extend(entry.get("errors", ()))
        for completed in part.get("completed", ()):
            errors.extend(completed.get("errors", ()))
    return data, errors


def post(gateway: Gateway, query: str, accept: str) -> httpx.Response:
    return gateway.client.post("/graphql", json={"query": query}, headers={**AUTH, "Accept": accept})


def streamed(gateway: Gateway, query: str, upstream: Upstream) -> Iterator[tuple[dict[str, Any], float, int]]:
    """Each part as it arrives: the part, seconds since the request, and the v2 requests the upstream had
    answered by then."""
    started = time.perf_counter()
    with gateway.client.stream(
        "POST", "/graphql", json={"query": query}, headers={**AUTH, "Accept": MULTIPART}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == 'multipart/mixed; boundary="-"'
        buffer = b""
        for chunk in response.iter_raw():
            buffer += chunk
            *complete, buffer = buffer.split(b"\r\n---")
            for piece in complete:
                if not piece:
                    continue  # the opening delimiter
                arrived = time.perf_counter() - started
                v2 = sum(r["path"] == "/api/v2/cases" for r in upstream.requests())
                yield orjson.loads(piece.partition(b"\r\n\r\n")[2]), arrived, v2
        assert buffer == b"--\r\n"


def summary_of(gateway: Gateway, marker: str) -> str:
    return wait_for(
        lambda: [
            line
            for line in gateway.process.log().splitlines()
            if "gateway.requests" in line and marker in line
        ],
        "the request's summary line",
    )[-1]


def cancelled_v2(gateway: Gateway) -> float:
    """The gateway's count of v2 list requests it abandoned (its /metrics)."""
    for line in gateway.client.get("/metrics").text.splitlines():
        wanted = ('status="cancelled"', 'route="/api/v2/cases"')
        if line.startswith("casegraph_upstream_requests_total{") and all(w in line for w in wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# --- the plan ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "variables", "reaches"),
    [
        (DEFERRED, {}, False),
        (UNDEFERRED, {}, True),
        ("{ legacyCases { items { ...F @defer } } } fragment F on LegacyCase { case { caseId } }", {}, False),
        ("{ legacyCases { items { ... @defer(if: false) { case { caseId } } } } }", {}, True),
        (
            "query($d: Boolean!) { legacyCases { items { ... @defer(if: $d) { case { caseId } } } } }",
            {"d": True},
            False,
        ),
        (
            "query($d: Boolean!) { legacyCases { items { ... @defer(if: $d) { case { caseId } } } } }",
            {"d": False},
            True,
        ),
        # asked both at once and deferred: at once
        ("{ legacyCases { items { case { caseId } ... @defer { case { name } } } } }", {}, True),
        ("{ legacyCases { items @stream { case { caseId } } } }", {}, False),
        # deferred at the root: the deferred node's `items` brings `case` in the later part
        (
            "{ legacyCases { items { legacyId } } ... @defer { legacyCases { items { case { caseId } } } } }",
            {},
            False,
        ),
        (
            "{ legacyCases { items { legacyId } } ...R @defer } fragment R on Query { legacyCases { items { case { caseId } } } }",
            {},
            False,
        ),
    ],
)
def test_the_lookahead_does_not_wait_for_what_a_later_part_holds(query, variables, reaches):
    plan = plan_of(query, variables)
    [key] = [k for under in plan.tree.values() for k in under]
    assert plan.reaches(key, "items", "case") is reaches


def test_a_deferred_field_costs_what_it_costs_undeferred_and_meets_the_same_limits():
    for per_page in (20, 100):
        deferred = plan_of(DEFERRED.replace("perPage: 20", f"perPage: {per_page}"))
        undeferred = plan_of(UNDEFERRED.replace("perPage: 20", f"perPage: {per_page}"))
        limits = Limits()
        assert deferred.cost({}, limits) == undeferred.cost({}, limits) > 1
        tight = Limits(max_cost=1)
        assert [e.extensions for e in check(deferred, {}, tight)] == [
            e.extensions for e in check(undeferred, {}, tight)
        ]
        assert [e.extensions["code"] for e in check(deferred, {}, tight)] == ["QUERY_TOO_COMPLEX"]  # type: ignore[index]


def test_a_document_with_defer_decodes_into_dicts():
    stream = plan_of("{ cases(perPage: 3) { items @stream { caseId name } } }")
    assert stream.incremental and stream.answers == {}


@pytest.mark.parametrize(
    ("accept", "delivery"),
    [
        ("application/json, multipart/mixed", "incremental"),  # GraphiQL
        (
            "multipart/mixed;deferSpec=20220824,application/graphql-response+json,application/json",
            "incremental",
        ),
        ("multipart/mixed", "always"),
        ("Multipart/Mixed; q=0.5, */*", "incremental"),
        ("multipart/mixed;q=0, application/json", None),
        ("multipart/*, application/json", None),  # named outright only
        ("application/json", None),
        (None, None),
    ],
)
def test_which_accept_values_choose_multipart(accept, delivery):
    assert multipart_delivery(accept) == delivery
    assert accepts_multipart(accept) is (delivery is not None)


class Channel:
    """An ASGI receive/send pair recording what is sent; the client goes away when `gone` is set."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


async def test_a_multipart_body_is_framed_part_by_part_and_ends_as_it_went():
    async def parts(fail: bool = False) -> AsyncIterator[bytes]:
        yield b'{"data":{},"pending":[{"id":"0","path":[]}],"hasNext":true}'
        if fail:
            raise RuntimeError("boom")
        yield b'{"completed":[{"id":"0"}],"hasNext":false}'

    channel = Channel()
    assert await Stream(channel.receive, channel.send).multipart(200, {"Vary": "Accept"}, parts()) == SENT
    assert channel.sent[0]["headers"] == [
        (b"vary", b"Accept"),
        (b"content-type", b'multipart/mixed; boundary="-"'),
    ]
    assert [p["hasNext"] for p in parts_of(channel.body())] == [True, False]
    assert [m["more_body"] for m in channel.sent[1:]] == [True, True, False]

    # a failure after the first part: the body ends without its closing delimiter
    channel = Channel()
    assert await Stream(channel.receive, channel.send).multipart(200, {}, parts(fail=True)) == FAILED
    assert channel.body().endswith(b"\r\n---") and channel.sent[-1]["more_body"] is False

    # the client gone while a part is being made: the producer is cancelled
    closed = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        try:
            yield b"{}"
            await asyncio.sleep(60)
            yield b"{}"
        finally:
            closed.set()

    channel = Channel()
    asyncio.get_running_loop().call_later(0.05, channel.gone.set)
    assert await Stream(channel.receive, channel.send).multipart(200, {}, slow()) == CANCELLED
    assert closed.is_set()


# --- over HTTP --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "pending"), [(DEFERRED, 20), (DEFERRED_AT_ROOT, 1)])
def test_the_first_part_comes_before_the_slow_v2_answer_and_the_whole_costs_two_calls(
    gateway, upstream, query, pending
):
    with upstream.clean():
        upstream.fault(**V2_SLOW)
        parts = list(streamed(gateway, query, upstream))
        sent = upstream.requests()
    (first, first_at, v2_by_then), *rest = parts
    # the 20 v1 cases, read while the v2 call was still held by the upstream
    assert v2_by_then == 0 and first_at < 1.5
    items = first["data"]["legacyCases"]["items"]
    assert len(items) == 20 and all(set(item) == {"legacyId", "caseNumber"} for item in items)
    assert len(first["pending"]) == pending and first["hasNext"] is True
    assert rest and rest[-1][0]["hasNext"] is False and rest[-1][2] == 1
    # the v1 page and one case_ids call for all the deferred `case` fields, as without @defer
    assert [r["path"] for r in sent] == ["/api/v1/cases", "/api/v2/cases"]
    assert rest[-1][0]["extensions"] == {"upstream": {"calls": 2, "sharedCalls": 0, "cacheHits": 0}}

    data, errors = merged([part for part, _, _ in parts])
    whole = post(gateway, UNDEFERRED, "application/json").json()
    assert data == whole["data"]
    assert sorted(map(orjson.dumps, errors)) == sorted(map(orjson.dumps, whole["errors"]))


def test_a_deferred_part_carries_its_own_errors_at_their_paths_with_their_codes(gateway, calls):
    response = post(gateway, DEFERRED, MULTIPART)
    parts = parts_of(response.content)
    assert "errors" not in parts[0]
    expected = post(gateway, UNDEFERRED, "application/json").json()["errors"]
    assert expected and all(e["extensions"]["code"] == "NOT_FOUND" for e in expected)
    found = [
        (entry["id"], error)
        for part in parts[1:]
        for entry in part.get("incremental", ())
        for error in entry.get("errors", ())
    ]
    assert sorted(orjson.dumps(e) for _, e in found) == sorted(map(orjson.dumps, expected))
    pending = {p["id"]: p["path"] for p in parts[0]["pending"]}
    for part_id, error in found:  # each error is below the item its part belongs to
        assert error["path"][: len(pending[part_id])] == pending[part_id]


def test_a_client_without_multipart_gets_the_parts_merged(gateway, calls):
    deferred = post(gateway, DEFERRED, "application/graphql-response+json")
    assert deferred.headers["content-type"].startswith("application/graphql-response+json")
    calls_deferred = len(calls.requests())
    calls.reset()
    undeferred = post(gateway, UNDEFERRED, "application/graphql-response+json").json()
    answer = deferred.json()
    assert answer["data"] == undeferred["data"]
    assert sorted(map(orjson.dumps, answer["errors"])) == sorted(map(orjson.dumps, undeferred["errors"]))
    assert (
        answer["extensions"]
        == undeferred["extensions"]
        == {"upstream": {"calls": 2, "sharedCalls": 0, "cacheHits": 0}}
    )
    assert calls_deferred == len(calls.requests()) == 2


def test_twenty_deferred_case_fields_are_one_case_ids_call(gateway, calls):
    fields = " ".join(f"... @defer {{ c{i}: case(id: {i}) {{ caseId name }} }}" for i in range(1, 21))
    parts = parts_of(post(gateway, "{ " + fields + " }", MULTIPART).content)
    (request,) = calls.requests()
    assert request["path"] == "/api/v2/cases" and "case_ids" in request["query"]
    data, errors = merged(parts)
    assert errors == [] and [data[f"c{i}"]["caseId"] for i in range(1, 21)] == list(range(1, 21))


def test_streamed_items_and_linked_cases_cost_what_the_lists_cost(gateway, calls):
    query = "{ cases(perPage: 6) { items @stream(initialCount: 2) { caseId linkedCases @stream { caseId name } } } }"
    parts = parts_of(post(gateway, query, MULTIPART).content)
    streamed_calls = [r["path"] for r in calls.requests()]
    assert len(parts[0]["data"]["cases"]["items"]) == 2
    assert any("items" in entry for part in parts[1:] for entry in part.get("incremental", ()))
    calls.reset()
    plain = gateway.query(query.replace(" @stream(initialCount: 2)", "").replace(" @stream", ""))
    data, errors = merged(parts)
    assert errors == [] and data == plain["data"]
    assert streamed_calls == [r["path"] for r in calls.requests()] == ["/api/v2/cases", "/api/v2/cases"]


def test_only_multipart_accepted_gets_even_an_ordinary_answer_as_one_part(gateway, calls):
    response = post(gateway, "{ case(id: 3) { caseId } }", "multipart/mixed")
    assert response.status_code == 200
    [part] = parts_of(response.content)
    assert part["data"] == {"case": {"caseId": 3}}
    # a client accepting JSON too gets an ordinary answer as JSON
    json_too = post(gateway, "{ case(id: 3) { caseId } }", MULTIPART)
    assert json_too.headers["content-type"].startswith("application/graphql-response+json")


def test_the_summary_line_counts_the_parts_and_the_whole_operation(gateway, calls):
    marker = "incremental-summary-1"
    response = gateway.client.post(
        "/graphql",
        json={"query": DEFERRED},
        headers={**AUTH, "Accept": MULTIPART, "X-Request-ID": marker},
    )
    parts = parts_of(response.content)
    line = summary_of(gateway, marker)
    assert "POST /graphql 200 - partial" in line, line
    assert len(parts) >= 2


def test_a_client_gone_mid_stream_stops_the_work(gateway, upstream):
    marker = "incremental-gone-1"
    cancelled_before = cancelled_v2(gateway)
    with upstream.clean():
        upstream.fault(paths=["/api/v2/cases"], latency_ms=3000)
        started = time.perf_counter()
        with gateway.client.stream(
            "POST",
            "/graphql",
            json={"query": DEFERRED},
            headers={**AUTH, "Accept": MULTIPART, "X-Request-ID": marker},
        ) as response:
            first = b""
            for chunk in response.iter_raw():
                first += chunk
                if first.count(b"\r\n---") >= 2:
                    break  # the first part is in: hang up
        line = summary_of(gateway, marker)
        summed_up = time.perf_counter() - started
        # summed up as cancelled while the v2 call was still held upstream: the work did not wait for it
        assert " cancelled " in line, line
        assert summed_up < 3.0 and not [r for r in upstream.requests() if r["path"] == "/api/v2/cases"]
        # and the upstream request itself was abandoned: nobody was left to use its answer
        assert wait_for(lambda: cancelled_v2(gateway) == cancelled_before + 1, "the v2 call cancelled")
        # (the held call ends upstream on its own: wait for it, so no later test's request log sees it)
        time.sleep(max(0.0, 3.5 - (time.perf_counter() - started)))


@pytest.mark.skipif(
    NODE is None or not (NODE_DIR / "node_modules" / "@apollo" / "client").is_dir(),
    reason="node or tests/node/node_modules is missing (`make test` runs `npm ci` in tests/node)",
)
def test_apollo_client_sees_the_v1_cases_before_the_v2_data(gateway, upstream):
    with upstream.clean():
        upstream.fault(**V2_SLOW)
        run = subprocess.run(
            [NODE, "defer.mjs", f"{gateway.url}/graphql", upstream.url],  # type: ignore[list-item]
            cwd=NODE_DIR,
            env={**os.environ, "CASEGRAPH_TOKEN": DEMO_TOKEN},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        sent = [r["path"] for r in upstream.requests()]
    emitted = json.loads(run.stdout)
    # the observable emits the 20 v1 cases while the v2 call is still held upstream, then the v2 data
    first, last = emitted[0], emitted[-1]
    assert len(emitted) >= 2
    assert first == {
        "dataState": "streaming",
        "loading": True,
        "items": 20,
        "withCase": 0,
        "errors": [],
        "v2Answered": 0,
    }
    assert last["dataState"] == "complete" and last["withCase"] >= 15 and last["v2Answered"] == 1
    assert [code for _, code in last["errors"]] == ["NOT_FOUND"] * len(last["errors"])
    assert sent == ["/api/v1/cases", "/api/v2/cases"]


# --- traced, in process ---------------------------------------------------------------------------------


async def test_the_operation_span_covers_every_part_and_incremental_answers_are_not_kept(traced, upstream):  # noqa: F811
    gw = traced(cache_ttl=30)
    upstream.fault(paths=["/api/v2/cases"], latency_ms=300)
    for accept in (MULTIPART, "application/json"):
        response = await gw.client.post(
            "/graphql", json={"query": DEFERRED}, headers={**AUTH, "Accept": accept}
        )
        assert response.status_code == 200
        spans = gw.take()
        (operation,) = [s for s in spans if s.kind == SpanKind.INTERNAL]
        clients = [s for s in spans if s.kind == SpanKind.CLIENT]
        assert Counter(s.name for s in clients) == {"GET /api/v1/cases": 1, "GET /api/v2/cases": 1} or (
            accept == "application/json" and clients == []  # the upstream cache has both answers now
        )
        for client in clients:  # the deferred part's upstream request inside the operation's span
            assert client.parent is not None and client.parent.span_id == operation.context.span_id
            assert client.end_time <= operation.end_time  # type: ignore[operator]
        attributes = dict(operation.attributes or {})
        assert attributes["casegraph.response_cache"] == "miss"  # never kept, so never found
        assert attributes["casegraph.outcome"] == "partial"
    stored = (await gw.client.get("/healthz")).json()["responses"]["stored"]
    assert stored == 0
