"""The executable GraphQL schema, built once per process: the schema's types (`gateway.schema`) with the
operation planner and the compiled executor (`gateway.planning`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from graphql.language.block_string import print_block_string
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types.execution import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from gateway.ops.errors import GatewayError, is_wrong_shape, upstream_object, wrong_shape_message
from gateway.ops.logs import one_line
from gateway.planning.context import RequestContext
from gateway.planning.execution import EarlyExecutor, FastExecutor
from gateway.planning.planner import Planner, run_planned
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


DESCRIPTION = (
    "casegraph: the cases of the v2 cases API (`Case`) and of the v1 investigations API (`LegacyCase`) in one "
    "schema, each linked to its twin. Lists come as pages (`cases`, `legacyCases`: page numbers) and as Relay "
    "cursor connections (`casesConnection`, `legacyCasesConnection`). Every `id` is unique within its type, "
    "so `__typename` and `id` key an object in normalized client caches; `Case.id` and `LegacyCase.id` are "
    "global ids for `node(id)`. `DateTime` and `Date` are RFC 3339 strings. Each field's description says "
    "what it costs upstream."
)


@lru_cache(maxsize=8)
def kinds_of(allowed: frozenset[OperationType]) -> frozenset[str]:
    """graphql-core's names of strawberry's operation types (the few sets the endpoint allows)."""
    return frozenset(kind.value for kind in allowed)


class GatewaySchema(strawberry.Schema):
    """The schema, executing a planned document without strawberry's pipeline (`run_planned`). `passes_answers`:
    its executor passes objects decoded into their answers through (the fast one). It has a description, which
    strawberry takes none of (nor prints): it is set on the graphql-core schema (introspection's
    `__schema.description`) and printed before the SDL."""

    def __init__(self, *args: Any, passes_answers: bool, description: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passes_answers = passes_answers
        self._schema.description = description

    def as_str(self) -> str:
        assert self.query.__strawberry_definition__.name == "Query"  # type: ignore[attr-defined]
        head = print_block_string(self._schema.description or "")
        return f"{head}\nschema {{\n  query: Query\n}}\n\n{super().as_str()}"

    async def execute(  # type: ignore[override]
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> Any:
        allowed = frozenset(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)  # strawberry's enum
        if (
            query
            and isinstance(context_value, RequestContext)
            and root_value is None
            and not operation_extensions
        ):
            result = await run_planned(
                self._schema,
                query,
                variable_values,
                operation_name,
                context_value,
                kinds_of(allowed),
                self.passes_answers,
                self.execution_context_class,
                self.config.enable_experimental_incremental_execution,
            )
            if isinstance(result, GraphQLExecutionResult):
                if result.errors:
                    self.process_errors(result.errors)
                return ExecutionResult(result.data, result.errors, context_value.report())
            if result is not None:  # an incremental answer: the endpoint reports its upstream calls
                return result
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed,
            operation_extensions,
        )

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
        return context.report() if isinstance(context, RequestContext) else {}


def build_schema(fast: bool = True, incremental: bool = True) -> strawberry.Schema:
    """The schema; `fast` selects the compiled execution path (`gateway.planning.execution`), which the differential
    test compares with graphql-core's plain execution (`fast=False`). `incremental` declares `@defer` and
    `@stream` (graphql-core's incremental execution, docs/incremental.md); without it (for the benchmark that
    compares the two) validation refuses them."""
    return GatewaySchema(
        description=DESCRIPTION,
        passes_answers=fast,
        query=Query,
        config=StrawberryConfig(
            default_resolver=read_field,
            scalar_map=SCALARS,
            enable_experimental_incremental_execution=incremental,
        ),
        extensions=[UpstreamReport, Planner.factory(passes_answers=fast)],
        execution_context_class=FastExecutor if fast else EarlyExecutor,
    )


schema = build_schema()


def schema_for(execution: str) -> strawberry.Schema:
    """The schema serving `EXECUTION=fast` (the module's `schema`) or `plain` (built on demand)."""
    return schema if execution == "fast" else build_schema(fast=False)


def passes_answers(schema: strawberry.Schema) -> bool:
    """Whether `schema`'s executor passes objects decoded into their answers through (as its Planner plans):
    for plans made outside a request (trusted documents, `gateway/http/trusted_documents.py`)."""
    return isinstance(schema, GatewaySchema) and schema.passes_answers


def schema_sdl() -> str:
    return schema.as_str() + "\n"
