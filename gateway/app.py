"""The HTTP app: POST/GET /graphql (GraphiQL for browsers), /healthz."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from gateway.config import Settings, load_settings
from gateway.context import Context, Services
from gateway.credentials import Caller, credential_for
from gateway.errors import GatewayError
from gateway.schema import schema

log = logging.getLogger("gateway")

INTERNAL = {"code": "INTERNAL_SERVER_ERROR"}


def format_error(error: GraphQLError) -> dict[str, Any]:
    """An error as the client sees it: always an `extensions.code`, never an internal detail.

    Errors without a path come from parsing, validation or variable coercion: their message is for the
    caller. Field errors keep the message of a `GatewayError`; anything else is masked (and logged).
    """
    formatted: dict[str, Any] = dict(error.formatted)
    original = error.original_error
    if error.path is None:
        if error.message.startswith("Syntax Error"):
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


class GatewayGraphQL(GraphQL[Context, None]):
    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(schema, **kwargs)
        self.services = services

    async def get_context(self, request: Any, response: Any) -> Context:
        credential = credential_for(self.services.settings, request.headers.get("authorization"))
        return Context(self.services, Caller(credential))

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        response: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            response["errors"] = [format_error(error) for error in result.errors]  # type: ignore[typeddict-item]
        if result.extensions:
            response["extensions"] = result.extensions
        return response

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)


async def healthz(request: Request) -> Response:
    """Liveness, and the upstream cache's counters since start (the cache being down is not ill health:
    queries go on without it, and `errors` counts its failures)."""
    services: Services = request.app.state.services
    return JSONResponse({"ok": True, "cache": services.cache.report()})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    services = Services.create(settings)
    view = GatewayGraphQL(
        services,
        graphql_ide="graphiql" if settings.graphiql else None,
        allow_queries_via_get=True,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info(
            "gateway ready: v1=%s v2=%s auth=%s cache=%s",
            settings.v1_base,
            settings.v2_base,
            settings.auth_mode,
            services.cache.kind,
        )
        yield
        await services.aclose()

    app = Starlette(
        routes=[Route("/graphql", view, methods=["GET", "POST"]), Route("/healthz", healthz)],
        lifespan=lifespan,
    )
    app.state.services = services
    return app
