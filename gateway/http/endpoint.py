"""The GraphQL endpoint, `GET` and `POST /graphql`: every request through one pipeline, in plain sight.

    HTTP request  -> the media type to answer in, and a typed `GraphQLRequest` (`gateway/http/graphql_http.py`)
                  -> the caller's credential, the persisted query, the operation the request names
                  -> an answer kept whole in the response cache, or execution through the schema's own API
                     (`schema.execute`)
                  -> one `Outcome`: the HTTP response, the request metrics and the one summary log line

**Incremental answers** (`@defer`, `@stream`: `gateway/http/incremental.py`, docs/incremental.md) go out part by
part as `multipart/mixed` to a client that accepts it, merged into one JSON answer to any other. The parts are
sent from within the operation's span, which so covers them all; the last part carries `extensions.upstream`
for the whole operation; every part's errors are logged; a client that goes away mid-stream cancels the work
still running for it (outcome `cancelled`). Such answers are never kept in the response cache.

A request refused on the way (`Refusal`) is answered JSON with `extensions.code` and the status of the
GraphQL-over-HTTP draft. An unexpected exception is a 500 with `INTERNAL_SERVER_ERROR` and one log line. No
state passes by side channels: what a step finds is written on the request's `Outcome`.

**Overload**: each process answers at most `MAX_CONCURRENT_REQUESTS` GraphQL requests at once. One more waits
for its turn (first come, first served) at most `QUEUE_TIMEOUT` seconds, then is answered 503 with
`Retry-After: 1` and the code `OVERLOADED` (counted with the outcome `shed`). So a burst is absorbed, no request
waits unseen for long, and clients that retry at once cannot turn the refusals into a busy loop that starves
the requests being answered (a 503 costs a wait, not just a round trip).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
import strawberry
from graphql import ExperimentalIncrementalExecutionResults, GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.types.graphql import OperationType

from gateway.http import graphiql
from gateway.http.apq import PersistedQueryError
from gateway.http.graphql_http import (
    CONTENT_TYPES,
    GRAPHQL_RESPONSE_JSON,
    JSON,
    GraphQLRequest,
    Refusal,
    answer_media,
    bad_request,
    body_timeout,
    cache_headers,
    persisted_refusal,
    read_request,
    wants_graphiql,
)
from gateway.http.incremental import (
    CLOSE,
    DELIMITER,
    MULTIPART_CONTENT_TYPE,
    IncrementalAnswer,
    multipart_part,
)
from gateway.http.observe import Operation, operation_of
from gateway.http.response_cache import Kept, response_key
from gateway.http.turns import BODY_TIMEOUT, CREDENTIAL_SHARE, OVERLOADED, Turns, holder_of, share
from gateway.ops import metrics, tracing
from gateway.ops.errors import GatewayError, is_wrong_shape
from gateway.ops.logs import one_line
from gateway.planning.limits import is_token_limit
from gateway.schema.context import Context, Services
from gateway.upstream.credentials import Caller, Credential, UnsendableCredential, credential_for

log = logging.getLogger("gateway.requests")

INTERNAL = {"code": "INTERNAL_SERVER_ERROR"}
WRONG_SHAPE = "The upstream answered this field with a value of the wrong shape."
ALLOWED = {
    "GET": frozenset({OperationType.QUERY}),
    # the schema has no mutations or subscriptions: validation says so
    "POST": frozenset({OperationType.QUERY, OperationType.MUTATION, OperationType.SUBSCRIPTION}),
}
RETRY_AFTER = 1  # seconds a shed request is told to wait


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
    (`gateway/planning/structs.py`) and the dicts of the other paths alike (orjson would write floats past 1e16
    differently, and refuses integers past 64 bits)."""
    return ENCODER.encode(answer)


def error_body(message: str, code: str, **extensions: Any) -> bytes:
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code, **extensions}}]})


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


@dataclass(frozen=True, slots=True)
class Read:
    """A request as read from HTTP, before it takes a turn."""

    request: GraphQLRequest
    credential: Credential


def client_address(scope: Scope) -> str:
    """The client's address as the server resolved it (from trusted proxies only: FORWARDED_ALLOW_IPS)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


@dataclass
class Outcome:
    """What became of one request: filled in by each step of the pipeline, then turned into the response,
    the request metrics and the summary log line."""

    status: int = 500
    body: bytes = b""
    media: str = JSON  # the answer's media type
    headers: dict[str, str] = field(default_factory=dict)
    # ok, partial (field errors), rejected (refused before execution), error, shed, cancelled (the client went
    # away during a multipart answer)
    result: str = "error"
    operation: str | None = None  # the operation's name as the client gave it
    label: str = "unknown"  # the metrics' `operation`; unknown: no document read
    upstream: dict[str, int] = field(default_factory=dict)  # calls, sharedCalls, cacheHits
    response_cache: str | None = None  # hit / miss (None: not looked up)
    persisted_query: str | None = None  # hit / miss / sent / registered / refused
    page: Response | None = None  # an answer that is no GraphQL response (GraphiQL's page)
    parts: int = 0  # the parts of an incremental answer (0: not incremental)
    streamed: bool = False  # sent part by part as multipart/mixed (the response is gone)

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

    def response(self) -> Response:
        if self.page is not None:
            return self.page
        return Response(self.body, self.status, self.headers, media_type=CONTENT_TYPES[self.media])


class GraphQLEndpoint:
    """The ASGI app of the /graphql route (every method comes here: others than GET and POST get 405)."""

    def __init__(self, services: Services, schema: strawberry.Schema) -> None:
        self.services = services
        self.settings = services.settings
        self.schema = schema
        total = self.settings.max_concurrent_requests
        self.turns = Turns(
            total, share(total, self.settings.caller_share), share(total, self.settings.address_share)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        started = time.perf_counter()
        outcome = Outcome()
        try:
            try:
                read = await self._read(request, outcome)  # the body is read before any turn is taken
            except Exception as exc:
                outcome.failed(exc)
                read = None
            if read is None:
                await outcome.response()(scope, receive, send)
                return
            holder = holder_of(request.headers.get("authorization"), client_address(scope))
            shed = await self.turns.take(holder, self.settings.queue_timeout)
            if shed is not None:
                self._shed(outcome, shed)
                await outcome.response()(scope, receive, send)
                return
            metrics.IN_FLIGHT.inc()
            try:
                try:
                    await self._answer(request, read, outcome, send)
                except Exception as exc:
                    outcome.failed(exc)
                if not outcome.streamed:
                    await outcome.response()(scope, receive, send)
            finally:
                self.turns.release(holder)
                metrics.IN_FLIGHT.dec()
        finally:
            self._record(request, outcome, time.perf_counter() - started)

    def _shed(self, outcome: Outcome, reason: str) -> None:
        limit = self.settings.max_concurrent_requests
        metrics.shed(reason)
        outcome.status, outcome.result = 503, "shed"
        outcome.headers = {"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"}
        if reason == OVERLOADED:
            why = f"The gateway is answering its limit of {limit} requests at once (MAX_CONCURRENT_REQUESTS)"
        else:
            which = "credential" if reason == CREDENTIAL_SHARE else "client address"
            why = (
                f"Your {which} holds its share of the gateway's {limit} turns (see docs/graphql-over-http.md)"
            )
        outcome.body = error_body(
            f"{why} and no turn came within {self.settings.queue_timeout:g} s: retry in {RETRY_AFTER} s.",
            "OVERLOADED",
            retryAfter=RETRY_AFTER,
            reason=reason,
        )

    async def _read(self, request: Request, outcome: Outcome) -> Read | None:
        """The request as read from HTTP, its body within BODY_TIMEOUT; None when it is answered already
        (GraphiQL's page, a refusal)."""
        if self.settings.graphiql and wants_graphiql(request):
            outcome.page = graphiql.page(self.settings)  # GraphiQL, for a browser's GET without a query
            return None
        try:
            outcome.media = answer_media(request)
            async with asyncio.timeout(self.settings.body_timeout):  # a GET has no body: nothing to wait on
                graphql_request = await read_request(request, outcome.media, self.settings.max_request_bytes)
            credential = credential_for(self.settings, request.headers.get("authorization"))
        except UnsendableCredential as exc:
            outcome.refused(Refusal(400, exc.code, exc.message), request.method)
            return None
        except Refusal as refusal:
            outcome.refused(refusal, request.method)
            return None
        except TimeoutError:  # the body did not come in time: 408, and the connection closed
            outcome.refused(body_timeout(self.settings.body_timeout), request.method)
            outcome.result = "shed"
            metrics.shed(BODY_TIMEOUT)
            return None
        return Read(graphql_request, credential)

    async def _answer(self, request: Request, read: Read, outcome: Outcome, send: Send) -> None:
        graphql_request, credential = read.request, read.credential
        try:
            query = await self._query(graphql_request, outcome)
            operation = operation_of(query, graphql_request.operation_name, self.settings.max_query_tokens)
            outcome.operation, outcome.label = operation.name, label_of(operation)
            check_operation(operation, graphql_request)
        except Refusal as refusal:
            outcome.refused(refusal, request.method)
            return
        with tracing.operation_span(operation.name, operation.kind) as span:
            await self._run(graphql_request, query, credential, outcome, span, Stream(request.receive, send))
            span.answered(outcome.response_cache, outcome.result, outcome.upstream)
        if graphql_request.persisted_hash and graphql_request.query and outcome.result != "rejected":
            # sent with its hash, and it parsed and validated: hash-only requests may name it from now on
            await self.services.persisted.register(graphql_request.persisted_hash, query)
            outcome.persisted_query = "registered"

    async def _query(self, request: GraphQLRequest, outcome: Outcome) -> str:
        """The query to run: as sent, or the one registered under the persisted-query hash."""
        if request.persisted_hash is None:
            if request.query is None:
                raise bad_request("No GraphQL query found in the request: send a `query`.")
            return request.query
        try:
            query = await self.services.persisted.resolve(request.persisted_hash, request.query)
        except PersistedQueryError as exc:
            outcome.persisted_query = "miss" if exc.code.endswith("NOT_FOUND") else "refused"
            raise persisted_refusal(exc) from None
        outcome.persisted_query = "hit" if request.query is None else "sent"
        return query

    async def _run(
        self,
        request: GraphQLRequest,
        query: str,
        credential: Credential,
        outcome: Outcome,
        span: tracing.OperationSpan = tracing.NO_OPERATION,
        stream: Stream | None = None,
    ) -> None:
        """The answer: kept whole in the response cache, else executed (and kept when it may be reused); sent
        as multipart/mixed on `stream` when the request asked for it."""
        responses = self.services.responses
        key = None
        if responses is not None and responses.enabled:
            key = response_key(credential, query, request.operation_name, request.variables)
            kept = await responses.get(key)
            if kept is not None:
                self._reused(kept, request, outcome)
                await self._single_part(request, outcome, stream)
                return
            outcome.response_cache = "miss"
        context = Context(self.services, Caller(credential))
        stats = context.caller.stats
        if request.method == "GET":
            outcome.headers.update(cache_headers(None, False))
        try:
            result = await self.schema.execute(
                query,
                variable_values=request.variables,
                context_value=context,
                operation_name=request.operation_name,
                allowed_operation_types=ALLOWED[request.method],
            )
            if isinstance(result, ExperimentalIncrementalExecutionResults):
                answer = IncrementalAnswer(result, format_error)
                try:
                    await self._incremental(answer, request, outcome, stream, stats.report)
                finally:
                    outcome.parts = answer.parts
                    outcome.upstream = stats.counts()
                    span.executed(context, request.variables, len(answer.errors))
                    if answer.errors:
                        self.schema.process_errors(answer.errors)
                return
        finally:
            context.release()
        span.executed(context, request.variables, len(result.errors or ()))
        outcome.upstream = stats.counts()
        errors = [format_error(error) for error in result.errors] if result.errors else None
        if result.data is None and result.errors and all(error.path is None for error in result.errors):
            # a request error, refused before execution: the draft's 400 without `data` (200 for JSON)
            strict = outcome.media == GRAPHQL_RESPONSE_JSON
            answer = {"errors": errors} if strict else {"data": None, "errors": errors}
            outcome.status, outcome.result = (400 if strict else 200), "rejected"
            outcome.body = with_extensions(encode_answer(answer), result.extensions)
            return
        encoded = encode_answer({"data": result.data, "errors": errors} if errors else {"data": result.data})
        outcome.status = 200
        outcome.result = "ok" if not errors else ("partial" if result.data is not None else "error")
        outcome.body = with_extensions(encoded, result.extensions)
        if key is not None and responses is not None:
            await responses.put(key, encoded, outcome.result, stats)
        await self._single_part(request, outcome, stream)

    async def _incremental(
        self,
        answer: IncrementalAnswer,
        request: GraphQLRequest,
        outcome: Outcome,
        stream: Stream | None,
        report: Callable[[], dict[str, Any]],
    ) -> None:
        """An incremental answer: part by part to a client that accepts multipart/mixed, else merged."""
        outcome.status = 200
        if request.multipart is None or stream is None:
            merged = await answer.merged()
            outcome.body = with_extensions(encode_answer(merged), report())
        else:

            async def parts() -> AsyncIterator[bytes]:
                first = answer.initial()
                if not first["hasNext"]:
                    first["extensions"] = report()
                yield encode_answer(first)
                async for part in answer.subsequent():
                    if not part["hasNext"]:
                        part["extensions"] = report()  # the whole operation's, once its work is done
                    yield encode_answer(part)

            await stream.parts(outcome, parts())
        if outcome.result != "cancelled":
            outcome.result = _result_of(answer.errors, answer.data_missing)

    async def _single_part(self, request: GraphQLRequest, outcome: Outcome, stream: Stream | None) -> None:
        """An answer as the one part of a multipart/mixed body, for a client that accepts nothing else."""
        if request.multipart == "always" and stream is not None:

            async def one() -> AsyncIterator[bytes]:
                yield outcome.body

            result = outcome.result
            await stream.parts(outcome, one())
            if outcome.result != "cancelled":
                outcome.result = result

    def _reused(self, kept: Kept, request: GraphQLRequest, outcome: Outcome) -> None:
        outcome.status, outcome.result, outcome.response_cache = 200, kept.outcome, "hit"
        outcome.upstream = {"calls": 0, "sharedCalls": 0, "cacheHits": kept.answers}
        extensions = {"upstream": outcome.upstream, "cacheControl": {"fromCache": True}}
        outcome.body = with_extensions(kept.body, extensions)
        if request.method == "GET":
            outcome.headers.update(cache_headers(kept.expires_at, self.settings.auth_mode == "token"))

    def _record(self, request: Request, outcome: Outcome, seconds: float) -> None:
        """The request metrics and its one summary line, from its outcome (once the answer has gone)."""
        duration_ms = round(seconds * 1000, 2)
        method, path = request.method, request.url.path
        if outcome.page is not None:
            log.debug("%s %s %d %.1f ms", method, path, outcome.page.status_code, duration_ms)
            return
        metrics.observe_request(outcome.label, outcome.result, seconds)
        upstream = outcome.upstream
        fields = {
            "method": method,
            "path": path,
            "status": outcome.status,
            "operation": outcome.operation,
            "outcome": outcome.result,
            "duration_ms": duration_ms,
            "upstream_calls": upstream.get("calls", 0),
            "shared_calls": upstream.get("sharedCalls", 0),
            "cache_hits": upstream.get("cacheHits", 0),
            "response_cache": outcome.response_cache,
            "persisted_query": outcome.persisted_query,
            "parts": outcome.parts,  # of an incremental answer (0: not incremental)
        }
        log.info(
            "%s %s %d %s %s %.1f ms",
            method,
            path,
            outcome.status,
            outcome.operation or "-",
            outcome.result,
            duration_ms,
            extra={"fields": fields},
        )


def _result_of(errors: list[GraphQLError], data_missing: bool) -> str:
    return "ok" if not errors else ("error" if data_missing else "partial")


@dataclass(frozen=True, slots=True)
class Stream:
    """The ASGI channel of one request, to send an answer part by part."""

    receive: Receive
    send: Send

    async def parts(self, outcome: Outcome, parts: AsyncIterator[bytes]) -> None:
        """Send `parts` (encoded JSON) as a multipart/mixed body, each as soon as it is made, while listening
        for the client going away: then the parts' producer is cancelled (graphql-core's work for the later
        parts with it) and the outcome is `cancelled`. A failure after the first byte can only end the body
        early (logged; the client sees no closing delimiter)."""
        outcome.streamed = True
        headers = {**outcome.headers, "Content-Type": MULTIPART_CONTENT_TYPE}
        await self.send(
            {
                "type": "http.response.start",
                "status": outcome.status,
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            }
        )

        async def write() -> None:
            body = DELIMITER
            try:
                async for encoded in parts:
                    await self.send(
                        {
                            "type": "http.response.body",
                            "body": body + multipart_part(encoded),
                            "more_body": True,
                        }
                    )
                    body = b""
            except Exception as exc:
                log.error("internal error while sending a multipart answer: %s", one_line(exc))
                outcome.result = "error"
                await self.send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await self.send({"type": "http.response.body", "body": CLOSE, "more_body": False})

        async def gone() -> None:
            while (await self.receive())["type"] != "http.disconnect":
                pass

        writing, watching = asyncio.ensure_future(write()), asyncio.ensure_future(gone())
        try:
            await asyncio.wait((writing, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
            if not writing.done():
                writing.cancel()
                outcome.result = "cancelled"
            with contextlib.suppress(asyncio.CancelledError):
                await writing
            with contextlib.suppress(asyncio.CancelledError):
                await watching


def check_operation(operation: Operation, request: GraphQLRequest) -> None:
    """Refuse what cannot run: a document naming no single operation to run (the GraphQL spec's GetOperation:
    several and no `operationName`, or a name it does not define), a mutation or subscription by GET."""
    if operation.parsed and operation.kind is None:
        if request.operation_name is None:
            message = "The document must contain one operation, or `operationName` must name the one to run."
        else:
            message = f"Unknown operation named '{request.operation_name[:100]}'."
        raise Refusal(400, "OPERATION_RESOLUTION_FAILURE", message, well_formed=True)
    if request.method == "GET" and operation.kind in ("mutation", "subscription"):
        raise Refusal(
            405,
            "METHOD_NOT_ALLOWED",
            f"{operation.kind.capitalize()}s are not allowed over GET: use POST.",  # type: ignore[union-attr]
            {"Allow": "POST"},
        )
