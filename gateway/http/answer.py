"""What the GraphQL endpoint answers: errors as the client sees them, the answer encoded once, and the
request's `Outcome` (the response, its metrics and its log line), sent whole or part by part (`Stream`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
from graphql import GraphQLError
from starlette.responses import Response
from starlette.types import Receive, Send

from gateway.http.graphql_http import CONTENT_TYPES, JSON, Refusal, cache_headers
from gateway.http.incremental import CLOSE, DELIMITER, MULTIPART_CONTENT_TYPE, multipart_part
from gateway.ops.errors import GatewayError, error_body, is_wrong_shape
from gateway.ops.logs import one_line
from gateway.planning.limits import is_token_limit

log = logging.getLogger("gateway.requests")

INTERNAL = {"code": "INTERNAL_SERVER_ERROR"}
WRONG_SHAPE = "The upstream answered this field with a value of the wrong shape."


def format_error(error: GraphQLError) -> dict[str, Any]:
    """An error as the client sees it: always an `extensions.code`, never an internal detail.

    Errors without a path come from parsing, validation or variable coercion: their message is for the
    caller. Field errors keep the message of a `GatewayError`; a value graphql-core could not complete is the
    upstream's (UPSTREAM_BAD_RESPONSE, without the value); anything else is masked (and logged).
    """
    formatted: dict[str, Any] = dict(error.formatted)
    original = error.original_error
    if error.path is None:
        if (error.extensions or {}).get("code"):  # a limit's own code (gateway/planning/limits.py)
            code = error.extensions["code"]  # type: ignore[index]
        elif is_token_limit(error):
            code = "QUERY_TOO_LARGE"
        elif error.message.startswith("Syntax Error"):
            code = "GRAPHQL_PARSE_FAILED"
        elif error.message.startswith("Variable '$"):
            code = "BAD_USER_INPUT"
        else:
            code = "GRAPHQL_VALIDATION_FAILED"
        formatted["extensions"] = {**(error.extensions or {}), "code": code}
    elif isinstance(original, GatewayError):
        formatted["extensions"] = original.extensions
    elif is_wrong_shape(error):
        formatted["message"] = WRONG_SHAPE
        formatted["extensions"] = {"code": "UPSTREAM_BAD_RESPONSE"}
    else:
        formatted["message"] = "Internal server error."
        formatted["extensions"] = INTERNAL
    return formatted


ENCODER = msgspec.json.Encoder()


def encode_answer(answer: Any) -> bytes:
    """An answer as JSON bytes, by msgspec: it writes the objects decoded straight into their answers
    (`gateway/planning/structs.py`) and the dicts of the other paths alike (orjson would write floats past 1e16
    differently, and refuses integers past 64 bits)."""
    return ENCODER.encode(answer)


def with_extensions(encoded: bytes, extensions: dict[str, Any] | None) -> bytes:
    """An encoded answer object (`{"data": ...}`) with `extensions` added as its last entry."""
    if not extensions:
        return encoded
    return b'%s,"extensions":%s}' % (encoded[:-1], orjson.dumps(extensions))


@dataclass
class Outcome:
    """What became of one request: filled in by each step of the pipeline, then turned into the response,
    the request metrics and the summary log line."""

    status: int = 500
    body: bytes = b""
    media: str = JSON  # the answer's media type
    headers: dict[str, str] = field(default_factory=dict)
    # ok, partial (field errors), rejected (refused before execution), error, shed, cancelled (the client went
    # away during a multipart answer)
    result: str = "error"
    operation: str | None = None  # the operation's name as the client gave it
    label: str = "unknown"  # the metrics' `operation`; unknown: no document read
    upstream: dict[str, int] = field(default_factory=dict)  # calls, sharedCalls, cacheHits
    response_cache: str | None = None  # hit / miss (None: not looked up)
    persisted_query: str | None = None  # hit / miss / sent / registered / refused
    page: Response | None = None  # an answer that is no GraphQL response (GraphiQL's page)
    parts: int = 0  # the parts of an incremental answer (0: not incremental)
    streamed: bool = False  # sent part by part as multipart/mixed (the response is gone)

    def refused(self, refusal: Refusal, method: str) -> None:
        self.status = refusal.status_for(self.media)
        self.body = refusal.body()
        self.result = "rejected"
        self.headers.update(refusal.headers)
        self.headers.update(cache_headers(None, False) if method == "GET" else {"Cache-Control": "no-store"})

    def failed(self, exc: Exception) -> None:
        """A bug: 500, the details in one log line only."""
        log.error("internal error answering the request: %s", one_line(exc))
        self.status, self.result, self.media, self.headers = 500, "error", JSON, {}
        self.body = error_body("Internal server error.", "INTERNAL_SERVER_ERROR")

    def response(self) -> Response:
        if self.page is not None:
            return self.page
        return Response(self.body, self.status, self.headers, media_type=CONTENT_TYPES[self.media])


def result_of(errors: list[GraphQLError], data_missing: bool) -> str:
    return "ok" if not errors else ("error" if data_missing else "partial")


@dataclass(frozen=True, slots=True)
class Stream:
    """The ASGI channel of one request, to send an answer part by part."""

    receive: Receive
    send: Send

    async def parts(self, outcome: Outcome, parts: AsyncIterator[bytes]) -> None:
        """Send `parts` (encoded JSON) as a multipart/mixed body, each as soon as it is made, while listening
        for the client going away: then the parts' producer is cancelled (graphql-core's work for the later
        parts with it) and the outcome is `cancelled`. A failure after the first byte can only end the body
        early (logged; the client sees no closing delimiter)."""
        outcome.streamed = True
        headers = {**outcome.headers, "Content-Type": MULTIPART_CONTENT_TYPE}
        await self.send(
            {
                "type": "http.response.start",
                "status": outcome.status,
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            }
        )

        async def write() -> None:
            body = DELIMITER
            try:
                async for encoded in parts:
                    await self.send(
                        {
                            "type": "http.response.body",
                            "body": body + multipart_part(encoded),
                            "more_body": True,
                        }
                    )
                    body = b""
            except Exception as exc:
                log.error("internal error while sending a multipart answer: %s", one_line(exc))
                outcome.result = "error"
                await self.send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await self.send({"type": "http.response.body", "body": CLOSE, "more_body": False})

        async def gone() -> None:
            while (await self.receive())["type"] != "http.disconnect":
                pass

        writing, watching = asyncio.ensure_future(write()), asyncio.ensure_future(gone())
        try:
            await asyncio.wait((writing, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
            if not writing.done():
                writing.cancel()
                outcome.result = "cancelled"
            with contextlib.suppress(asyncio.CancelledError):
                await writing
            with contextlib.suppress(asyncio.CancelledError):
                await watching
