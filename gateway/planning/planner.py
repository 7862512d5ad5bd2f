"""The Planner: the schema extension that parses from the documents' cache, validates once per document, plans
once per operation, applies the limits and hands the plan to the request's context.

Once a document is validated and its operation planned, strawberry's pipeline has nothing more to do for it
(an extension runner, context managers per hook, the hooks finding the cached document again): `run_planned`
checks the limits for the request's variables and executes the plan's operation with graphql-core directly,
with the same executor and context. A document not planned yet (a first request, a parse or validation error,
a limit broken) goes through the pipeline, which plans it and reports its errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property, partial
from typing import Any, Protocol

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    execute,
    experimental_execute_incrementally,
    specified_rules,
)
from graphql.pyutils import is_awaitable
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import SchemaExtension

from gateway.ops.config import Settings
from gateway.planning.checks import check
from gateway.planning.documents import DOCUMENTS, Document, document_for
from gateway.planning.limits import Limits
from gateway.planning.plan import OperationPlan

# --- in the schema's pipeline --------------------------------------------------------------------------------


class Requester(Protocol):
    """What the Planner needs of a request's context: its limits (from its settings) and where the plan goes."""

    @property
    def settings(self) -> Settings: ...

    @property
    def limits(self) -> Limits: ...

    document: Document | None  # the request's document when it came parsed and planned (a trusted one)

    def use_plan(self, plan: OperationPlan, reused: bool) -> None: ...


RULES = tuple(specified_rules)  # the validation rules of a request (strawberry's default)


async def run_planned(
    schema: GraphQLSchema,
    query: str,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    requester: Requester,
    allowed: frozenset[str],
    passes_answers: bool,
    executor: type[Any] | None,
    incremental: bool,
) -> Any | None:
    """The graphql-core result of a request whose document is already parsed, validated and planned (None
    when it is not: the caller runs strawberry's pipeline instead). `allowed`: the operation kinds the request
    may run (query, mutation, subscription)."""
    limits = requester.limits
    document = requester.document or DOCUMENTS.get((query, limits.max_tokens))
    if document is None or document.validated.get((id(schema), RULES)) != []:
        return None
    plan, reused = document.plan(schema, operation_name, variables, passes_answers)
    if plan is None or plan.kind not in allowed or check(plan, variables, limits):
        return None
    requester.use_plan(plan, reused)
    if plan.constant is not None:  # only `__typename` on the root: the answer is known, nothing to execute
        return ExecutionResult(dict(plan.constant))
    run = experimental_execute_incrementally if incremental else execute
    result = run(
        schema,
        document.document,
        variable_values=variables,
        operation_name=operation_name,
        context_value=requester,
        is_awaitable=optimized_is_awaitable,
        **({"executor_class": executor} if executor is not None else {}),
    )
    return await result if is_awaitable(result) else result


class Planner(SchemaExtension):
    """Parse from the documents' cache, validate once per document, plan once per operation, apply the limits
    and hand the plan to the request's context (`Requester.use_plan`).

    `passes_answers`: the schema's executor passes objects decoded into their answers through (the fast one
    does). The context is a `Requester`, or None (the default limits, no plan handed over)."""

    def __init__(self, *, passes_answers: bool, execution_context: Any = None) -> None:
        super().__init__(execution_context=execution_context)
        self.passes_answers = passes_answers

    @classmethod
    def factory(cls, passes_answers: bool) -> Callable[[], Planner]:
        """The extension as strawberry makes it, once per request."""
        return partial(cls, passes_answers=passes_answers)

    @cached_property
    def requester(self) -> Requester | None:
        return self.execution_context.context  # type: ignore[no-any-return]

    @cached_property
    def limits(self) -> Limits:
        """This request's limits, made once for its three hooks (the extension lives for one request)."""
        requester = self.requester
        return requester.limits if requester is not None else Limits()

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.limits.max_tokens
        yield

    document: Document | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        given = self.requester.document if self.requester is not None else None
        if given is not None and context.graphql_document is None:
            self.document = given  # parsed, validated and planned at start (a trusted document)
            context.graphql_document = given.document
        elif context.query and context.graphql_document is None:
            try:
                self.document = document_for(context.query, self.limits.max_tokens)
            except GraphQLError:
                pass  # strawberry parses again and reports the error
            else:
                context.graphql_document = self.document.document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = self.document
        if document is not None and context.pre_execution_errors is None:
            errors = document.validate(context.schema._schema, tuple(context.validation_rules))
            if not errors:
                plan, reused = document.plan(
                    context.schema._schema, context.operation_name, context.variables, self.passes_answers
                )
                if plan is not None:
                    errors = check(plan, context.variables, self.limits)
                    if self.requester is not None and not errors:
                        self.requester.use_plan(plan, reused)
            context.pre_execution_errors = errors
        yield
