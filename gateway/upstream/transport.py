"""The upstream client's transport: aiohttp under the httpx API (httpx-aiohttp).

Measured by `bench/plan.py` in one run: about half of httpx's own client CPU per GET of a 412 KB upstream
answer (0.82 against 1.57 ms, 4 at a time). The gateway keeps httpx's API (`UpstreamHTTP`, tests' mock
transports); only the wire under it changes.

Two things the plain httpx-aiohttp transport does not do as the gateway needs:

- its session would keep the cookies an upstream sets and send them with every later caller's requests: this
  one accepts none (`DummyCookieJar`), as the httpx client does (`keeping_no_cookies`);
- it reports most of aiohttp's connection errors as `httpx.ConnectTimeout` (a refused connection and a
  connection dropped mid-answer alike), which would tell the retry policy that the request never left and
  the client that the upstream was slow. Here each error becomes the httpx error of what happened, by its
  aiohttp cause: refused or unreachable -> ConnectError, connect timeout -> ConnectTimeout, read timeout ->
  ReadTimeout, dropped or broken answer -> RemoteProtocolError / ReadError.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


def as_httpx_error(exc: BaseException) -> BaseException:
    """The httpx error for an aiohttp failure (itself, or the cause httpx-aiohttp mapped)."""
    cause = exc.__cause__ if isinstance(exc, httpx.HTTPError) and exc.__cause__ is not None else exc
    message = str(cause) or type(cause).__name__
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        error: httpx.HTTPError = httpx.ConnectTimeout(message)
    elif isinstance(cause, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError | TimeoutError):
        error = httpx.ReadTimeout(message)
    elif isinstance(cause, aiohttp.ClientConnectorError):
        error = httpx.ConnectError(message)
    elif isinstance(cause, aiohttp.ClientPayloadError):
        error = httpx.ReadError(message)
    elif isinstance(cause, aiohttp.ClientConnectionError | aiohttp.ClientResponseError):
        error = httpx.RemoteProtocolError(message)
    else:
        return exc
    error.__cause__ = cause
    return error


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self.stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.stream:
                yield chunk
        except (aiohttp.ClientError, httpx.HTTPError, TimeoutError) as exc:
            raise as_httpx_error(exc) from None

    async def aclose(self) -> None:
        await self.stream.aclose()


class UpstreamTransport(AiohttpTransport):
    def __init__(self, max_connections: int) -> None:
        def session() -> aiohttp.ClientSession:
            connector = aiohttp.TCPConnector(limit=max_connections)
            return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

        super().__init__(client=session)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except (aiohttp.ClientError, httpx.HTTPError, TimeoutError) as exc:
            raise as_httpx_error(exc) from None
        response.stream = _Body(response.stream)  # type: ignore[arg-type]
        return response
