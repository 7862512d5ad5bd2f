"""What every request leaves behind: its id, and a log line.

`Observe` is the outermost middleware. It takes the request id from `X-Request-ID` (or makes one), sends it
back in the answer's `X-Request-ID`, and keeps it in `gateway.logs.request_id` while the request runs, so
every log line and every upstream call of the request carries it. A GraphQL request's summary line and its
`casegraph_requests_*` metrics are written by the GraphQL endpoint from the request's outcome
(`gateway/endpoint.py`); any other request gets a debug line here.

`operation_of` tells which operation a document and operation name select.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache

from graphql import GraphQLError, OperationDefinitionNode, parse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.logs import accept_request_id, request_id

log = logging.getLogger("gateway.requests")

GRAPHQL_PATH = "/graphql"


@dataclass(frozen=True, slots=True)
class Operation:
    name: str | None  # None: anonymous (or unknown)
    kind: str | None  # query, mutation, subscription; None when it cannot be told
    parsed: bool  # False when the document does not parse


@lru_cache(maxsize=512)
def operation_of(query: str, operation_name: str | None, max_tokens: int) -> Operation:
    """The operation a document and operation name select (the spec's GetOperation), from a parse cached by
    text, bounded by the same token limit as execution's."""
    try:
        document = parse(query, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return Operation(None, None, False)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        chosen = next((op for op in operations if op.name and op.name.value == operation_name), None)
    else:
        chosen = operations[0] if len(operations) == 1 else None
    if chosen is None:
        return Operation(operation_name or None, None, True)
    return Operation(chosen.name.value if chosen.name else None, chosen.operation.value, True)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class Observe:
    """ASGI middleware: request id in and out, and a debug line for requests other than GraphQL's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = accept_request_id(_header(scope, b"x-request-id"))
        rid_token = request_id.set(rid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["path"] != GRAPHQL_PATH:  # the GraphQL endpoint writes its own line
                duration_ms = (time.perf_counter() - started) * 1000
                log.debug("%s %s %d %.1f ms", scope["method"], scope["path"], status, duration_ms)
            request_id.reset(rid_token)
