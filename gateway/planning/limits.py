"""Limits on what one request may ask: refused before any upstream call, each with its own code.

- `MAX_QUERY_TOKENS`: graphql-core's parser stops past this many tokens (`QUERY_TOO_LARGE`), so a huge
  document costs no more than reading that many tokens.
- `MAX_QUERY_DEPTH` (`QUERY_TOO_DEEP`), `MAX_ALIASES` (`TOO_MANY_ALIASES`) and `MAX_QUERY_COST`
  (`QUERY_TOO_COMPLEX`): checked on the operation's plan before it is executed.
- `INTROSPECTION=false`: `__schema` and `__type` are refused (`INTROSPECTION_DISABLED`).
- `MAX_REQUEST_BYTES`: a larger request body gets HTTP 413 before it is read whole (`gateway/http/graphql_http.py`).

The depth, aliases, introspection and cost are checked on the operation's plan (`gateway/planning/plan.py`, once per
operation) after validation. The cost is the number of upstream calls the query could make, counted with the
`Cost` each fetching field declares (`gateway/schema/declarations.py`, the same its description states): a list multiplies
what is below it by its size (its `perPage`/`first`, or `COST_LIST_SIZE` for lists without a size argument),
and a field that fetches adds its calls for all the objects it is asked on, batching included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError

from gateway.ops.config import Settings


@dataclass(frozen=True)
class Limits:
    max_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 3000
    max_cost: int = 300
    list_size: int = 5
    introspection: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_query_tokens,
            max_cost=settings.max_query_cost,
            list_size=settings.cost_list_size,
            introspection=settings.introspection,
        )


def limit_error(message: str, code: str, **extra: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extra})


def is_token_limit(error: GraphQLError) -> bool:
    """The parser's own error for a document over MAX_QUERY_TOKENS (it gets `QUERY_TOO_LARGE`)."""
    return error.message.startswith("Syntax Error: Document contains more than")
