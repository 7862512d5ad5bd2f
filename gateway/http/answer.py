"""What the GraphQL endpoint answers: errors as the client sees them, the answer encoded once, and the
request's `Outcome` (the response, its metrics and its log line)."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import orjson
from graphql import GraphQLError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.http.graphql_http import CONTENT_TYPES, JSON, Refusal, cache_headers
from gateway.ops import metrics, tracing
from gateway.ops.errors import GatewayError, error_body, is_wrong_shape
from gateway.ops.logs import one_line
from gateway.planning.context import RequestContext
from gateway.planning.documents import Operation
from gateway.planning.limits import is_token_limit

log = logging.getLogger("gateway.requests")

INTERNAL = {"code": "INTERNAL_SERVER_ERROR"}
RAW_CONTENT_TYPES = {media: value.encode("latin-1") for media, value in CONTENT_TYPES.items()}
WRONG_SHAPE = "The upstream answered this field with a value of the wrong shape."


def format_error(error: GraphQLError) -> dict[str, Any]:
    """An error as the client sees it: always an `extensions.code`, never an internal detail.

    Errors without a path come from parsing, validation or variable coercion: their message is for the
    caller. Field errors keep the message of a `GatewayError`; a value graphql-core could not complete is the
    upstream's (UPSTREAM_BAD_RESPONSE, without the value); anything else is masked (and logged).
    """
    formatted: dict[str, Any] = dict(error.formatted)
    original = error.original_error
    if error.path is None:
        if (error.extensions or {}).get("code"):  # a limit's own code (gateway/planning/limits.py)
            code = error.extensions["code"]  # type: ignore[index]
        elif is_token_limit(error):
            code = "QUERY_TOO_LARGE"
        elif error.message.startswith("Syntax Error"):
            code = "GRAPHQL_PARSE_FAILED"
        elif error.message.startswith("Variable '$"):
            code = "BAD_USER_INPUT"
        else:
            code = "GRAPHQL_VALIDATION_FAILED"
        formatted["extensions"] = {**(error.extensions or {}), "code": code}
    elif isinstance(original, GatewayError):
        formatted["extensions"] = original.extensions
    elif is_wrong_shape(error):
        formatted["message"] = WRONG_SHAPE
        formatted["extensions"] = {"code": "UPSTREAM_BAD_RESPONSE"}
    else:
        formatted["message"] = "Internal server error."
        formatted["extensions"] = INTERNAL
    return formatted


ENCODER = msgspec.json.Encoder()


def encode_answer(answer: Any) -> bytes:
    """An answer as JSON bytes, by msgspec: it writes the objects decoded straight into their answers
    (`gateway/planning/answers.py`) and the dicts of the other paths alike (orjson would write floats past 1e16
    differently, and refuses integers past 64 bits)."""
    return ENCODER.encode(answer)


def with_extensions(encoded: bytes, extensions: dict[str, Any] | None) -> bytes:
    """An encoded answer object (`{"data": ...}`) with `extensions` added as its last entry."""
    if not extensions:
        return encoded
    return b'%s,"extensions":%s}' % (encoded[:-1], orjson.dumps(extensions))


def label_of(operation: Operation) -> str:
    """The metrics' `operation` label: `invalid` when the document does not parse, `anonymous` without a name."""
    if not operation.parsed:
        return "invalid"
    return metrics.operation_label(operation.name)


class Outcome:
    """What became of one request: filled in by each step of the pipeline, then turned into the response,
    the request metrics and the summary log line. (A plain class, its defaults on the class: made for every
    request, it sets only its two dictionaries.)"""

    status: int = 500
    body: bytes = b""
    media: str = JSON  # the answer's media type
    headers: dict[str, str]
    # ok, partial (field errors), rejected (refused before execution), error, shed, cancelled (the client went
    # away during a multipart answer)
    result: str = "error"
    operation: str | None = None  # the operation's name as the client gave it
    label: str = "unknown"  # the metrics' `operation`; unknown: no document read
    upstream: dict[str, int]  # calls, sharedCalls, cacheHits
    response_cache: str | None = None  # hit / miss (None: not looked up)
    persisted_query: str | None = None  # hit / miss / sent / registered / refused / trusted
    document_id: str | None = None  # the trusted document's id (None: not a trusted document)
    document_name: str | None = None  # its name in the manifest
    page: Response | None = None  # an answer that is no GraphQL response (GraphiQL's page)
    parts: int = 0  # the parts of an incremental answer (0: not incremental)
    streamed: bool = False  # sent part by part as multipart/mixed (the response is gone)

    def __init__(self) -> None:
        self.headers, self.upstream = {}, {}

    @property
    def trusted(self) -> bool:
        return self.document_id is not None

    def refused(self, refusal: Refusal, method: str) -> None:
        self.status = refusal.status_for(self.media)
        self.body = refusal.body()
        self.result = "rejected"
        self.headers.update(refusal.headers)
        self.headers.update(cache_headers(None, False) if method == "GET" else {"Cache-Control": "no-store"})

    def failed(self, exc: Exception) -> None:
        """A bug: 500, the details in one log line only."""
        log.error("internal error answering the request: %s", one_line(exc))
        self.status, self.result, self.media, self.headers = 500, "error", JSON, {}
        self.body = error_body("Internal server error.", "INTERNAL_SERVER_ERROR")

    async def respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the response: its two ASGI messages, with the headers Starlette's `Response` would give (no
        body, length or type for a 304)."""
        if self.page is not None:
            await self.page(scope, receive, send)
            return
        headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self.headers.items()
        ]
        body = b""
        if self.status != 304:
            body = self.body
            headers.append((b"content-length", b"%d" % len(body)))
            headers.append((b"content-type", RAW_CONTENT_TYPES[self.media]))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def record(self, method: str, path: str, seconds: float) -> None:
        """The request metrics and its one summary line, from its outcome (once the answer has gone)."""
        duration_ms = round(seconds * 1000, 2)
        if self.page is not None:
            log.debug("%s %s %d %.1f ms", method, path, self.page.status_code, duration_ms)
            return
        metrics.observe_request(self.label, self.result, seconds)
        if self.label != "unknown":  # a document was read
            metrics.observe_document(self.document_id, self.label, self.status)
        if not log.isEnabledFor(logging.INFO):
            return
        upstream = self.upstream
        fields = {
            "method": method,
            "path": path,
            "status": self.status,
            "operation": self.operation,
            "outcome": self.result,
            "duration_ms": duration_ms,
            "upstream_calls": upstream.get("calls", 0),
            "shared_calls": upstream.get("sharedCalls", 0),
            "cache_hits": upstream.get("cacheHits", 0),
            "response_cache": self.response_cache,
            "persisted_query": self.persisted_query,
            "parts": self.parts,  # of an incremental answer (0: not incremental)
            "document_id": self.document_id,
            "document_name": self.document_name,
            "trusted": self.trusted,
        }
        log.info(
            "%s %s %d %s %s %.1f ms",
            method,
            path,
            self.status,
            self.operation or "-",
            self.result,
            duration_ms,
            extra={"fields": fields},
        )


def result_of(errors: list[GraphQLError], data_missing: bool) -> str:
    return "ok" if not errors else ("error" if data_missing else "partial")


def record_route(context: RequestContext) -> None:
    """Which path answered an executed request and why not a faster one (`gateway.planning.route.Route`): counted,
    and logged at debug. A request refused before execution has no plan and is not counted."""
    if context.plan is not None:
        route = context.route
        fallback = route.fallback.value if route.fallback is not None else "none"
        metrics.observe_execution(route.path, fallback)
        log.debug("executed by %s (fallback: %s)", route.path, fallback)


def executed(
    span: tracing.OperationSpan, context: RequestContext, variables: dict[str, Any] | None, errors: int
) -> None:
    """The operation's span learns the path that answered, how it was planned, what it costs for these
    variables, and its errors (nothing to compute when tracing is off)."""
    if not span.recording:
        return
    route, plan = context.route, context.plan
    fallback = route.fallback.value if route.fallback is not None else None
    if plan is None:
        span.executed(route.path, fallback, None, None, errors)
        return
    cost = plan.cost(variables or {}, context.limits)
    span.executed(route.path, fallback, "reused" if context.plan_reused else "compiled", cost, errors)
