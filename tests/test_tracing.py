"""Traces (gateway/ops/tracing.py): the spans of real requests against the demo upstream process, taken with the
SDK's in-memory exporter from a gateway app in this process; then, end to end, `casegraph serve` exporting
over OTLP/HTTP to a receiver process (`tests/otlp_receiver.py`) that decodes what it gets with
opentelemetry-proto; and tracing off by default, with nothing of it loaded or installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.http.app import create_app
from gateway.ops import tracing
from gateway.ops.config import ConfigError, load_settings
from gateway.upstream.links import v2_id_of
from tests.support import AUTH, Upstream, free_port, start_gateway, start_receiver, stop, wait_for

FAN_OUT = "{ legacyCases(perPage: 20) { items { legacyId case { caseId name } } } }"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
TRACESTATE = "vendor=opaque-value"
V2_LIST = ["/api/v2/cases"]


def hex_id(value: int, digits: int) -> str:
    return format(value, f"0{digits}x")


class TracedGateway:
    """The gateway app in this process, traced into an in-memory exporter, over real HTTP to the upstream."""

    def __init__(self, upstream: Upstream, **settings: Any) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": "casegraph-test"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.app = create_app(
            load_settings(v1_url=upstream.url, v2_url=upstream.url, **settings), tracer_provider=self.provider
        )
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gw")

    async def post(self, query: str, variables: Any = None, **headers: str) -> httpx.Response:
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers={**AUTH, **headers}
        )

    def spans(self, kind: SpanKind | None = None) -> list[ReadableSpan]:
        spans = list(self.exporter.get_finished_spans())
        return [s for s in spans if kind is None or s.kind == kind]

    def take(self) -> list[ReadableSpan]:
        """The spans so far, forgotten by the exporter."""
        spans = self.spans()
        self.exporter.clear()
        return spans

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.app.state.services.aclose()
        tracing.uninstall(self.provider)


@pytest.fixture
async def traced(upstream: Upstream) -> AsyncIterator[Callable[..., TracedGateway]]:
    """Makes traced gateways (settings as keyword arguments); each is closed, and tracing off, after the test."""
    made: list[TracedGateway] = []

    def make(**settings: Any) -> TracedGateway:
        gateway = TracedGateway(upstream, **settings)
        made.append(gateway)
        return gateway

    with upstream.clean():
        yield make
    for gateway in made:
        await gateway.aclose()
    assert not tracing.enabled()


def linked_v2_ids(upstream: Upstream) -> set[int]:
    """The v2 ids the first 20 v1 cases link to (what the fan-out query's one v2 call asks for)."""
    legacy = upstream.get("/api/v1/cases", per_page=20).json()
    return {i for i in (v2_id_of(c, "Tines case") for c in legacy) if i is not None}


# --- the span tree ----------------------------------------------------------------------------------------


async def test_the_fan_out_query_is_one_trace_under_the_clients_traceparent(traced, upstream):
    gw = traced(cache_ttl=0)
    linked = linked_v2_ids(upstream)
    upstream.reset()
    response = await gw.post(FAN_OUT, traceparent=TRACEPARENT, tracestate=TRACESTATE)
    answer = response.json()
    assert response.status_code == 200 and answer["data"]["legacyCases"]["items"]
    sent = upstream.requests()
    assert [r["path"] for r in sent] == ["/api/v1/cases", "/api/v2/cases"]

    spans = gw.spans()
    assert Counter(s.kind for s in spans) == {SpanKind.SERVER: 1, SpanKind.INTERNAL: 1, SpanKind.CLIENT: 2}
    (server,), (operation,) = gw.spans(SpanKind.SERVER), gw.spans(SpanKind.INTERNAL)
    clients = {s.name: s for s in gw.spans(SpanKind.CLIENT)}
    assert set(clients) == {"GET /api/v1/cases", "GET /api/v2/cases"}
    assert {hex_id(s.context.trace_id, 32) for s in spans} == {TRACE_ID}

    # parented: the client's span -> server -> operation -> each upstream request
    assert server.parent is not None and server.parent.is_remote
    assert hex_id(server.parent.span_id, 16) == PARENT_ID
    assert operation.parent is not None and operation.parent.span_id == server.context.span_id
    for client in clients.values():
        assert client.parent is not None and client.parent.span_id == operation.context.span_id
    assert server.context.trace_state.get("vendor") == "opaque-value"

    assert server.name == "POST /graphql"
    assert dict(server.attributes or {}) == {
        "http.request.method": "POST",
        "url.scheme": "http",
        "url.path": "/graphql",
        "http.route": "/graphql",
        "http.response.status_code": 200,
        "casegraph.request_id": response.headers["x-request-id"],
    }
    assert operation.name == "query"  # anonymous
    attributes = dict(operation.attributes or {})
    assert attributes.pop("casegraph.plan") in ("compiled", "reused")  # other tests may have planned it
    assert attributes == {
        "graphql.operation.type": "query",
        "casegraph.graphql.errors": len(answer.get("errors", [])),
        "casegraph.outcome": "partial",  # the dangling links' field errors
        "casegraph.upstream.calls": 2,
        "casegraph.cost": 2,  # at most: the v1 page and one v2 list of the linked cases
        # the items whose linked case is missing: graphql-core reports their NOT_FOUND
        "casegraph.execution.path": "graphql-core",
        "casegraph.execution.fallback": "gave-up",
    }
    assert [(e.name, dict(e.attributes or {})) for e in operation.events] == [
        ("loader.batch", {"casegraph.loader": "case", "casegraph.loader.batch_size": len(linked)})
    ]
    port = urlsplit(upstream.url).port
    for api, client in (("v1", clients["GET /api/v1/cases"]), ("v2", clients["GET /api/v2/cases"])):
        assert dict(client.attributes or {}) == {
            "http.request.method": "GET",
            "url.template": f"/api/{api}/cases",
            "server.address": "127.0.0.1",
            "server.port": port,
            "casegraph.upstream.api": api,
            "casegraph.upstream.cache": "off",
            "casegraph.upstream.breaker": "closed",
            "http.response.status_code": 200,
        }
        assert client.events == () and client.status.status_code == StatusCode.UNSET

    # each upstream request carried its own client span as the parent, and the client's trace state
    for request in sent:
        client = clients[f"GET {request['path']}"]
        assert request["traceparent"] == f"00-{TRACE_ID}-{hex_id(client.context.span_id, 16)}-01"
        assert request["tracestate"] == TRACESTATE


async def test_without_a_traceparent_each_request_starts_its_own_trace(traced):
    gw = traced(cache_ttl=0)
    await gw.post("query One { cases(perPage: 1) { items { caseId } } }")
    await gw.post("query Two { cases(perPage: 1) { items { caseId } } }")
    servers = gw.spans(SpanKind.SERVER)
    assert len(servers) == 2 and all(s.parent is None for s in servers)
    assert len({s.context.trace_id for s in gw.spans()}) == 2
    assert [s.name for s in gw.spans(SpanKind.INTERNAL)] == ["query One", "query Two"]
    assert gw.spans(SpanKind.INTERNAL)[0].attributes["graphql.operation.name"] == "One"  # type: ignore[index]


async def test_a_malformed_traceparent_is_ignored(traced):
    gw = traced(cache_ttl=0)
    response = await gw.post("{ cases(perPage: 1) { items { caseId } } }", traceparent="00-nonsense-01")
    assert response.status_code == 200
    (server,) = gw.spans(SpanKind.SERVER)
    assert server.parent is None


# --- caches, joined calls, retries, failures --------------------------------------------------------------


async def test_caches_and_the_plan_show_on_the_operation_span(traced, upstream):
    query = "query CachedAndPlanned { cases(perPage: 3) { items { caseId linkedCases { caseId } } } }"
    gw = traced(cache_ttl=30)
    await gw.post(query)
    first = gw.take()
    clients = [s for s in first if s.kind == SpanKind.CLIENT]
    assert len(clients) == 2 and {s.attributes["casegraph.upstream.cache"] for s in clients} == {"miss"}  # type: ignore[index]
    (operation,) = [s for s in first if s.kind == SpanKind.INTERNAL]
    assert dict(operation.attributes or {}) == {
        "graphql.operation.type": "query",
        "graphql.operation.name": "CachedAndPlanned",
        "casegraph.response_cache": "miss",
        "casegraph.outcome": "ok",
        "casegraph.upstream.calls": 2,
        "casegraph.plan": "compiled",  # a query text no other test sends: planned here first
        "casegraph.cost": 2,  # the page of cases and one list of their linked cases
        "casegraph.execution.path": "projections",  # the linked cases are v2 cases too
        "casegraph.execution.fallback": "shared-cases",
    }

    await gw.post(query)
    second = gw.take()
    assert Counter(s.kind for s in second) == {SpanKind.SERVER: 1, SpanKind.INTERNAL: 1}
    (operation,) = [s for s in second if s.kind == SpanKind.INTERNAL]
    assert dict(operation.attributes or {}) == {
        "graphql.operation.type": "query",
        "graphql.operation.name": "CachedAndPlanned",
        "casegraph.response_cache": "hit",
        "casegraph.outcome": "ok",
        "casegraph.upstream.cache_hits": 2,  # the answers it was built from, as extensions.upstream says
    }
    assert operation.events == ()  # nothing was planned or executed

    # without the response cache, the upstream cache answers both upstream requests: no request is sent
    plain = traced(cache_ttl=30, response_cache=False)
    await plain.post(query)
    plain.take()
    await plain.post(query)
    (operation,) = plain.spans(SpanKind.INTERNAL)
    assert dict(operation.attributes or {}) == {
        "graphql.operation.type": "query",
        "graphql.operation.name": "CachedAndPlanned",
        "casegraph.upstream.cache_hits": 2,
        "casegraph.outcome": "ok",
        "casegraph.plan": "reused",
        "casegraph.cost": 2,
        "casegraph.execution.path": "projections",
        "casegraph.execution.fallback": "shared-cases",
    }
    assert plain.spans(SpanKind.CLIENT) == []


async def test_a_joined_call_is_counted_and_its_span_belongs_to_the_first_caller(traced, upstream):
    gw = traced(cache_ttl=0)
    upstream.fault(latency_ms=300, paths=V2_LIST, times=1)
    query = "query Joined { cases(perPage: 2) { items { caseId } } }"
    await asyncio.gather(gw.post(query), gw.post(query))
    assert len(upstream.requests()) == 1
    (client,) = gw.spans(SpanKind.CLIENT)
    operations = gw.spans(SpanKind.INTERNAL)
    owner = next(s for s in operations if s.context.span_id == client.parent.span_id)  # type: ignore[union-attr]
    joiner = next(s for s in operations if s is not owner)
    assert joiner.context.trace_id != owner.context.trace_id == client.context.trace_id
    assert owner.attributes["casegraph.upstream.calls"] == 1  # type: ignore[index]
    assert "casegraph.upstream.joined" not in (owner.attributes or {})
    assert joiner.attributes["casegraph.upstream.joined"] == 1  # type: ignore[index]
    assert "casegraph.upstream.calls" not in (joiner.attributes or {})


async def test_retries_are_events_of_the_upstream_span(traced, upstream):
    gw = traced(cache_ttl=0, retry_backoff=0.01)
    upstream.fault(status=503, paths=V2_LIST, times=2)
    answer = (await gw.post("{ cases(perPage: 2) { items { caseId } } }")).json()
    assert "errors" not in answer
    (client,) = gw.spans(SpanKind.CLIENT)
    assert [
        (e.name, e.attributes["casegraph.upstream.attempt"], e.attributes["error.type"])
        for e in client.events
    ] == [  # type: ignore[index]
        ("upstream.retry", 1, "UPSTREAM_ERROR"),
        ("upstream.retry", 2, "UPSTREAM_ERROR"),
    ]
    assert all(0 <= e.attributes["casegraph.upstream.wait_s"] <= 1 for e in client.events)  # type: ignore[index, operator]
    assert client.attributes["http.response.status_code"] == 200  # type: ignore[index]
    assert client.status.status_code == StatusCode.UNSET


async def test_failed_upstream_requests_carry_their_code_and_the_breaker_state(traced, upstream):
    gw = traced(cache_ttl=0, retry_attempts=1, breaker_failures=1, breaker_reset=60)
    missing = (await gw.post("{ case(id: 987654) { caseId } }")).json()
    assert missing["data"] == {"case": None}
    assert [e["extensions"]["code"] for e in missing["errors"]] == ["NOT_FOUND"]
    (client,) = upstream_spans(gw.take())
    assert client.name == "GET /api/v2/cases/{id}"
    assert client.attributes["url.template"] == "/api/v2/cases/{id}"  # type: ignore[index]
    assert client.attributes["http.response.status_code"] == 404  # type: ignore[index]
    assert client.attributes["error.type"] == "NOT_FOUND"  # type: ignore[index]
    assert client.status.status_code == StatusCode.ERROR

    upstream.fault(status=500, paths=V2_LIST, times=1)
    query = "{ cases(perPage: 1) { items { caseId } } }"
    await gw.post(query)  # fails, and opens the breaker (one failure is enough here)
    await gw.post(query)  # fails fast, nothing sent
    failed, refused = upstream_spans(gw.take())
    assert (failed.attributes or {}).items() >= {
        "casegraph.upstream.breaker": "closed",
        "http.response.status_code": 500,
        "error.type": "UPSTREAM_ERROR",
    }.items()
    assert (refused.attributes or {}).items() >= {
        "casegraph.upstream.breaker": "open",
        "error.type": "UPSTREAM_UNAVAILABLE",
    }.items()
    assert "http.response.status_code" not in (refused.attributes or {})
    assert len(upstream.requests()) == 2  # the 404 and the 500


def upstream_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == SpanKind.CLIENT]


# --- secrets ------------------------------------------------------------------------------------------------

FILTERED = (
    'query Filtered($s: String!) { cases(filter: {search: $s, name: "zebra-filter-31337"}, perPage: 2) '
    "{ items { caseId } } case(id: 3) { caseId } }"
)
IN_THE_URL = (
    '{ legacyCases(filter: {caseNumber: "filter-in-the-url-4242"}, perPage: 1) { items { legacyId } } }'
)
SECRETS = (
    "demo-token",  # and demo-token-2
    "Bearer",
    "cookie-secret-5150",
    "zebra-filter-31337",
    "variable-value-777",
    "filter-in-the-url-4242",
    "refused",  # the upstream's error text (it echoed both tokens; the gateway scrubs them from messages)
)


async def test_no_token_cookie_or_filter_value_in_any_span(traced, upstream):
    gw = traced(cache_ttl=0, retry_backoff=0.01)
    upstream.fault(
        status=400,
        error="token demo-token-2 and Bearer demo-token refused",
        paths=["/api/v2/cases/3"],
        times=1,
    )
    upstream.fault(status=503, paths=V2_LIST, times=1)  # one retry
    for token in ("demo-token", "demo-token-2"):
        headers = {"Authorization": f"Bearer {token}", "Cookie": "session=cookie-secret-5150"}
        posted = await gw.client.post(
            "/graphql", json={"query": FILTERED, "variables": {"s": "variable-value-777"}}, headers=headers
        )
        assert posted.status_code == 200, posted.text
        got = await gw.client.get(
            "/graphql", params={"query": IN_THE_URL}, headers={**headers, "Accept": "application/json"}
        )
        assert got.status_code == 200, got.text
    # the values did reach the upstream in its URLs (so a span that held a URL would hold them)
    params = json.dumps([r["params"] for r in upstream.requests()])
    assert all(v in params for v in ("zebra-filter-31337", "variable-value-777", "filter-in-the-url-4242"))
    spans = gw.spans()
    assert Counter(s.kind for s in spans)[SpanKind.SERVER] == 4
    assert any(e.name == "upstream.retry" for s in spans for e in s.events)
    assert {s.attributes["url.path"] for s in gw.spans(SpanKind.SERVER)} == {"/graphql"}  # type: ignore[index]
    everything = "\n".join(span.to_json() for span in spans)  # names, attributes, events, links, resource
    for secret in SECRETS:
        assert secret not in everything, secret
    values = [
        str(value)
        for span in spans
        for attributes in (span.attributes, *(e.attributes for e in span.events))
        for value in (attributes or {}).values()
    ]
    assert not [v for v in values if "?" in v or "://" in v]  # no URL, no query string


# --- off by default, and the OTEL_* configuration -------------------------------------------------------------

# Each environment in turn, in one process: the app made, whether tracing is on and the middleware; then which
# tracing modules were imported. (redis-py imports the SDK's metrics module for its own opt-in metrics.)
PROBE = """
import json, os, sys
from gateway.ops import tracing
from gateway.http.app import create_app
from gateway.ops.config import load_settings
for env in json.loads(sys.argv[1]):
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        del os.environ[name]
    os.environ.update(env)
    app = create_app(load_settings())
    print(tracing.enabled(), [m.cls.__name__ for m in app.user_middleware])
print(sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk.trace", "opentelemetry.exporter"))))
"""
OFF = [
    {},
    {"OTEL_TRACES_EXPORTER": "none"},
    {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
    {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SERVICE_NAME": "x"},  # no exporter named
]


def test_off_unless_an_exporter_is_named_and_then_nothing_is_loaded_or_installed(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(OFF)],
        cwd=tmp_path,  # no .env file
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["False ['Observe']"] * len(OFF) + ["[]"]


def test_helpers_do_nothing_when_off():
    assert not tracing.enabled()
    assert tracing.operation_span("Q", "query").span is None
    assert tracing.upstream_span("v2", "http://u", "/api/v2/cases", {}, None, "off").span is None
    tracing.batch_event("case", 3)  # no current span, no tracer: nothing happens
    assert tracing.current_trace_id() is None


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    yield monkeypatch


def configured() -> TracerProvider:
    provider = tracing.configure()
    assert provider is not None
    provider.shutdown()  # its batch processor's thread
    return provider


def test_the_sdk_reads_its_own_variables(otel_env):
    otel_env.setenv("OTEL_TRACES_EXPORTER", "otlp")
    otel_env.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    otel_env.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    provider = configured()
    assert provider.resource.attributes["service.name"] == "casegraph"  # the gateway's default
    assert "TraceIdRatioBased{0.25}" in provider.sampler.get_description()
    otel_env.setenv("OTEL_TRACES_EXPORTER", "console,otlp")
    otel_env.setenv("OTEL_SERVICE_NAME", "casegraph-eu")
    otel_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod")
    provider = configured()
    assert provider.resource.attributes["service.name"] == "casegraph-eu"
    assert provider.resource.attributes["deployment.environment"] == "prod"
    otel_env.delenv("OTEL_SERVICE_NAME")
    otel_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes")
    assert configured().resource.attributes["service.name"] == "from-attributes"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
    ],
)
def test_a_configuration_the_gateway_cannot_honour_is_refused(otel_env, env, named):
    for name, value in env.items():
        otel_env.setenv(name, value)
    with pytest.raises(ConfigError, match=named):
        tracing.configure()


def test_serve_refuses_it_before_starting_workers(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--workers", "2", "--port", str(free_port())],
        env={**clean, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("casegraph: OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' is not supported")


# --- end to end: processes, OTLP over HTTP, JSON logs -----------------------------------------------------


@pytest.fixture(scope="module")
def receiver(logs_dir: Path) -> Iterator[str]:
    process = start_receiver(logs_dir / "otlp-receiver.log")
    yield process.url
    stop(process)


@pytest.fixture(scope="module")
def exporting(upstream: Upstream, receiver: str, logs_dir: Path) -> Iterator[Any]:
    """`casegraph serve` tracing every request into the receiver, logging JSON."""
    gateway = start_gateway(
        upstream.url,
        logs_dir / "traced-gateway.log",
        CACHE_TTL="0",
        LOG_FORMAT="json",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver,
        OTEL_BSP_SCHEDULE_DELAY="50",  # ms: spans leave at once, the test need not wait
    )
    yield gateway
    stop(gateway.process)


def received(receiver: str, trace_id: str, count: int) -> list[dict[str, Any]]:
    def spans() -> list[dict[str, Any]]:
        found = [s for s in httpx.get(f"{receiver}/spans").json() if s["trace_id"] == trace_id]
        return found if len(found) >= count else []

    return wait_for(spans, f"{count} spans of trace {trace_id} at the receiver")


def test_end_to_end_the_fan_out_tree_arrives_over_otlp_http(exporting, receiver, upstream):
    with upstream.clean():
        response = exporting.client.post(
            "/graphql", json={"query": FAN_OUT}, headers={**AUTH, "traceparent": TRACEPARENT}
        )
        sent = upstream.requests()
    assert response.status_code == 200 and response.json()["data"]["legacyCases"]["items"]
    spans = received(receiver, TRACE_ID, 4)
    assert Counter(s["kind"] for s in spans) == {"server": 1, "internal": 1, "client": 2}
    by_kind = {kind: [s for s in spans if s["kind"] == kind] for kind in ("server", "internal", "client")}
    (server,), (operation,) = by_kind["server"], by_kind["internal"]
    assert (server["name"], server["parent_span_id"]) == ("POST /graphql", PARENT_ID)
    assert operation["parent_span_id"] == server["span_id"]
    assert sorted(s["name"] for s in by_kind["client"]) == ["GET /api/v1/cases", "GET /api/v2/cases"]
    assert all(s["parent_span_id"] == operation["span_id"] for s in by_kind["client"])
    assert [e["name"] for e in operation["events"]] == ["loader.batch"]
    assert server["resource"]["service.name"] == "casegraph"
    assert server["attributes"]["casegraph.request_id"] == response.headers["x-request-id"]
    client_ids = {s["name"]: s["span_id"] for s in by_kind["client"]}
    assert [r["traceparent"] for r in sent] == [
        f"00-{TRACE_ID}-{client_ids['GET ' + r['path']]}-01" for r in sent
    ]

    # every JSON log line of the request carries the trace id beside the request id
    rid = response.headers["x-request-id"]

    def lines() -> list[dict[str, Any]]:
        entries = [
            orjson.loads(line) for line in exporting.process.log().splitlines() if line.startswith("{")
        ]
        mine = [e for e in entries if e.get("request_id") == rid]
        return mine if any(e["logger"] == "gateway.requests" for e in mine) else []

    mine = wait_for(lines, "the request's summary line")
    assert len(mine) >= 2  # the summary line and the dangling links' field errors
    assert {e.get("trace_id") for e in mine} == {TRACE_ID}

    # and the whole export, resource included, holds no token
    assert "demo-token" not in json.dumps(httpx.get(f"{receiver}/requests").json())


def test_end_to_end_a_request_without_traceparent_gets_a_new_trace(exporting, receiver):
    response = exporting.client.post(
        "/graphql", json={"query": "query Fresh { cases(perPage: 1) { items { caseId } } }"}, headers=AUTH
    )
    assert response.status_code == 200

    def fresh() -> list[dict[str, Any]]:
        spans = httpx.get(f"{receiver}/spans").json()
        return [s for s in spans if s["name"] == "query Fresh"]

    (operation,) = wait_for(fresh, "the operation span")
    spans = received(receiver, operation["trace_id"], 3)
    (server,) = [s for s in spans if s["kind"] == "server"]
    assert server["parent_span_id"] is None and operation["trace_id"] != TRACE_ID
