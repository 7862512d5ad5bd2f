"""What every request leaves behind: its id, and a log line.

`Observe` is the outermost middleware. It takes the request id from `X-Request-ID` (or makes one), sends it
back in the answer's `X-Request-ID`, and keeps it in `gateway.ops.logs.request_id` while the request runs, so
every log line and every upstream call of the request carries it. A GraphQL request's summary line and its
`casegraph_requests_*` metrics are written by the GraphQL endpoint from the request's outcome
(`gateway/http/endpoint.py`); any other request gets a debug line here.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.ops.logs import accept_request_id, request_id

log = logging.getLogger("gateway.requests")

GRAPHQL_PATH = "/graphql"


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
