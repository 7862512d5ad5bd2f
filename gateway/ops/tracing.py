"""OpenTelemetry traces: a span per HTTP request, per GraphQL operation and per upstream request sent.

Off unless `OTEL_TRACES_EXPORTER` names an exporter (`otlp`: OTLP over HTTP/protobuf, `console`); everything
else comes from the SDK's own `OTEL_*` variables (endpoint, headers, sampler, service name, batching).
`docs/tracing.md` lists them. Off, nothing here is imported beyond the API, no middleware is installed and
every helper returns at its first line.

What a trace holds (all spans of a request in one trace, the client's when it sent a `traceparent`):

- `ServerSpans`, the outermost middleware: a SERVER span per HTTP request, named `POST /graphql` (method
  and route), with the status and the request id. The W3C `traceparent`/`tracestate` (and `baggage`, per
  `OTEL_PROPAGATORS`) of the request are its parent context. While it is current every log line carries
  its trace id (`gateway/ops/logs.py`).
- `operation_span`: an INTERNAL span per GraphQL operation (`query Cases`): operation type and name,
  response-cache hit or miss, the outcome and number of errors, the upstream requests it sent, the upstream answers it
  took from the cache and those it took from an identical call already in flight (joined: that call's span
  is in the trace of the request that started it), and its plan (reused or compiled) and cost. Loader
  batches are events on it (`loader.batch`, with the loader and its size).
- `upstream_span`: a CLIENT span per upstream request sent (`GET /api/v2/cases/{case_id}`), around all
  its attempts: the route template (never the URL: its query string holds the caller's filters),
  upstream, cache (`miss`, or `off` for an uncached route), circuit-breaker state when it started, the
  last attempt's status, `error.type` (the gateway's error code) when it failed, and an `upstream.retry`
  event per retry. Its context goes upstream as `traceparent`/`tracestate`.

No span holds a header, a token, a URL query string, a GraphQL document, variables or an error message:
only the names and values set here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.ops.config import ConfigError
from gateway.ops.routes import route_template

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

SERVICE_NAME = "casegraph"
EXPORTERS = ("otlp", "console")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})

_tracer: Tracer | None = None  # set by `install`: tracing is on in this process


# --- configuration ----------------------------------------------------------------------------------------


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def exporters() -> list[str]:
    """The exporters `OTEL_TRACES_EXPORTER` names (none: tracing is off, as with `OTEL_SDK_DISABLED=true`);
    a ConfigError for one the gateway cannot honour. `casegraph serve` asks before starting workers."""
    if _env("OTEL_SDK_DISABLED").lower() == "true":
        return []
    names = [n.strip().lower() for n in _env("OTEL_TRACES_EXPORTER").split(",") if n.strip()]
    names = list(dict.fromkeys(n for n in names if n != "none"))
    for name in names:
        if name not in EXPORTERS:
            raise ConfigError(
                f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} (one of {', '.join(EXPORTERS)}, none)"
            )
    protocol = _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _env("OTEL_EXPORTER_OTLP_PROTOCOL")
    if "otlp" in names and protocol and protocol != "http/protobuf":
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported; the gateway exports OTLP over "
            "HTTP (http/protobuf, port 4318)"
        )
    return names


def configure() -> TracerProvider | None:
    """The tracer provider the `OTEL_*` environment asks for, or None when tracing is off (`exporters`).
    The sampler, resource (service name: `casegraph` unless `OTEL_SERVICE_NAME` or
    `OTEL_RESOURCE_ATTRIBUTES` name one), span limits, batching and the OTLP endpoint, headers, timeout and
    compression are the SDK's, read from its variables."""
    names = exporters()
    if not names:
        return None

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # sampler and span limits from OTEL_TRACES_SAMPLER etc.
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))  # OTEL_BSP_* from the environment
    return provider


def _exporter(name: str) -> SpanExporter:
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()  # endpoint, headers, timeout, compression from OTEL_EXPORTER_OTLP_*
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    return ConsoleSpanExporter()


def install(provider: TracerProvider) -> None:
    """Trace this process with `provider` (its spans go to the provider's exporters)."""
    global _tracer
    _tracer = provider.get_tracer("casegraph")


def uninstall(provider: TracerProvider) -> None:
    """Stop tracing: the spans still queued are exported first."""
    global _tracer
    _tracer = None
    provider.shutdown()


def enabled() -> bool:
    return _tracer is not None


def current_trace_id() -> str | None:
    """The current trace's id (32 hex digits), for log lines; None when tracing is off or no span is current."""
    if _tracer is None:
        return None
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


# --- the server span ------------------------------------------------------------------------------------


class ServerSpans:
    """ASGI middleware: a SERVER span per HTTP request, parented by the W3C trace context the request
    brings, current while the request runs (so the operation's spans and the log lines see it).

    Not opentelemetry-instrumentation-asgi's `OpenTelemetryMiddleware`: that one records the URL with its
    query string (`http.url`, `http.target` or `url.query`, per semantic-convention mode), which for a GET
    holds the GraphQL document and variables, filter values included; and it costs about three times as
    much CPU per request (semantic-convention attributes collected twice, each header looked up by decoding
    all of them, metric instruments recorded even without a meter provider)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.fields = frozenset(name.encode() for name in propagate.get_global_textmap().fields)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = _tracer
        if tracer is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in self.fields:  # traceparent, tracestate, baggage (a repeated header's values joined)
                key, text = name.decode(), value.decode("latin-1")
                carrier[key] = f"{carrier[key]},{text}" if key in carrier else text
        parent = propagate.extract(carrier) if carrier else None
        method = scope["method"] if scope["method"] in HTTP_METHODS else "_OTHER"
        span = tracer.start_span(
            method,
            parent,
            SpanKind.SERVER,
            {
                "http.request.method": method,
                "url.scheme": scope.get("scheme", "http"),
                "url.path": scope["path"],
            },
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        ending: dict[str, Any] = {"http.response.status_code": 500}  # set at the end, all at once

        async def send_traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                ending["http.response.status_code"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"x-request-id":  # set by gateway.http.observe.Observe
                        ending["casegraph.request_id"] = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, send_traced)
        except BaseException as exc:
            ending["error.type"] = type(exc).__qualname__
            raise
        finally:
            route = getattr(scope.get("route"), "path", None)  # the matched route's template (Starlette)
            if route:
                span.update_name(f"{method} {route}")
                ending["http.route"] = route
            status = ending["http.response.status_code"]
            if status >= 500 or "error.type" in ending:
                span.set_status(StatusCode.ERROR)
                ending.setdefault("error.type", str(status))
            span.set_attributes(ending)
            otel_context.detach(token)
            span.end()


# --- the operation span ---------------------------------------------------------------------------------


class CurrentSpan:
    """A span made current for a block, as a context manager: an exception leaving the block marks it
    failed, with `error.type` the gateway's error code (or the exception's class), never its message. A
    no-op when the span is None (tracing off)."""

    __slots__ = ("span", "token")

    def __init__(self, span: Span | None) -> None:
        self.span = span
        self.token: object = None

    @property
    def recording(self) -> bool:
        """Whether there is a span to write on (False: tracing off, every method a no-op)."""
        return self.span is not None

    def __enter__(self) -> Self:
        if self.span is not None:
            self.token = otel_context.attach(trace.set_span_in_context(self.span))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        span = self.span
        if span is None:
            return
        if exc is not None:
            span.set_attribute("error.type", getattr(exc, "code", None) or type(exc).__qualname__)
            span.set_status(StatusCode.ERROR)
        otel_context.detach(self.token)  # type: ignore[arg-type]
        span.end()


class OperationSpan(CurrentSpan):
    """The current GraphQL operation's span."""

    __slots__ = ()

    def answered(self, response_cache: str | None, outcome: str, upstream: Mapping[str, int]) -> None:
        """How the operation was answered: from the response cache (`hit`), executed after a look there
        (`miss`) or without one (None); its outcome (ok, partial, error, rejected: as the summary log line
        says); the upstream requests it sent, the upstream answers it took from the cache and those it took
        from identical calls in flight (`extensions.upstream`'s counts)."""
        if self.span is None:
            return
        counts = {
            "casegraph.upstream.calls": upstream.get("calls", 0),
            "casegraph.upstream.cache_hits": upstream.get("cacheHits", 0),
            "casegraph.upstream.joined": upstream.get("sharedCalls", 0),
        }
        attributes: dict[str, Any] = {name: count for name, count in counts.items() if count}
        attributes["casegraph.outcome"] = outcome
        if response_cache is not None:
            attributes["casegraph.response_cache"] = response_cache
        self.span.set_attributes(attributes)

    def executed(
        self, path: str, fallback: str | None, plan: str | None, cost: int | None, errors: int
    ) -> None:
        """What execution found: the path that answered and why not a faster one (`fallback`,
        `gateway/planning/plan.py`'s Route), whether the operation plan was `reused` or `compiled` for this
        request (None: not planned), its cost for these variables (the upstream calls it may make at most),
        and the number of errors of the answer."""
        if self.span is None:
            return
        attributes: dict[str, Any] = {"casegraph.graphql.errors": errors} if errors else {}
        attributes["casegraph.execution.path"] = path
        if fallback is not None:
            attributes["casegraph.execution.fallback"] = fallback
        if plan is not None:
            attributes["casegraph.plan"] = plan
            attributes["casegraph.cost"] = cost
        self.span.set_attributes(attributes)


NO_OPERATION = OperationSpan(None)  # tracing off


def operation_span(name: str | None, kind: str | None) -> OperationSpan:
    """A span for one GraphQL operation (`kind` query/mutation, `name` as the client gave it, None when
    anonymous); `planned` and `answered` add what is known later."""
    if _tracer is None:
        return NO_OPERATION
    attributes: dict[str, Any] = {}
    if kind:
        attributes["graphql.operation.type"] = kind
    if name:
        attributes["graphql.operation.name"] = name
    title = f"{kind} {name}" if kind and name else kind or "GraphQL operation"
    return OperationSpan(_tracer.start_span(title, kind=SpanKind.INTERNAL, attributes=attributes))


# --- upstream requests ----------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _server(base: str) -> tuple[str, int]:
    parts = urlsplit(base)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


class UpstreamSpan(CurrentSpan):
    """A CLIENT span around one upstream request and all its attempts, whose context goes upstream in the
    request's headers."""

    __slots__ = ("headers",)

    def __init__(self, span: Span | None, headers: MutableMapping[str, str]) -> None:
        super().__init__(span)
        self.headers = headers

    def __enter__(self) -> Self:
        super().__enter__()
        if self.span is not None:
            propagate.inject(self.headers)  # traceparent (and tracestate) naming this span
        return self


_NO_UPSTREAM = UpstreamSpan(None, {})


def upstream_span(
    api: str, base: str, path: str, headers: MutableMapping[str, str], breaker: Any, cache: str
) -> UpstreamSpan:
    """A span for a GET of `path` (its template only) on `api` at `base`, whose context goes into `headers`;
    `breaker` is the upstream's circuit breaker, `cache` `miss` or `off` (an uncached route)."""
    if _tracer is None:
        return _NO_UPSTREAM
    template = route_template(path)
    host, port = _server(base)
    attributes = {
        "http.request.method": "GET",
        "url.template": template,
        "server.address": host,
        "server.port": port,
        "casegraph.upstream.api": api,
        "casegraph.upstream.cache": cache,
        "casegraph.upstream.breaker": str(breaker.state.value),
    }
    span = _tracer.start_span(f"GET {template}", kind=SpanKind.CLIENT, attributes=attributes)
    return UpstreamSpan(span, headers)


def upstream_status(status: int) -> None:
    """An upstream attempt's HTTP status, on the current upstream span (the last attempt's stays)."""
    if _tracer is not None:
        trace.get_current_span().set_attribute("http.response.status_code", status)


def retry_event(attempt: int, error: str, wait: float) -> None:
    """Attempt `attempt` failed with `error` (a code) and is retried in `wait` seconds."""
    if _tracer is not None:
        trace.get_current_span().add_event(
            "upstream.retry",
            {"casegraph.upstream.attempt": attempt, "error.type": error, "casegraph.upstream.wait_s": wait},
        )


def batch_event(loader: str, size: int) -> None:
    """A dataloader batch of `size` keys, as an event on the current span (the operation's)."""
    if _tracer is not None:
        trace.get_current_span().add_event(
            "loader.batch", {"casegraph.loader": loader, "casegraph.loader.batch_size": size}
        )
