"""The Planner: the schema extension that parses from the documents' cache, validates once per document, plans
once per operation, applies the limits and hands the plan to the request's context."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property, partial
from typing import Any, Protocol

from graphql import (
    GraphQLError,
)
from strawberry.extensions import SchemaExtension

from gateway.ops.config import Settings
from gateway.planning.checks import check
from gateway.planning.documents import Document, document_for
from gateway.planning.limits import Limits
from gateway.planning.plan import OperationPlan

# --- in the schema's pipeline --------------------------------------------------------------------------------


class Requester(Protocol):
    """What the Planner needs of a request's context: its settings (for the limits) and where the plan goes."""

    @property
    def settings(self) -> Settings: ...

    def use_plan(self, plan: OperationPlan, reused: bool) -> None: ...


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
        return Limits.from_settings(requester.settings) if requester is not None else Limits()

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.limits.max_tokens
        yield

    document: Document | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        given = getattr(context.context, "document", None)
        if isinstance(given, Document) and context.graphql_document is None:
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
