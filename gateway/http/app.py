"""The HTTP app: POST/GET /graphql (GraphiQL for browsers), /healthz, /readyz, /metrics (unless METRICS_PORT
serves it apart: `casegraph serve`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.http import graphiql
from gateway.http.endpoint import GraphQLEndpoint
from gateway.http.observe import GRAPHQL_PATH, Observe
from gateway.http.readiness import Readiness
from gateway.http.services import Services
from gateway.http.trusted_documents import load as load_trusted
from gateway.ops import metrics, tracing
from gateway.ops.config import Settings, load_settings
from gateway.ops.tuning import tune_process
from gateway.planning.executable import passes_answers, schema_for

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger("gateway")


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
            "trustedDocuments": request.app.state.trusted.report(),
        }
    )


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus metrics (`gateway/ops/metrics.py`); this worker's breaker states refreshed first."""
    services: Services = request.app.state.services
    for api, guard in services.http.guards.items():
        metrics.observe_breaker(api, guard.breaker)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


class Gateway(Starlette):
    """The Starlette app, with one shortcut: a request to /graphql goes to its route through the gateway's own
    middleware only (`Observe`, CORS and tracing when configured), not through Starlette's error and exception
    middleware and router, which it never needs (the endpoint answers every failure itself). Every other
    request, and the lifespan, take Starlette's whole stack."""

    def __init__(self, graphql: Route, **kwargs: Any) -> None:
        self.graphql = graphql
        super().__init__(**kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        graphql: ASGIApp = GraphQLFirst.routed(self.graphql)
        for cls, args, kwargs in reversed(self.user_middleware):
            graphql = cls(graphql, *args, **kwargs)
        return GraphQLFirst(graphql, super().build_middleware_stack())


class GraphQLFirst:
    """ASGI: HTTP requests for GRAPHQL_PATH (below the root path, as Starlette's router reads it) to `graphql`,
    everything else to `rest`."""

    def __init__(self, graphql: ASGIApp, rest: ASGIApp) -> None:
        self.graphql, self.rest = graphql, rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, root = scope["path"], scope.get("root_path", "")
            if (path[len(root) :] if root and path.startswith(root) else path) == GRAPHQL_PATH:
                await self.graphql(scope, receive, send)
                return
        await self.rest(scope, receive, send)

    @staticmethod
    def routed(route: Route) -> ASGIApp:
        """`route`'s endpoint, the scope routed as Starlette's router routes it (`endpoint`, `path_params`,
        `route`: the server span is named after the route's path)."""
        endpoint = route.endpoint

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            scope["endpoint"], scope["path_params"], scope["route"] = endpoint, {}, route
            await endpoint(scope, receive, send)

        return app


def create_app(settings: Settings | None = None, tracer_provider: TracerProvider | None = None) -> Starlette:
    """The gateway app; traced with `tracer_provider`, or as the OTEL_* environment says (gateway/ops/tracing.py)."""
    settings = settings or load_settings()
    tracer_provider = tracer_provider or tracing.configure()
    if tracer_provider is not None:
        tracing.install(tracer_provider)
    schema = schema_for(settings.execution)
    # before anything starts: a manifest that cannot be trusted stops the gateway (ManifestError)
    trusted = load_trusted(
        settings.trusted_documents,
        settings.trusted_documents_mode,
        schema._schema,
        passes_answers(schema),
    )
    services = Services.create(settings)

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

    middleware = [Middleware(Observe)]  # outermost: the request id
    if tracer_provider is not None:  # around it: the server span, current for every log line of the request
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
    graphql = Route(GRAPHQL_PATH, GraphQLEndpoint(services, schema, trusted))
    app = Gateway(
        graphql,
        routes=[
            # every method reaches the endpoint, which answers others than GET and POST with 405 itself
            graphql,  # for the router too: its redirect of "/graphql/" finds it
            Route("/healthz", healthz),
            Route("/readyz", Readiness().endpoint, methods=["GET"]),
            *([] if settings.metrics_port else [Route("/metrics", metrics_endpoint, methods=["GET"])]),
            *graphiql.routes(settings),  # GraphiQL's files
        ],
        lifespan=lifespan,
        middleware=middleware,
    )
    app.state.services = services
    app.state.trusted = trusted
    return app
