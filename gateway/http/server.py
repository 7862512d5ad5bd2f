"""The HTTP/1.1 server protocol `casegraph serve` runs: uvicorn's httptools protocol, with the request head
bounded in time and size.

uvicorn reads a request's head (request line and headers) with no time limit and, with httptools, no size
limit: a connection sending half its headers and waiting is held for ever, one sending headers without end is
buffered. Here a request head must be complete within `HEADER_TIMEOUT` seconds of the connection opening (or of
the request's first byte on a kept-alive connection), else the connection gets 408 and is closed; a head past
`MAX_HEADER_BYTES` gets 431 and is closed. Neither ever reaches the app. The body is the app's to bound
(`BODY_TIMEOUT`, `MAX_REQUEST_BYTES`).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _refusal(status: int, reason: str, code: str, message: str) -> bytes:
    body = b'{"errors":[{"message":"%s","extensions":{"code":"%s"}}]}' % (message.encode(), code.encode())
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
        % (status, reason.encode(), len(body), body)
    )


HEAD_TIMEOUT = _refusal(408, "Request Timeout", "REQUEST_TIMEOUT", "The request head did not arrive in time.")
HEAD_TOO_LARGE = _refusal(
    431, "Request Header Fields Too Large", "REQUEST_TOO_LARGE", "The request head is too large."
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """One timer per connection, not per request: a request only notes when its head began (the common path
    stays an attribute or two); the timer, every HEADER_TIMEOUT at most, refuses a head that took too long."""

    def __init__(self, *args: Any, header_timeout: float, max_header_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self._timer: asyncio.TimerHandle | None = None
        self._head_since = 0.0  # when the head coming in began (the loop's clock)
        self._head_pending = False  # a head is coming in
        self._head_bytes = 0

    def _head_begins(self) -> None:
        self._head_since = self.loop.time()
        self._head_pending = True
        self._head_bytes = 0

    def _check(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self._head_pending and now - self._head_since >= self.header_timeout:
            self._refuse(HEAD_TIMEOUT)
            return
        due = self._head_since + self.header_timeout if self._head_pending else now + self.header_timeout
        self._timer = self.loop.call_at(due, self._check)

    def _refuse(self, answer: bytes) -> None:
        self._head_pending = False
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a response is under way: no answer can go in between
            return
        self.transport.write(answer)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_begins()  # from the connection's start: a client sending nothing is bounded too
        self._timer = self.loop.call_at(self._head_since + self.header_timeout, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # refused: the rest is not read
        if self._head_pending:  # a head is coming in: count its bytes (httptools keeps a header line until
            end = data.find(b"\r\n\r\n")  # it ends, so its callbacks come too late to count)
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > self.max_header_bytes:
                self._refuse(HEAD_TOO_LARGE)
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._head_pending:  # the next request on a kept-alive connection (its first bytes uncounted)
            self._head_begins()

    def on_headers_complete(self) -> None:
        self._head_pending = False
        if self.transport.is_closing():
            return  # refused while the head came in
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self.transport.is_closing():
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self.transport.is_closing():
            super().on_message_complete()


def bounded_protocol(header_timeout: float, max_header_bytes: int) -> Any:
    """The protocol factory to give uvicorn as `http` (picklable, for `--workers`)."""
    return partial(BoundedHttpToolsProtocol, header_timeout=header_timeout, max_header_bytes=max_header_bytes)
