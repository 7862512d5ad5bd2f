"""The executable GraphQL schema, built once per process: the schema's types (`gateway.schema`) with the
operation planner and the compiled executor (`gateway.planning`)."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types.execution import ExecutionContext

from gateway.ops.errors import GatewayError, is_wrong_shape, upstream_object, wrong_shape_message
from gateway.ops.logs import one_line
from gateway.planning.execution import EarlyExecutor, FastExecutor
from gateway.planning.plan import Planner
from gateway.schema.query import Query
from gateway.schema.scalars import SCALARS


def read_field(source: Any, name: str) -> Any:
    """Default resolver: upstream JSON objects stay dicts, and a field reads its key. Where the upstream sent
    a string, number or list for an object, each field asked of it is an UPSTREAM_BAD_RESPONSE error."""
    if type(source) is dict:
        return source.get(name)
    if isinstance(source, str | int | float | list):
        upstream_object(source)  # raises
    return getattr(source, name, None)


log = logging.getLogger("gateway.errors")


class GatewaySchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log each error once, in one line, at the level it deserves: bad requests quietly, upstream failures
        and values of the wrong shape as warnings, unexpected exceptions as errors (without a traceback: see
        `gateway.ops.logs.one_line`)."""
        for error in errors:
            original = error.original_error
            if error.path is None:
                log.info("request rejected: %s", error.message)
            elif isinstance(original, GatewayError):
                log.warning("field %s: %s [%s]", ".".join(map(str, error.path)), error.message, original.code)
            elif is_wrong_shape(error):
                where = ".".join(map(str, error.path))
                log.warning(
                    "field %s: the upstream value does not fit: %s", where, wrong_shape_message(error)
                )
            else:
                log.error(
                    "unexpected error at %s: %s", ".".join(map(str, error.path)), one_line(original or error)
                )


class UpstreamReport(SchemaExtension):
    """`extensions.upstream` on every answer: what it cost upstream. An answer built only from the cache
    also carries `extensions.cacheControl.fromCache = true`. (Not on an incremental answer: strawberry's
    extensions end with its first part, so the endpoint puts the whole operation's report on the last part.)"""

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        stats = getattr(getattr(context, "caller", None), "stats", None)
        if stats is None:
            return {}
        return stats.report()


def build_schema(fast: bool = True, incremental: bool = True) -> strawberry.Schema:
    """The schema; `fast` selects the compiled execution path (`gateway.planning.execution`), which the differential
    test compares with graphql-core's plain execution (`fast=False`). `incremental` declares `@defer` and
    `@stream` (graphql-core's incremental execution, docs/incremental.md); without it (for the benchmark that
    compares the two) validation refuses them."""
    return GatewaySchema(
        query=Query,
        config=StrawberryConfig(
            default_resolver=read_field,
            scalar_map=SCALARS,
            enable_experimental_incremental_execution=incremental,
        ),
        extensions=[UpstreamReport, Planner],
        execution_context_class=FastExecutor if fast else EarlyExecutor,
    )


schema = build_schema()


def schema_for(execution: str) -> strawberry.Schema:
    """The schema serving `EXECUTION=fast` (the module's `schema`) or `plain` (built on demand)."""
    return schema if execution == "fast" else build_schema(fast=False)


def schema_sdl() -> str:
    return schema.as_str() + "\n"
