"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/): what `/graphql` answers, in what
media type, with which status and headers. `GraphQLOverHTTP` is a mixin placed before the gateway's view
(`gateway.app.GatewayView`), whose hooks it wraps.

- **Media type** from `Accept`: `application/graphql-response+json` or `application/json`, whichever the
  client ranks higher (q-values; a type named outright beats one reached by a wildcard, and the spec's
  preferred `application/graphql-response+json` wins a tie, so `*/*` and a missing `Accept` get it); an
  `Accept` allowing neither gets 406.
- **Status codes**: with `application/json` every well-formed request gets 200, request errors included
  (parse, validation, variables, query limits); with `application/graphql-response+json` a request error
  gets 400 and its body no `data` entry, while an executed operation gets 200 (field errors included).
  Malformed requests (bad JSON, a non-string query, batches) get 400 either way.
- **GET** runs queries only: a mutation (or subscription) sent by GET gets 405 with `Allow: POST`.
- **Persisted queries** (`gateway/apq.py`): resolved before execution; a miss gets 200 (`application/json`)
  or 404, with `Cache-Control: no-store`.
- **Caching by HTTP**: a GET answered from the response cache says for how long it stays valid,
  `Cache-Control: public, max-age=N` when every caller shares one upstream credential (`AUTH_MODE=token`), else
  `private, max-age=N` (with `Vary: Authorization`) so that only the caller's own browser keeps it; any other
  GET answer is `no-store`. Both `Vary: Accept`. POST answers carry no caching headers.
"""

from __future__ import annotations

import dataclasses
import time
from contextvars import ContextVar
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from gateway.apq import PersistedQueries, PersistedQueryError, requested_hash
from gateway.observe import RequestInfo, current_info, note_operation, operation_of

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
SUPPORTED = (GRAPHQL_RESPONSE_JSON, JSON)  # in the server's order of preference
CONTENT_TYPES = {GRAPHQL_RESPONSE_JSON: f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8", JSON: JSON}

_request: ContextVar[Request | None] = ContextVar("casegraph_http_request", default=None)


def negotiate(accept: str | None) -> str | None:
    """The response media type for an `Accept` header; None when it allows neither supported type."""
    if accept is None or not accept.strip():
        return GRAPHQL_RESPONSE_JSON  # the spec's default since 2025-01-01
    best: tuple[float, int, int] | None = None
    chosen = None
    for preference, media in enumerate(SUPPORTED):
        kind = media.partition("/")[0]
        quality, specificity = 0.0, -1
        for item in accept.split(","):
            parts = [p.strip() for p in item.split(";")]
            range_ = parts[0].lower()
            q = 1.0
            for param in parts[1:]:
                name, _, value = param.partition("=")
                if name.strip().lower() == "q":
                    try:
                        q = float(value)
                    except ValueError:
                        q = 0.0
            if range_ == media:
                rank = 2
            elif range_ == f"{kind}/*":
                rank = 1
            elif range_ == "*/*":
                rank = 0
            else:
                continue
            if rank > specificity:  # the most specific range that matches decides the quality
                quality, specificity = q, rank
        if quality <= 0:
            continue
        key = (quality, specificity, -preference)
        if best is None or key > best:
            best, chosen = key, media
    return chosen


def is_request_error(response: dict[str, Any]) -> bool:
    """A GraphQL request error: refused before execution (no data, and no error has a path)."""
    errors = response.get("errors")
    return (
        response.get("data") is None
        and bool(errors)
        and all(isinstance(e, dict) and e.get("path") is None for e in errors)
    )


def outcome_of(response: dict[str, Any]) -> str:
    if is_request_error(response):
        return "rejected"
    if response.get("errors"):
        return "partial" if response.get("data") is not None else "error"
    return "ok"


class GraphQLOverHTTP:
    """Mixin for the gateway's strawberry view (it needs `services` with `persisted`, `settings`)."""

    services: Any

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)  # type: ignore[misc]
            return
        request = Request(scope, receive)
        media = negotiate(request.headers.get("accept"))
        request.state.casegraph_media = media or JSON
        info = current_info()
        token = _request.set(request)
        try:
            if media is None and not self._renders_ide(request):
                raise HTTPException(406, f"Not acceptable: this endpoint answers {' or '.join(SUPPORTED)}.")
            response = await self.run(request)  # type: ignore[attr-defined]
        except HTTPException as exc:
            # the view's only 405 is a mutation sent by GET: only POST will do (the route answers other
            # methods, HEAD included, with its own 405 naming GET and POST)
            headers = {"Allow": "POST"} if exc.status_code == 405 else None
            response = PlainTextResponse(exc.reason, exc.status_code, headers=headers)
        except PersistedQueryError as exc:
            status = exc.status if media == GRAPHQL_RESPONSE_JSON or exc.malformed else 200
            response = Response(
                self.encode_json(exc.body()),  # type: ignore[attr-defined]
                status,
                {"Cache-Control": "no-store"},
                media_type=CONTENT_TYPES[media or JSON],
            )
            if info is not None:
                info.outcome = "rejected"
        finally:
            _request.reset(token)
        if info is not None and response.media_type == "text/html":
            info.graphql = False  # GraphiQL's page
        await response(scope, receive, send)

    def should_render_graphql_ide(self, request: Any) -> bool:
        """GraphiQL for a browser's GET without a query, but never for a persisted query's hash-only GET."""
        return "extensions" not in request.query_params and super().should_render_graphql_ide(request)  # type: ignore[misc, no-any-return]

    def _renders_ide(self, request: Request) -> bool:
        adapter = self.request_adapter_class(request)  # type: ignore[attr-defined]
        return bool(self.graphql_ide) and self.should_render_graphql_ide(adapter)  # type: ignore[attr-defined]

    async def get_sub_response(self, request: Request) -> Response:
        sub: Response = await super().get_sub_response(request)  # type: ignore[misc]
        sub.casegraph_media = getattr(request.state, "casegraph_media", JSON)  # type: ignore[attr-defined]
        request.state.casegraph_sub = sub
        return sub

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        media = getattr(sub_response, "casegraph_media", JSON)
        response = Response(
            self.encode_json(response_data),  # type: ignore[attr-defined]
            status_code=sub_response.status_code or 200,
            media_type=CONTENT_TYPES[media],
        )
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        return response

    async def parse_http_body(self, request_adapter: Any) -> Any:
        """The request, with the query of a persisted-query hash filled in."""
        data = await super().parse_http_body(request_adapter)  # type: ignore[misc]
        if not isinstance(data, GraphQLRequestData):
            return data  # a batch: refused by strawberry (batching is off)
        digest = requested_hash(data.extensions)
        if digest is None:
            return data
        persisted: PersistedQueries = self.services.persisted
        info = current_info()
        try:
            query = await persisted.resolve(digest, data.query)
        except PersistedQueryError as exc:
            if info is not None:
                info.persisted_query = "miss" if exc.code.endswith("NOT_FOUND") else "refused"
            raise
        if info is not None:
            info.persisted_query = "hit" if data.query is None else "sent"
        if data.query is None:
            return dataclasses.replace(data, query=query)
        request = _request.get()
        if request is not None:  # registered once it has passed parsing and validation
            request.state.casegraph_register = (digest, query)
        return data

    async def execute_single(self, **kwargs: Any) -> ExecutionResult:
        request_data: GraphQLRequestData = kwargs["request_data"]
        method = kwargs["request_adapter"].method
        info = current_info()
        if request_data.query:
            operation = operation_of(
                request_data.query,
                request_data.operation_name,
                self.services.settings.max_query_tokens,
            )
            if info is not None:
                note_operation(info, operation)
            if method == "GET" and operation.kind in ("mutation", "subscription"):
                raise HTTPException(
                    405, f"{operation.kind.capitalize()}s are not allowed over GET: use POST."
                )
        try:
            return await super().execute_single(**kwargs)  # type: ignore[misc, no-any-return]
        except HTTPException as exc:
            cause = exc.__cause__
            if method == "GET" and isinstance(cause, InvalidOperationTypeError):
                raise HTTPException(405, exc.reason) from cause
            raise

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response: dict[str, Any] = await super().process_result(request, result)  # type: ignore[misc]
        info: RequestInfo | None = current_info()
        sub: Response | None = getattr(request.state, "casegraph_sub", None)
        media = getattr(request.state, "casegraph_media", JSON)
        request_error = is_request_error(response)
        if request_error and media == GRAPHQL_RESPONSE_JSON:
            response.pop("data", None)
            if sub is not None:
                sub.status_code = 400
        registration = getattr(request.state, "casegraph_register", None)
        if registration is not None and not request_error:
            await self.services.persisted.register(*registration)
            if info is not None:
                info.persisted_query = "registered"
        expires_at = getattr(result, "expires_at", None)  # set on answers from the response cache
        if sub is not None and request.method == "GET":
            self._cache_headers(sub, expires_at)
        if info is not None:
            info.outcome = outcome_of(response)
            info.upstream = dict((response.get("extensions") or {}).get("upstream") or {})
            if expires_at is not None:
                info.response_cache = "hit"
            elif getattr(request.state, "casegraph_keep", None) is not None:
                info.response_cache = "miss"
        return response  # type: ignore[return-value]

    def _cache_headers(self, sub: Response, expires_at: float | None) -> None:
        max_age = int(expires_at - time.time()) if expires_at else 0
        shared = self.services.settings.auth_mode == "token"
        if max_age >= 1:
            scope = "public" if shared else "private"
            sub.headers["Cache-Control"] = f"{scope}, max-age={max_age}"
            sub.headers["Vary"] = "Accept" if shared else "Accept, Authorization"
        else:
            sub.headers["Cache-Control"] = "no-store"
            sub.headers["Vary"] = "Accept"
