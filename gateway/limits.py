"""Limits on what one request may ask: refused before any upstream call, each with its own code.

- `MAX_QUERY_TOKENS`: graphql-core's parser stops past this many tokens (`QUERY_TOO_LARGE`), so a huge
  document costs no more than reading that many tokens.
- `MAX_QUERY_DEPTH` (`QUERY_TOO_DEEP`), `MAX_ALIASES` (`TOO_MANY_ALIASES`) and `MAX_QUERY_COST`
  (`QUERY_TOO_COMPLEX`): checked on the operation's plan before it is executed.
- `INTROSPECTION=false`: `__schema` and `__type` are refused (`INTROSPECTION_DISABLED`).
- `MAX_REQUEST_BYTES`: a larger request body gets HTTP 413 before GraphQL sees it (`RequestSizeLimit`).

The depth, aliases, introspection and cost are checked on the operation's plan (`gateway/plan.py`, once per
operation) after validation. The cost is the number of upstream calls the query could make, counted with the
`Cost` each fetching field declares (`gateway/cost.py`, the same its description states): a list multiplies
what is below it by its size (its `perPage`/`first`, or `COST_LIST_SIZE` for lists without a size argument),
and a field that fetches adds its calls for all the objects it is asked on, batching included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.config import Settings


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


class RequestSizeLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413 before the app sees any of it. The body is
    read (at most `max_bytes`) and handed on whole, as the GraphQL view reads it whole anyway."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _refuse(self, send: Send) -> None:
        body = (
            b'{"errors":[{"message":"The request body is larger than the %d bytes allowed (MAX_REQUEST_BYTES).",'
            b'"extensions":{"code":"REQUEST_TOO_LARGE"}}]}' % self.max_bytes
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A `receive` giving `messages` first, then (to notice a disconnect) the real one."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
