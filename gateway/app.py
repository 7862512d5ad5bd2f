"""The HTTP app: POST/GET /graphql (GraphiQL for browsers), /healthz, /readyz, /metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import orjson
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from gateway import graphiql, metrics, tracing
from gateway.config import Settings, load_settings
from gateway.context import Context, Services
from gateway.credentials import Caller, credential_for
from gateway.errors import GatewayError
from gateway.graphql_http import GraphQLOverHTTP
from gateway.limits import Limits, RequestSizeLimit, is_token_limit
from gateway.observe import Observe
from gateway.plan import Operation, operation_of
from gateway.readiness import Readiness
from gateway.response_cache import response_key
from gateway.schema import schema_for
from gateway.tuning import tune_process

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger("gateway")

INTERNAL = {"code": "INTERNAL_SERVER_ERROR"}
UNKNOWN = Operation(None, None, False)


def format_error(error: GraphQLError) -> dict[str, Any]:
    """An error as the client sees it: always an `extensions.code`, never an internal detail.

    Errors without a path come from parsing, validation or variable coercion: their message is for the
    caller. Field errors keep the message of a `GatewayError`; anything else is masked (and logged).
    """
    formatted: dict[str, Any] = dict(error.formatted)
    original = error.original_error
    if error.path is None:
        if (error.extensions or {}).get("code"):  # a limit's own code (gateway/limits.py)
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
    else:
        formatted["message"] = "Internal server error."
        formatted["extensions"] = INTERNAL
    return formatted


ENCODER = msgspec.json.Encoder()


def encode_answer(answer: Any) -> bytes:
    """An answer as JSON bytes, by msgspec: it writes the objects decoded straight into their answers
    (`gateway/structs.py`) and the dicts of the other paths alike (orjson would write floats past 1e16
    differently, and refuses integers past 64 bits)."""
    return ENCODER.encode(answer)


@dataclass
class ReusedResult(ExecutionResult):
    """An answer from the response cache: the body as sent before, and how many upstream answers built it."""

    body: dict[str, Any] = field(default_factory=dict)
    answers: int = 0
    expires_at: float = 0.0  # until when it may be reused (wall-clock time)


class GatewayGraphQL(GraphQL[Context, None]):
    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(schema_for(services.settings.execution), **kwargs)
        self.services = services

    async def get_context(self, request: Any, response: Any) -> Context:
        credential = credential_for(self.services.settings, request.headers.get("authorization"))
        return Context(self.services, Caller(credential))

    async def execute_single(  # type: ignore[override]
        self,
        request: Any,
        request_adapter: Any,
        sub_response: Any,
        context: Context,
        root_value: Any,
        request_data: Any,
    ) -> ExecutionResult:
        """Answer from the response cache when a reusable answer is kept, else execute (and mark the
        answer to be kept in `process_result`). The request's loaders are released either way."""
        query, max_tokens = request_data.query, context.settings.max_query_tokens
        traced = tracing.enabled()
        operation = (
            operation_of(query, request_data.operation_name, max_tokens) if traced and query else UNKNOWN
        )
        with tracing.operation_span(operation.name, operation.kind) as span:
            try:
                result = await self._answer(
                    request, request_adapter, sub_response, context, root_value, request_data
                )
            finally:
                context.release()
            if traced:
                self._traced(span, request, context, request_data, result)
            return result

    def _traced(
        self, span: tracing.OperationSpan, request: Any, context: Context, request_data: Any, result: Any
    ) -> None:
        """What the operation span says of the answer: response cache, errors, upstream counts, the plan."""
        reused = isinstance(result, ReusedResult)
        looked_up = reused or getattr(request.state, "casegraph_keep", None) is not None
        errors = result.body.get("errors") if reused else result.errors
        stats, plan = context.caller.stats, context.plan
        span.answered(
            ("hit" if reused else "miss") if looked_up else None,
            len(errors or ()),
            stats.upstream_calls,
            stats.cache_hits,
            stats.shared_calls,
        )
        if plan is not None:
            limits = Limits.from_settings(context.settings)
            span.planned(context.plan_reused, plan.cost(request_data.variables or {}, limits))

    async def _answer(self, request: Any, *args: Any) -> ExecutionResult:
        request_adapter, sub_response, context, root_value, request_data = args
        responses = self.services.responses
        if responses is None or not responses.enabled or not request_data.query:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        key = response_key(
            context.caller.credential, request_data.query, request_data.operation_name, request_data.variables
        )
        kept = await responses.get(key)
        if kept is not None:
            return ReusedResult(data=None, errors=None, body=kept[0], answers=kept[1], expires_at=kept[2])
        result = await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )
        request.state.casegraph_keep = (key, context.caller.stats)
        return result

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        if isinstance(result, ReusedResult):
            report = {"calls": 0, "sharedCalls": 0, "cacheHits": result.answers}
            return {**result.body, "extensions": {"upstream": report, "cacheControl": {"fromCache": True}}}  # type: ignore[typeddict-item]
        response: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            response["errors"] = [format_error(error) for error in result.errors]  # type: ignore[typeddict-item]
        keep = getattr(request.state, "casegraph_keep", None)
        if keep is not None and self.services.responses is not None:
            await self.services.responses.put(keep[0], dict(response), keep[1])
        if result.extensions:
            response["extensions"] = result.extensions
        return response

    def encode_json(self, data: object) -> bytes:
        return encode_answer(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)


class GatewayView(graphiql.GraphiQLPage, GraphQLOverHTTP, GatewayGraphQL):
    """The /graphql endpoint: the gateway's view under the GraphQL-over-HTTP rules (`gateway/graphql_http.py`:
    media types, status codes, GET for queries only, persisted queries, caching headers)."""


async def healthz(request: Request) -> Response:
    """Liveness, and the upstream cache's counters since start (the cache being down is not ill health:
    queries go on without it, and `errors` counts its failures)."""
    services: Services = request.app.state.services
    responses = services.responses.report() if services.responses is not None else None
    return JSONResponse(
        {
            "ok": True,
            "cache": services.cache.report(),
            "responses": responses,
            "upstreams": services.http.report(),  # circuit breakers, attempts, retries per upstream
            "persistedQueries": services.persisted.report(),
        }
    )


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus metrics (`gateway/metrics.py`); this worker's breaker states refreshed first."""
    services: Services = request.app.state.services
    for api, guard in services.http.guards.items():
        metrics.observe_breaker(api, guard.breaker)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


def create_app(settings: Settings | None = None, tracer_provider: TracerProvider | None = None) -> Starlette:
    """The gateway app; traced with `tracer_provider`, or as the OTEL_* environment says (gateway/tracing.py)."""
    settings = settings or load_settings()
    tracer_provider = tracer_provider or tracing.configure()
    if tracer_provider is not None:
        tracing.install(tracer_provider)
    services = Services.create(settings)
    view = GatewayView(
        services,
        graphql_ide="graphiql" if settings.graphiql else None,
        allow_queries_via_get=True,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tune_process(settings.gc_threshold)
        log.info(
            "gateway ready: v1=%s v2=%s auth=%s cache=%s",
            settings.v1_base,
            settings.v2_base,
            settings.auth_mode,
            services.cache.kind,
        )
        yield
        await services.aclose()
        metrics.process_exiting()
        if tracer_provider is not None:
            tracing.uninstall(tracer_provider)  # the spans still queued are exported

    middleware = [Middleware(Observe)]  # outermost: request id, summary log line, request metrics
    if tracer_provider is not None:  # around it: the server span, current for the summary line too
        middleware.insert(0, Middleware(tracing.ServerSpans))
    if settings.cors_origin_list:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origin_list,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"],
                expose_headers=["X-Request-ID"],
                max_age=600,
            )
        )
    middleware.append(Middleware(RequestSizeLimit, max_bytes=settings.max_request_bytes))
    graphql = Route("/graphql", view, methods=["GET", "POST"])
    graphql.methods.discard("HEAD")  # Starlette adds HEAD beside GET; a GraphQL answer has no useful HEAD
    app = Starlette(
        routes=[
            graphql,
            Route("/healthz", healthz),
            Route("/readyz", Readiness().endpoint, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *graphiql.routes(settings),  # GraphiQL's files
        ],
        lifespan=lifespan,
        middleware=middleware,
    )
    app.state.services = services
    return app
