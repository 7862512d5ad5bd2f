"""What every request leaves behind: its id, one summary log line, and the request metrics.

`Observe` is the outermost middleware. It takes the request id from `X-Request-ID` (or makes one), sends it
back in the answer's `X-Request-ID`, and keeps it in `gateway.logs.request_id` while the request runs, so
every log line and every upstream call of the request carries it. The GraphQL view fills the request's
`RequestInfo` (operation, outcome, upstream cost, caches used); when the answer has gone, `Observe` writes
one log line and the `casegraph_requests_*` metrics from it.

    {"time": "...", "level": "info", "logger": "gateway.requests", "message": "POST /graphql 200 Cases ok 12.4 ms",
     "request_id": "3f2c...", "method": "POST", "path": "/graphql", "status": 200, "operation": "Cases",
     "outcome": "ok", "duration_ms": 12.4, "upstream_calls": 1, "shared_calls": 0, "cache_hits": 0,
     "response_cache": "miss", "persisted_query": null}
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import metrics
from gateway.logs import accept_request_id, request_id
from gateway.plan import Operation, operation_of

__all__ = ["Observe", "Operation", "RequestInfo", "current_info", "note_operation", "operation_of"]

log = logging.getLogger("gateway.requests")

GRAPHQL_PATH = "/graphql"


@dataclass
class RequestInfo:
    """One HTTP request as the summary line and the metrics describe it."""

    request_id: str
    method: str
    path: str
    operation: str | None = None  # the operation's name as the client gave it (None: anonymous)
    label: str = "unknown"  # the metrics' `operation` (`note_operation`); unknown: no document read
    outcome: str | None = None  # ok, partial, rejected, error (set by the GraphQL view)
    upstream: dict[str, Any] = field(default_factory=dict)  # extensions.upstream of the answer
    response_cache: str | None = None  # hit / miss (None: not looked up)
    persisted_query: str | None = None  # hit / miss / registered / mismatch
    graphql: bool = True  # False for answers that are no GraphQL response (GraphiQL's page)


current: ContextVar[RequestInfo | None] = ContextVar("casegraph_request", default=None)


def current_info() -> RequestInfo | None:
    return current.get()


def note_operation(info: RequestInfo, operation: Operation) -> None:
    info.operation = operation.name
    if not operation.parsed:
        info.label = "invalid"
    elif operation.name is None:
        info.label = "anonymous"
    else:
        info.label = metrics.operation_label(operation.name)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class Observe:
    """ASGI middleware: request id in and out, the summary log line, the request metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = accept_request_id(_header(scope, b"x-request-id"))
        info = RequestInfo(rid, scope["method"], scope["path"])
        counted = info.path == GRAPHQL_PATH and info.method in ("GET", "POST")
        rid_token = request_id.set(rid)
        info_token = current.set(info)
        status = 500
        started = time.perf_counter()
        if counted:
            metrics.IN_FLIGHT.inc()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            if counted:
                metrics.IN_FLIGHT.dec()
            try:
                self._record(info, status, seconds, counted)
            finally:
                current.reset(info_token)
                request_id.reset(rid_token)

    @staticmethod
    def _record(info: RequestInfo, status: int, seconds: float, counted: bool) -> None:
        duration_ms = round(seconds * 1000, 2)
        if not counted or not info.graphql:
            log.debug("%s %s %d %.1f ms", info.method, info.path, status, duration_ms)
            return
        outcome = info.outcome or ("error" if status >= 500 else "rejected")
        metrics.observe_request(info.label, outcome, seconds)
        upstream = info.upstream
        fields = {
            "method": info.method,
            "path": info.path,
            "status": status,
            "operation": info.operation,
            "outcome": outcome,
            "duration_ms": duration_ms,
            "upstream_calls": upstream.get("calls", 0),
            "shared_calls": upstream.get("sharedCalls", 0),
            "cache_hits": upstream.get("cacheHits", 0),
            "response_cache": info.response_cache,
            "persisted_query": info.persisted_query,
        }
        log.info(
            "%s %s %d %s %s %.1f ms",
            info.method,
            info.path,
            status,
            info.operation or "-",
            outcome,
            duration_ms,
            extra={"fields": fields},
        )
