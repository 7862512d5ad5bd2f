"""Errors the gateway reports to GraphQL clients, each with a stable `extensions.code`.

graphql-core copies an exception's `extensions` onto the GraphQL error, so raising one of these in a
resolver (or returning it from a dataloader) gives a field error with the code and the rest of the
answer intact. Messages never include credentials or upstream bodies beyond their `error` text.
"""

from __future__ import annotations

from typing import Any

import orjson
from graphql import GraphQLError

NON_NULL = "Cannot return null for non-nullable field"


class GatewayError(Exception):
    code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: dict[str, Any] = {"code": self.code, **extra}


class BadUserInput(GatewayError):
    """An argument the upstream would refuse; raised before any upstream call."""

    code = "BAD_USER_INPUT"


class NotFound(GatewayError):
    code = "NOT_FOUND"


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"


class Forbidden(GatewayError):
    code = "FORBIDDEN"


class UpstreamError(GatewayError):
    """The upstream failed or answered something unusable."""

    code = "UPSTREAM_ERROR"


class UpstreamTimeout(UpstreamError):
    code = "UPSTREAM_TIMEOUT"


class UpstreamRateLimited(UpstreamError):
    code = "UPSTREAM_RATE_LIMITED"


class UpstreamBadRequest(UpstreamError):
    """The upstream refused the parameters (400) although the gateway had validated them."""

    code = "UPSTREAM_BAD_REQUEST"


class UpstreamBadResponse(UpstreamError):
    """The upstream answered 200 with a body the gateway cannot use: malformed or truncated JSON, the wrong
    shape, or larger than MAX_UPSTREAM_BODY_BYTES."""

    code = "UPSTREAM_BAD_RESPONSE"


class UpstreamUnavailable(UpstreamError):
    """The upstream's circuit breaker is open after repeated failures: the call was not attempted."""

    code = "UPSTREAM_UNAVAILABLE"


def upstream_object(value: Any) -> dict[str, Any]:
    """An upstream value that must be a JSON object, as the dict it is; anything else is the upstream's error."""
    if isinstance(value, dict):
        return value
    raise UpstreamBadResponse("The upstream sent a value of the wrong shape where an object was expected.")


def is_wrong_shape(error: GraphQLError) -> bool:
    """A field error graphql-core raised while completing a value the schema does not allow: a string for a
    list or an object, an unknown enum value, a number out of Int range, a missing non-null field. Resolvers
    pass upstream JSON through, so such a value is the upstream's: UPSTREAM_BAD_RESPONSE."""
    original = error.original_error
    return isinstance(original, GraphQLError) or (
        isinstance(original, TypeError) and str(original).startswith(NON_NULL)
    )


def wrong_shape_message(error: GraphQLError) -> str:
    """graphql-core's message without the value it quotes (an upstream value, a URL say, stays out of logs)."""
    return error.message.partition(":")[0][:200]


def error_body(message: str, code: str, **extensions: Any) -> bytes:
    """The JSON body of an answer refused as a whole: one error, its message and `extensions.code`."""
    return orjson.dumps({"errors": [{"message": message, "extensions": {"code": code, **extensions}}]})
