"""The one pooled HTTP client to the upstreams, and the mapping of HTTP failures to gateway errors.

Every upstream request goes through `UpstreamHTTP.get_json`: one place builds the URL's query string
(canonical: sorted keys), looks in the cache, joins an identical request already in flight (within
or across GraphQL requests of this process), sends the credential, parses the body once with orjson
and turns failures into `GatewayError`s with stable codes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import orjson

from gateway.cache import UpstreamCache, cache_key
from gateway.config import Settings
from gateway.credentials import Caller, Credential
from gateway.errors import (
    Forbidden,
    GatewayError,
    NotFound,
    Unauthenticated,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)

log = logging.getLogger("gateway.upstream")

Params = Mapping[str, str | int | bool | None]


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    data: Any
    headers: Mapping[str, str]
    expires_at: float = 0.0  # until when this answer may be reused (0: not cached, not reusable)


def query_string(params: Params) -> str:
    """The canonical query string: keys sorted, None left out, booleans as true/false."""
    items = []
    for key in sorted(params):
        value = params[key]
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        items.append((key, str(value)))
    return urlencode(items, quote_via=quote)


def path_segment(value: int | str) -> str:
    """An id as one URL path segment: it can never add a segment or change the host."""
    return quote(str(value), safe="")


class UpstreamHTTP:
    """Owns the pooled `httpx.AsyncClient` (one per process); close it on shutdown."""

    def __init__(
        self, settings: Settings, cache: UpstreamCache, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_connections,
            ),
            follow_redirects=False,
            transport=transport,
        )
        self.cache = cache
        self.calls = 0
        self._inflight: dict[str, asyncio.Future[UpstreamResponse]] = {}

    async def aclose(self) -> None:
        await self.client.aclose()

    async def get_json(
        self, api: str, base: str, path: str, params: Params, caller: Caller
    ) -> UpstreamResponse:
        qs = query_string(params)
        key = cache_key(api, path, qs, caller.credential, base)
        ttl = self.cache.ttl_for(path)
        # An identical request in flight is joined first: its answer is fresher than the cache's and
        # costs no cache lookup. After the lookup (which may wait on Redis) look again, since one may
        # have started meanwhile.
        task = self._inflight.get(key)
        if task is None and ttl:
            cached = await self.cache.get(key)
            if cached is not None:
                caller.stats.cache_hits += 1
                caller.stats.used(cached.expires_at)
                return UpstreamResponse(cached.data, cached.headers, cached.expires_at)
            task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(
                self._fetch_and_store(api, base, path, qs, caller.credential, key, ttl)
            )
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
            caller.stats.upstream_calls += 1
        else:
            caller.stats.shared_calls += 1
        # shield: a caller that goes away does not cancel the call the others are waiting on
        try:
            response = await asyncio.shield(task)
        except BaseException:
            caller.stats.used(0.0)  # an answer built on a failure is never reused
            raise
        caller.stats.used(response.expires_at)
        return response

    def _settled(self, key: str, task: asyncio.Future[UpstreamResponse]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody waits for any more is not logged as lost

    async def _fetch_and_store(
        self, api: str, base: str, path: str, qs: str, credential: Credential, key: str, ttl: float
    ) -> UpstreamResponse:
        response = await self._fetch(api, base, path, qs, credential)
        if ttl:
            response = UpstreamResponse(response.data, response.headers, time.time() + ttl)
            await self.cache.set(key, response.data, response.headers, ttl)
        return response

    async def _fetch(
        self, api: str, base: str, path: str, qs: str, credential: Credential
    ) -> UpstreamResponse:
        url = f"{base}{path}?{qs}" if qs else f"{base}{path}"
        headers = {"Accept": "application/json"}
        if credential.header:
            headers["Authorization"] = credential.header
        started = time.perf_counter()
        self.calls += 1
        try:
            response = await self.client.get(url, headers=headers)
        except httpx.TimeoutException:
            log.warning("%s upstream timed out: GET %s", api, path)
            raise UpstreamTimeout(f"The {api} upstream did not answer in time.") from None
        except httpx.HTTPError as exc:
            log.warning("%s upstream unreachable: GET %s (%s)", api, path, type(exc).__name__)
            raise UpstreamError(f"The {api} upstream could not be reached.") from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.debug("%s GET %s -> %s in %.1f ms", api, path, response.status_code, elapsed_ms)
        if response.status_code != 200:
            raise error_for_status(api, response)
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            log.warning("%s upstream sent malformed JSON: GET %s", api, path)
            raise UpstreamError(f"The {api} upstream sent a malformed response.") from None
        return UpstreamResponse(data, response.headers)


def _upstream_message(response: httpx.Response) -> str | None:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    message = body.get("error") if isinstance(body, dict) else None
    return str(message)[:300] if message else None


def error_for_status(api: str, response: httpx.Response) -> GatewayError:
    status = response.status_code
    detail = _upstream_message(response)
    if status == 404:
        return NotFound(detail or f"Not found in the {api} upstream.")
    if status == 401:
        return Unauthenticated(f"The {api} upstream refused the credentials.")
    if status == 403:
        return Forbidden(f"The {api} upstream does not allow this.")
    if status == 400:
        return UpstreamBadRequest(f"The {api} upstream refused the request: {detail or 'bad request'}")
    if status == 429:
        retry_after = response.headers.get("Retry-After")
        return UpstreamRateLimited(f"The {api} upstream is rate limiting.", retryAfter=retry_after)
    return UpstreamError(f"The {api} upstream failed (HTTP {status}).", upstreamStatus=status)
