"""The limits an operation breaks (depth, aliases, introspection, cost), from its plan."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    GraphQLError,
)

from gateway.planning.limits import Limits, limit_error
from gateway.planning.plan import OperationPlan


def check(plan: OperationPlan, variables: Mapping[str, Any] | None, limits: Limits) -> list[GraphQLError]:
    """The limits this operation breaks (empty when none): depth, aliases, introspection, cost."""
    errors = []
    if plan.depth > limits.max_depth:
        errors.append(
            limit_error(
                f"The query is too deep: {plan.depth} levels of nested fields, more than the {limits.max_depth} "
                "allowed (MAX_QUERY_DEPTH).",
                "QUERY_TOO_DEEP",
                maxDepth=limits.max_depth,
            )
        )
    if plan.aliases > limits.max_aliases:
        errors.append(
            limit_error(
                f"The query has {plan.aliases} aliased fields, more than the {limits.max_aliases} allowed "
                "(MAX_ALIASES).",
                "TOO_MANY_ALIASES",
                maxAliases=limits.max_aliases,
            )
        )
    if plan.introspection and not limits.introspection:
        errors.append(
            limit_error(
                "Introspection (__schema, __type) is disabled on this gateway.", "INTROSPECTION_DISABLED"
            )
        )
    if errors or plan.kind != "query":
        return errors
    if plan.cost(variables or {}, limits) > limits.max_cost:
        errors.append(
            limit_error(
                f"The query is too complex: it could make more than {limits.max_cost} upstream calls "
                "(MAX_QUERY_COST). Ask for fewer items (perPage, first) or fewer nested fields that fetch.",
                "QUERY_TOO_COMPLEX",
                maxCost=limits.max_cost,
            )
        )
    return errors
