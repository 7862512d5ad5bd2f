"""Prometheus metrics (prometheus-client), served at `GET /metrics`: on the gateway's port, or on a port of its
own when `METRICS_PORT` is set (`serve_apart`).

    casegraph_requests_total{operation, outcome}          GraphQL requests answered
    casegraph_request_duration_seconds{operation}         their latency (histogram)
    casegraph_requests_in_flight                          GraphQL requests being answered now
    casegraph_requests_shed_total{reason}                 requests refused to protect the others (503, 408)
    casegraph_upstream_requests_total{api, route, status} HTTP requests sent upstream, retries included
    casegraph_upstream_request_duration_seconds{api, route}  request to last body byte (histogram)
    casegraph_upstream_retries_total{api}                 attempts beyond the first
    casegraph_upstream_rejected_total{api}                calls failed fast by an open circuit breaker
    casegraph_upstream_breaker_opened_total{api}          times a circuit breaker opened
    casegraph_upstream_breaker_state{api, state}          1 for the breaker's state, 0 for the others
    casegraph_cache_lookups_total{cache, result}          lookups in the upstream, response and
                                                          persisted-query caches: hit or miss
    casegraph_cache_errors_total{action}                  failed cache (Redis) operations
    casegraph_execution_total{path, fallback}             executed requests by the path that answered them:
                                                          constant (only `__typename` on the root), answers (decoded straight into them), projections
                                                          (compiled, over dicts) or graphql-core, and why not
                                                          a faster one (`gateway.planning.route.Fallback`; none)
    casegraph_documents_total{document, operation, trusted}  GraphQL requests by the document they ran:
                                                          a trusted one's id (`untrusted` for the others)
    casegraph_not_modified_total{operation}               GET answers revalidated: 304 Not Modified

Labels stay few: `route` is the upstream path with ids replaced by `{id}` (`/api/v2/cases/{id}`), `status`
the HTTP status or `timeout` / `error` / `cancelled` when none came, `operation` the GraphQL operation name
(`anonymous` without one, `invalid` when the document does not parse, `other` past `MAX_OPERATIONS`
distinct names per process: names come from clients, and each is a time series).

Several worker processes: when `PROMETHEUS_MULTIPROC_DIR` names a directory before the process starts,
prometheus-client keeps every value in files there and `/metrics` answers the sum over all workers
(`casegraph serve --workers N` sets it up by itself; `casegraph serve` empties it before it starts, as
values left by an earlier run would add up). Without it, each process counts only its own.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client import multiprocess as _multiprocess

from gateway.ops.routes import api_of, route_template

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_OPERATIONS = 100  # distinct operation names labelled per process; the rest count as "other"
BREAKER_STATES = ("closed", "open", "half_open")
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter(
    "casegraph_requests_total",
    "GraphQL requests answered, by operation name and outcome (ok, partial: field errors, "
    "rejected: refused before execution, error: failed)",
    ["operation", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "casegraph_request_duration_seconds",
    "Time to answer a GraphQL request, from its first byte to the end of the answer",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "casegraph_requests_in_flight",
    "GraphQL requests being answered now",
    multiprocess_mode="livesum",
)
SHED = Counter(
    "casegraph_requests_shed_total",
    "GraphQL requests refused to keep the gateway answering the others, by reason: overloaded (no turn "
    "within QUEUE_TIMEOUT), credential_share / address_share (the caller held its share of the turns), "
    "body_timeout (the body did not come within BODY_TIMEOUT: 408)",
    ["reason"],
)
UPSTREAM_REQUESTS = Counter(
    "casegraph_upstream_requests_total",
    "HTTP requests sent to an upstream (each retry counts), by route template and HTTP status "
    "(timeout, error or cancelled when no status came)",
    ["api", "route", "status"],
)
UPSTREAM_SECONDS = Histogram(
    "casegraph_upstream_request_duration_seconds",
    "Time of one upstream HTTP request, from sending it to its last body byte",
    ["api", "route"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_RETRIES = Counter("casegraph_upstream_retries_total", "Upstream attempts beyond the first", ["api"])
UPSTREAM_REJECTED = Counter(
    "casegraph_upstream_rejected_total",
    "Upstream calls failed fast by an open circuit breaker (nothing sent)",
    ["api"],
)
BREAKER_OPENED = Counter(
    "casegraph_upstream_breaker_opened_total", "Times an upstream's circuit breaker opened", ["api"]
)
BREAKER_STATE = Gauge(
    "casegraph_upstream_breaker_state",
    "An upstream's circuit breaker: 1 for its current state (with several workers, the worst any "
    "live worker has)",
    ["api", "state"],
    multiprocess_mode="livemax",
)
CACHE_LOOKUPS = Counter(
    "casegraph_cache_lookups_total",
    "Cache lookups by cache (upstream: upstream answers, response: whole GraphQL answers, apq: "
    "persisted queries) and result (hit, miss)",
    ["cache", "result"],
)
CACHE_ERRORS = Counter(
    "casegraph_cache_errors_total", "Failed cache operations (Redis down or slow)", ["action"]
)

EXECUTIONS = Counter(
    "casegraph_execution_total",
    "Executed GraphQL requests by the path that answered them (constant: only __typename on the root, answers: decoded straight into their answers, "
    "projections: compiled over dicts, graphql-core) and why not a faster one (fallback; none)",
    ["path", "fallback"],
)
DOCUMENTS = Counter(
    "casegraph_documents_total",
    "GraphQL requests by the document they ran: a trusted document's id (TRUSTED_DOCUMENTS), or `untrusted`; "
    "its operation name; trusted true or false",
    ["document", "operation", "trusted"],
)
NOT_MODIFIED = Counter(
    "casegraph_not_modified_total",
    "GET answers whose ETag the client already had (If-None-Match): answered 304 Not Modified without a body",
    ["operation"],
)

_operations: set[str] = set()
_breakers_opened: dict[str, int] = {}


@lru_cache(maxsize=4096)  # the label sets are bounded (operation names by MAX_OPERATIONS, routes by template)
def labelled(metric: Any, *values: str) -> Any:
    """The child of `metric` for these label values, looked up once (prometheus-client's `labels()` checks
    and locks on every call: a request that does nothing would pay for it four times)."""
    return metric.labels(*values)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def operation_label(name: str | None) -> str:
    """The `operation` label for an operation name: bounded in length, characters and number."""
    if name is None:
        return "anonymous"
    if not _NAME.fullmatch(name):
        return "other"
    if name not in _operations:
        if len(_operations) >= MAX_OPERATIONS:
            return "other"
        _operations.add(name)
    return name


def observe_request(operation: str, outcome: str, seconds: float) -> None:
    labelled(REQUESTS, operation, outcome).inc()
    labelled(REQUEST_SECONDS, operation).observe(seconds)


def observe_execution(path: str, fallback: str) -> None:
    labelled(EXECUTIONS, path, fallback).inc()


def observe_document(document_id: str | None, operation: str, status: int) -> None:
    """A request that read a document: which one (a trusted document's id, None for any other), and whether
    it was answered 304 Not Modified."""
    trusted = document_id is not None
    labelled(
        DOCUMENTS, document_id if trusted else "untrusted", operation, "true" if trusted else "false"
    ).inc()
    if status == 304:
        labelled(NOT_MODIFIED, operation).inc()


def observe_upstream(path: str, status: str, seconds: float) -> None:
    api, route = api_of(path), route_template(path)
    labelled(UPSTREAM_REQUESTS, api, route, status).inc()
    labelled(UPSTREAM_SECONDS, api, route).observe(seconds)


def observe_call(api: str, attempts: int, breaker: Any) -> None:
    """One logical upstream call through its guard (`gateway/upstream/resilience.py`): `attempts` HTTP
    requests were sent (0: the open breaker refused it); then the breaker's state."""
    if attempts == 0:
        labelled(UPSTREAM_REJECTED, api).inc()
    elif attempts > 1:
        labelled(UPSTREAM_RETRIES, api).inc(attempts - 1)
    observe_breaker(api, breaker)


def observe_breaker(api: str, breaker: Any) -> None:
    """The breaker's state into the gauge, and its openings since last seen into the counter. Any object
    with `state` (a `BreakerState` or its value) and `times_opened` will do."""
    state = getattr(breaker.state, "value", breaker.state)
    for name in BREAKER_STATES:
        labelled(BREAKER_STATE, api, name).set(1 if name == state else 0)
    opened = int(breaker.times_opened)
    seen = _breakers_opened.get(api, 0)
    if opened > seen:
        labelled(BREAKER_OPENED, api).inc(opened - seen)
    _breakers_opened[api] = opened


def shed(reason: str) -> None:
    labelled(SHED, reason).inc()


def cache_lookup(cache: str, hit: bool) -> None:
    labelled(CACHE_LOOKUPS, cache, "hit" if hit else "miss").inc()


def cache_error(action: str) -> None:
    labelled(CACHE_ERRORS, action).inc()


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format: every worker's when several share PROMETHEUS_MULTIPROC_DIR,
    else this process's (with its CPU and memory)."""
    return generate_latest(_registry()), CONTENT_TYPE_LATEST


def _registry() -> CollectorRegistry:
    if multiprocess_dir():
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def serve_apart(host: str, port: int) -> None:
    """The metrics on a port of their own (METRICS_PORT), from a thread of this process: the process that
    serves the app, or the supervisor of `--workers` (the sum over its workers, from PROMETHEUS_MULTIPROC_DIR).
    The breaker states are as the last upstream call left them (on the gateway's port, /metrics refreshes
    the answering worker's first)."""
    start_http_server(port, addr=host, registry=_registry())


def process_exiting() -> None:
    """This worker is stopping: its live gauges (in flight, breaker state) leave the sums."""
    directory = multiprocess_dir()
    if directory:
        _multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]
