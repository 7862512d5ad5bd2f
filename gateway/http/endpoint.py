"""The GraphQL endpoint, `GET` and `POST /graphql`: every request through one pipeline, in plain sight.

    HTTP request  -> the media type to answer in, and a typed `GraphQLRequest` (`gateway/http/graphql_http.py`)
                  -> the caller's credential; the document: a trusted one by id, hash or text
                     (`gateway/http/trusted_documents.py`, already parsed and planned), a persisted query (APQ)
                     or the text sent, refused under TRUSTED_DOCUMENTS_MODE=enforce when it is not trusted
                  -> the operation the request names
                  -> an answer kept whole in the response cache, or execution through the schema's own API
                     (`schema.execute`); a GET's ETag, and 304 when `If-None-Match` names it
                  -> one `Outcome` (`gateway/http/answer.py`): the HTTP response, the request metrics and the
                     one summary log line

**Incremental answers** (`@defer`, `@stream`: `gateway/http/incremental.py`, docs/incremental.md) go out part by
part as `multipart/mixed` to a client that accepts it, merged into one JSON answer to any other. The parts are
sent from within the operation's span, which so covers them all; the last part carries `extensions.upstream`
for the whole operation; every part's errors are logged; a client that goes away mid-stream cancels the work
still running for it (outcome `cancelled`). Such answers are never kept in the response cache.

A request refused on the way (`Refusal`) is answered JSON with `extensions.code` and the status of the
GraphQL-over-HTTP draft. An unexpected exception is a 500 with `INTERNAL_SERVER_ERROR` and one log line. No
state passes by side channels: what a step finds is written on the request's `Outcome`.

**Overload**: each process answers at most `MAX_CONCURRENT_REQUESTS` GraphQL requests at once (`turns.py`). One
more waits for its turn at most `QUEUE_TIMEOUT` seconds, then is answered 503 `OVERLOADED` with `Retry-After: 1`
(outcome `shed`): a burst is absorbed, and clients retrying at once cannot starve the requests being answered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import ExperimentalIncrementalExecutionResults, GraphQLError
from starlette.types import Receive, Scope, Send
from strawberry.types.graphql import OperationType

from gateway.http import graphiql
from gateway.http.answer import (
    Outcome,
    encode_answer,
    executed,
    format_error,
    label_of,
    record_route,
    result_of,
    with_extensions,
)
from gateway.http.apq import HASH_MISMATCH, PersistedQueryError
from gateway.http.deadlines import Deadlines
from gateway.http.graphql_http import (
    GRAPHQL_RESPONSE_JSON,
    GraphQLRequest,
    Incoming,
    Refusal,
    answer_media,
    bad_request,
    body_timeout,
    cache_headers,
    check_operation,
    entity_tag,
    not_modified,
    persisted_refusal,
    read_request,
    wants_graphiql,
)
from gateway.http.incremental import SENT, IncrementalAnswer, Stream
from gateway.http.response_cache import Kept, response_key, reusable_until
from gateway.http.services import Services
from gateway.http.trusted_documents import (
    NOT_FOUND,
    Trusted,
    TrustedDocuments,
    not_trusted,
    only_introspection,
)
from gateway.http.turns import BODY_TIMEOUT, CREDENTIAL_SHARE, OVERLOADED, Turns, holder_of, share
from gateway.ops import metrics, tracing
from gateway.ops.errors import error_body
from gateway.planning.context import RequestContext
from gateway.planning.documents import Document, Operation, document_for, operation_in
from gateway.planning.limits import Limits
from gateway.upstream.credentials import Caller, CallStats, Credential, UnsendableCredential, credential_for

log = logging.getLogger("gateway.requests")
untrusted_log = logging.getLogger("gateway.trusted")

ALLOWED = {
    "GET": frozenset({OperationType.QUERY}),
    # the schema has no mutations or subscriptions: validation says so
    "POST": frozenset({OperationType.QUERY, OperationType.MUTATION, OperationType.SUBSCRIPTION}),
}
RETRY_AFTER = 1  # seconds a shed request is told to wait


@dataclass(frozen=True, slots=True)
class Read:
    """A request as read from HTTP, before it takes a turn."""

    request: GraphQLRequest
    credential: Credential


def client_address(scope: Scope) -> str:
    """The client's address as the server resolved it (from trusted proxies only: FORWARDED_ALLOW_IPS)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class GraphQLEndpoint:
    """The ASGI app of the /graphql route (every method comes here: others than GET and POST get 405)."""

    def __init__(
        self, services: Services, schema: strawberry.Schema, trusted: TrustedDocuments | None = None
    ) -> None:
        self.services = services
        self.settings = services.settings
        self.schema = schema
        self.trusted = trusted if trusted is not None else TrustedDocuments()
        self.limits = Limits.from_settings(self.settings)
        self.body_deadlines = Deadlines(self.settings.body_timeout)
        total = self.settings.max_concurrent_requests
        self.turns = Turns(
            total, share(total, self.settings.caller_share), share(total, self.settings.address_share)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Incoming(scope, receive)
        started = time.perf_counter()
        outcome = Outcome()
        try:
            try:
                read = await self._read(request, outcome)  # the body is read before any turn is taken
            except Exception as exc:
                outcome.failed(exc)
                read = None
            if read is None:
                await outcome.respond(scope, receive, send)
                return
            holder = holder_of(request.header.get("authorization"), client_address(scope))
            turns = self.turns
            shed = None if turns.take_now(holder) else await turns.take(holder, self.settings.queue_timeout)
            if shed is not None:
                self._shed(outcome, shed)
                await outcome.respond(scope, receive, send)
                return
            metrics.IN_FLIGHT.inc()
            try:
                try:
                    await self._answer(request, read, outcome, send)
                except Exception as exc:
                    outcome.failed(exc)
                if not outcome.streamed:
                    await outcome.respond(scope, receive, send)
            finally:
                self.turns.release(holder)
                metrics.IN_FLIGHT.dec()
        finally:
            # the path from the scope, not request.url (which builds the whole URL)
            outcome.record(request.method, request.scope["path"], time.perf_counter() - started)

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

    async def _read(self, request: Incoming, outcome: Outcome) -> Read | None:
        """The request as read from HTTP, its body within BODY_TIMEOUT; None when it is answered already
        (GraphiQL's page, a refusal)."""
        if self.settings.graphiql and wants_graphiql(request):
            outcome.page = graphiql.page(self.settings)  # GraphiQL, for a browser's GET without a query
            return None
        try:
            outcome.media = answer_media(request)
            with self.body_deadlines:  # BODY_TIMEOUT (a GET has no body: nothing to wait on)
                graphql_request = await read_request(request, outcome.media, self.settings.max_request_bytes)
            credential = credential_for(self.settings, request.header.get("authorization"))
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

    async def _answer(self, request: Incoming, read: Read, outcome: Outcome, send: Send) -> None:
        graphql_request, credential = read.request, read.credential
        try:
            query, trusted = await self._query(graphql_request, outcome)
            if trusted is not None:
                document: Document | None = trusted.document
                operation = operation_in(trusted.document, graphql_request.operation_name)
                outcome.document_id, outcome.document_name = trusted.id, trusted.name
            else:
                operation, document = self._untrusted(query, graphql_request)
            outcome.operation, outcome.label = operation.name, label_of(operation)
            check_operation(operation, graphql_request)
        except Refusal as refusal:
            outcome.refused(refusal, request.method)
            return
        with tracing.operation_span(operation.name, operation.kind) as span:
            stream = Stream(request.receive, send) if graphql_request.multipart is not None else None
            await self._run(graphql_request, query, credential, outcome, span, stream, document)
            span.answered(outcome.response_cache, outcome.result, outcome.upstream)
        if (
            graphql_request.persisted_hash
            and graphql_request.query
            and trusted is None
            and outcome.result != "rejected"
        ):
            # sent with its hash, and it parsed and validated: hash-only requests may name it from now on
            await self.services.persisted.register(graphql_request.persisted_hash, query)
            outcome.persisted_query = "registered"

    async def _query(self, request: GraphQLRequest, outcome: Outcome) -> tuple[str, Trusted | None]:
        """The query to run and the trusted document it is (None: not one): named by `documentId`, by a
        persisted-query hash (trusted, else registered by APQ), or sent as text (trusted when it is exactly a
        listed document). Under TRUSTED_DOCUMENTS_MODE=enforce an id or hash of no trusted document is refused."""
        trusted = self.trusted
        if request.document_id is not None:
            found = trusted.find(request.document_id)
            if found is None:
                shown = request.document_id[:100]
                if trusted.enforced:
                    raise not_trusted(f"No trusted document has the id {shown!r}.")
                raise Refusal(
                    404, NOT_FOUND, f"No persisted document has the id {shown!r}.", well_formed=True
                )
            return found.body, found
        digest = request.persisted_hash
        if digest is None:
            if request.query is None:
                raise bad_request("No GraphQL query found in the request: send a `query`.")
            return request.query, trusted.by_body.get(request.query)
        found = trusted.by_sha256.get(digest)
        if found is not None:
            if request.query is not None and request.query != found.body:
                outcome.persisted_query = "refused"
                error = PersistedQueryError("provided sha does not match query", HASH_MISMATCH, 400, True)
                raise persisted_refusal(error)
            outcome.persisted_query = "trusted"
            return found.body, found
        if trusted.enforced:
            outcome.persisted_query = "refused"
            raise not_trusted(f"No trusted document has the hash {digest}.")
        try:
            query = await self.services.persisted.resolve(digest, request.query)
        except PersistedQueryError as exc:
            outcome.persisted_query = "miss" if exc.code.endswith("NOT_FOUND") else "refused"
            raise persisted_refusal(exc) from None
        outcome.persisted_query = "hit" if request.query is None else "sent"
        return query, None

    def _untrusted(self, query: str, request: GraphQLRequest) -> tuple[Operation, Document | None]:
        """The operation of a document that is not trusted, and the document parsed (None when it does not
        parse: the executor reports why): refused under `enforce` (unless it only introspects and
        INTROSPECTION is on), counted (in `_record`) and logged once under `log`."""
        mode, max_tokens = self.trusted.mode, self.settings.max_query_tokens
        if mode == "enforce":
            if not self.settings.introspection:
                raise not_trusted("This document is not trusted.")
            try:
                introspects = only_introspection(document_for(query, max_tokens), request.operation_name)
            except GraphQLError:
                introspects = False
            if not introspects:
                raise not_trusted("This document is not trusted.")
        try:
            document: Document | None = document_for(query, max_tokens)
        except GraphQLError:
            document = None
        operation = (
            operation_in(document, request.operation_name) if document else Operation(None, None, False)
        )
        if mode == "log" and operation.parsed and self.trusted.first_run(operation.name, query):
            untrusted_log.warning(
                "untrusted document ran: operation %s (TRUSTED_DOCUMENTS_MODE=log; logged once per document)",
                operation.name or "anonymous",
                extra={"fields": {"operation": operation.name, "document": query[:2000]}},
            )
        return operation, document

    async def _run(
        self,
        request: GraphQLRequest,
        query: str,
        credential: Credential,
        outcome: Outcome,
        span: tracing.OperationSpan = tracing.NO_OPERATION,
        stream: Stream | None = None,
        document: Document | None = None,
    ) -> None:
        """The answer: kept whole in the response cache, else executed (and kept when it may be reused); sent
        as multipart/mixed on `stream` when the request asked for it. `document`: the query already parsed (a
        trusted document, or one from the documents' cache)."""
        responses = self.services.responses
        key = None
        if responses is not None and responses.enabled:
            key = response_key(credential, query, request.operation_name, request.variables)
            kept = await responses.get(key)
            if kept is not None:
                self._reused(kept, request, outcome)
                if request.multipart == "always":
                    await self._single_part(outcome, stream)
                return
            outcome.response_cache = "miss"
        context = RequestContext(self.services, Caller(credential), document=document, limits=self.limits)
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
                    executed(span, context, request.variables, len(answer.errors))
                    record_route(context)
                    if answer.errors:
                        self.schema.process_errors(answer.errors)
                return
        finally:
            context.release()
        executed(span, context, request.variables, len(result.errors or ()))
        record_route(context)
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
        until = reusable_until(stats)
        self._http_caching(request, outcome, encoded, until)
        if key is not None and responses is not None:
            await responses.put(key, encoded, outcome.result, stats, until)
        if request.multipart == "always":
            await self._single_part(outcome, stream)

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

            if not await _multipart(outcome, stream, parts()):
                return
        outcome.result = result_of(answer.errors, answer.data_missing)

    async def _single_part(self, outcome: Outcome, stream: Stream | None) -> None:
        """An answer as the one part of a multipart/mixed body, for a client that accepts nothing else."""
        if stream is not None:

            async def one() -> AsyncIterator[bytes]:
                yield outcome.body

            await _multipart(outcome, stream, one())

    def _reused(self, kept: Kept, request: GraphQLRequest, outcome: Outcome) -> None:
        outcome.status, outcome.result, outcome.response_cache = 200, kept.outcome, "hit"
        outcome.upstream = CallStats(cache_hits=kept.answers).counts()
        self._http_caching(request, outcome, kept.body, kept.expires_at or None)
        if outcome.status == 304:
            return
        extensions = {"upstream": outcome.upstream, "cacheControl": {"fromCache": True}}
        outcome.body = with_extensions(kept.body, extensions)

    def _http_caching(
        self, request: GraphQLRequest, outcome: Outcome, answer: bytes, until: float | None
    ) -> None:
        """A 200 GET answer's caching headers, its ETag (over `answer`: the encoded `data` and `errors`) when it
        may be reused until `until`, and 304 without a body when `If-None-Match` names that ETag. (An answer
        sent as the one part of a multipart body is not revalidated.)"""
        if request.method != "GET":
            return
        reusable = until if request.multipart != "always" else None
        headers = cache_headers(reusable, self.settings.auth_mode == "token")
        outcome.headers.update(headers)
        if headers["Cache-Control"] == "no-store":
            return
        etag = outcome.headers["ETag"] = entity_tag(answer, outcome.media)
        if not_modified(request.if_none_match, etag):
            outcome.status, outcome.body = 304, b""


async def _multipart(outcome: Outcome, stream: Stream, parts: AsyncIterator[bytes]) -> bool:
    """Send the outcome as multipart/mixed `parts`; False (and the outcome `cancelled` or `error`) when not
    all of them went."""
    outcome.streamed = True
    delivery = await stream.multipart(outcome.status, outcome.headers, parts)
    if delivery != SENT:
        outcome.result = delivery
    return delivery == SENT
