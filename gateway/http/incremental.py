"""Incremental delivery (`@defer`, `@stream`) at the HTTP edge: an operation's parts as graphql-core 3.3 makes
them, formatted for the client and either sent one by one as `multipart/mixed` or merged into one answer.

graphql-core answers an operation that defers something with an initial result and a stream of subsequent
results, in the `pending`/`incremental`/`completed` format of the incremental-delivery proposal (the one Apollo
Client 4's `GraphQL17Alpha9Handler` and GraphiQL 4 read):

    {"data": {...}, "pending": [{"id": "0", "path": [...]}], "hasNext": true}
    {"incremental": [{"id": "0", "data": {...}}], "completed": [{"id": "0"}], "hasNext": false}

`IncrementalAnswer` formats each part as the client sees it: its errors through the endpoint's formatter (each
at its path, with its code), and the last part with `extensions.upstream`, the whole operation's upstream
counts (strawberry's extensions end with the first part, so they cannot report the deferred work).
`Stream.multipart` sends the parts as a `multipart/mixed; boundary="-"` body, each as soon as it is made
(docs/incremental.md), and `IncrementalAnswer.merged` builds the one answer a client that does not accept
multipart gets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from graphql import ExperimentalIncrementalExecutionResults, GraphQLError
from graphql.execution import (
    CompletedResult,
    IncrementalStreamResult,
    InitialIncrementalExecutionResult,
    SubsequentIncrementalExecutionResult,
)
from starlette.types import Receive, Send

from gateway.ops.logs import one_line

log = logging.getLogger("gateway.requests")

MULTIPART_MIXED = "multipart/mixed"
# The boundary Apollo Router and Hive Gateway use: each part follows "\r\n---", the body ends "\r\n-----".
MULTIPART_CONTENT_TYPE = 'multipart/mixed; boundary="-"'
DELIMITER = b"\r\n---"
PART_HEADERS = b"\r\nContent-Type: application/json; charset=utf-8\r\n\r\n"
CLOSE = b"--\r\n"

ErrorFormatter = Callable[[GraphQLError], dict[str, Any]]
# how a multipart body went: every part sent, the client gone before the last (its work cancelled), or a
# failure after the first byte (the body ended early, without the closing delimiter)
SENT, CANCELLED, FAILED = "sent", "cancelled", "error"


def multipart_part(encoded: bytes) -> bytes:
    """One JSON part, followed at once by the next delimiter: a client reads a part once the delimiter after
    it has arrived, so the part is complete as soon as it is sent (the body opens with `DELIMITER`, and ends
    with `CLOSE` after the last part's delimiter)."""
    return PART_HEADERS + encoded + DELIMITER


class IncrementalAnswer:
    """One operation's incremental answer, formatted part by part. `errors` collects every error of every
    part (for the log and the span), `parts` counts the parts formatted so far."""

    def __init__(
        self, results: ExperimentalIncrementalExecutionResults, format_error: ErrorFormatter
    ) -> None:
        self.results = results
        self.format_error = format_error
        self.errors: list[GraphQLError] = []
        self.parts = 0
        self.data_missing = results.initial_result.data is None

    def _formatted(self, errors: list[GraphQLError] | None) -> list[dict[str, Any]] | None:
        if not errors:
            return None
        self.errors.extend(errors)
        return [self.format_error(error) for error in errors]

    def initial(self) -> dict[str, Any]:
        """The first part: the data that did not wait, and the parts still to come (`pending`)."""
        result: InitialIncrementalExecutionResult = self.results.initial_result
        self.parts += 1
        part: dict[str, Any] = {"data": result.data}
        if errors := self._formatted(result.errors):
            part["errors"] = errors
        part["pending"] = [pending.formatted for pending in result.pending]
        part["hasNext"] = result.has_next
        return part

    async def subsequent(self) -> AsyncIterator[dict[str, Any]]:
        """The later parts as they are ready. Closing this iterator (the client went away) closes graphql-core's,
        which cancels the work still running for them."""
        async with aclosing(self.results.subsequent_results) as results:
            async for result in results:
                self.parts += 1
                yield self._subsequent(result)

    def _subsequent(self, result: SubsequentIncrementalExecutionResult) -> dict[str, Any]:
        part: dict[str, Any] = {}
        if result.pending:
            part["pending"] = [pending.formatted for pending in result.pending]
        if result.incremental:
            entries = []
            for incremental in result.incremental:
                is_stream = isinstance(incremental, IncrementalStreamResult)
                entry: dict[str, Any] = (
                    {"items": incremental.items} if is_stream else {"data": incremental.data}  # type: ignore[union-attr]
                )
                entry["id"] = incremental.id
                if incremental.sub_path is not None:
                    entry["subPath"] = incremental.sub_path
                if errors := self._formatted(incremental.errors):
                    entry["errors"] = errors
                entries.append(entry)
            part["incremental"] = entries
        if result.completed:
            part["completed"] = [self._completed(completed) for completed in result.completed]
        part["hasNext"] = result.has_next
        return part

    def _completed(self, completed: CompletedResult) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": completed.id}
        if errors := self._formatted(completed.errors):
            entry["errors"] = errors  # the part failed as a whole (a null where none may be): no data for it
        return entry

    async def merged(self) -> dict[str, Any]:
        """Every part merged into one answer (`{"data", "errors"?}`), for a client that does not accept
        multipart: deferred data merged into the objects at their paths, streamed items appended to their
        lists, the errors of every part in the order they came."""
        first = self.initial()
        data = first["data"]
        errors: list[dict[str, Any]] = list(first.get("errors", ()))
        paths = {pending["id"]: pending["path"] for pending in first["pending"]}
        async for part in self.subsequent():
            for pending in part.get("pending", ()):
                paths[pending["id"]] = pending["path"]
            for entry in part.get("incremental", ()):
                target = _at(data, [*paths[entry["id"]], *entry.get("subPath", ())])
                if "items" in entry:
                    if isinstance(target, list):
                        target.extend(entry["items"])
                elif isinstance(target, dict):
                    _merge(target, entry["data"])
                errors.extend(entry.get("errors", ()))
            for completed in part.get("completed", ()):
                errors.extend(completed.get("errors", ()))
        return {"data": data, "errors": errors} if errors else {"data": data}


def _at(data: Any, path: list[str | int]) -> Any:
    """The value at `path` in the answer (None where an error nulled a parent on the way)."""
    for step in path:
        if data is None:
            return None
        data = data[step]
    return data


def _merge(target: dict[str, Any], data: dict[str, Any]) -> None:
    """Deferred fields into the object already sent: nested objects merged key by key (a deferred fragment
    sends only the fields the earlier parts did not)."""
    for key, value in data.items():
        found = target.get(key)
        if isinstance(found, dict) and isinstance(value, dict):
            _merge(found, value)
        elif isinstance(found, list) and isinstance(value, list) and len(found) == len(value):
            for old, new in zip(found, value, strict=True):
                if isinstance(old, dict) and isinstance(new, dict):
                    _merge(old, new)
        else:
            target[key] = value


@dataclass(frozen=True, slots=True)
class Stream:
    """The ASGI channel of one request, to send an answer part by part."""

    receive: Receive
    send: Send

    async def multipart(self, status: int, headers: dict[str, str], parts: AsyncIterator[bytes]) -> str:
        """Send `parts` (encoded JSON) as a multipart/mixed body, each as soon as it is made, while listening
        for the client going away: then the parts' producer is cancelled (graphql-core's work for the later
        parts with it). `SENT`, `CANCELLED` or `FAILED` (logged)."""
        headers = {**headers, "Content-Type": MULTIPART_CONTENT_TYPE}
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
            }
        )

        async def write() -> str:
            body = DELIMITER
            try:
                async for encoded in parts:
                    message = {
                        "type": "http.response.body",
                        "body": body + multipart_part(encoded),
                        "more_body": True,
                    }
                    await self.send(message)
                    body = b""
            except Exception as exc:
                log.error("internal error while sending a multipart answer: %s", one_line(exc))
                await self.send({"type": "http.response.body", "body": b"", "more_body": False})
                return FAILED
            await self.send({"type": "http.response.body", "body": CLOSE, "more_body": False})
            return SENT

        async def gone() -> None:
            while (await self.receive())["type"] != "http.disconnect":
                pass

        writing, watching = asyncio.ensure_future(write()), asyncio.ensure_future(gone())
        try:
            await asyncio.wait((writing, watching), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watching.cancel()
            cancelled = not writing.done()
            if cancelled:
                writing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            with contextlib.suppress(asyncio.CancelledError):
                delivered = await writing
        return CANCELLED if cancelled else delivered
