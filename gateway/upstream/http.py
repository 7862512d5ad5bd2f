"""The one pooled HTTP client to the upstreams, and the mapping of HTTP failures to gateway errors.

Every upstream request goes through `UpstreamHTTP.get_json`: one place builds the URL's query string
(canonical: sorted keys), looks in the cache, joins an identical request already in flight (within
or across GraphQL requests of this process), sends the credential, reads the body (streamed, never past
MAX_UPSTREAM_BODY_BYTES), decodes it with the caller's decoder (its operation plan's: only the keys it reads,
`gateway/planning/plan.py`) and turns failures into `GatewayError`s with stable codes. The cache and joined callers
share the body's bytes; each caller decodes them for itself. A body that is not JSON is never cached. Each logical request runs through its upstream's `UpstreamGuard` (`resilience.py`): retries with
backoff within a budget, and a circuit breaker. Retries happen inside the one in-flight call, so callers
joining it and the cache see one logical request; `attempts` counts the HTTP requests actually sent.

Credentials only ever go to the configured upstreams: every URL is the configured base plus a path built
here (`path_segment` ids), redirects are never followed, and URLs found in upstream answers are never
fetched. Upstream error texts are scrubbed of the credential before they reach a message or a log.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import msgspec
import orjson

from gateway.ops import metrics, tracing
from gateway.ops.bodies import read_capped
from gateway.ops.config import Settings
from gateway.ops.errors import (
    BadUserInput,
    Forbidden,
    GatewayError,
    NotFound,
    Unauthenticated,
    UpstreamBadRequest,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from gateway.ops.logs import request_id
from gateway.upstream.cache import UpstreamCache, cache_key
from gateway.upstream.credentials import Caller, Credential
from gateway.upstream.decoding import Decode, json_decode
from gateway.upstream.resilience import UpstreamGuard
from gateway.upstream.transport import UpstreamTransport

log = logging.getLogger("gateway.upstream")

Params = Mapping[str, str | int | bool | None]

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
ERROR_BODY_LIMIT = 64 * 1024  # bytes of an error answer read for its message
# The longest upstream URL sent: RFC 9110 asks every sender and recipient to support 8000 octets, and
# servers commonly refuse longer ones (httpx itself refuses past 65536).
MAX_URL_LENGTH = 8000
_ID = re.compile(r"[1-9][0-9]{0,17}")


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    data: Any  # the body, decoded by the caller's decoder
    headers: Mapping[str, str]
    expires_at: float = 0.0  # until when this answer may be reused (0: not cached, not reusable)


@dataclass(frozen=True, slots=True)
class Fetched:
    """One upstream answer as fetched and shared: its bytes, and the first caller's decoding of them."""

    body: bytes
    headers: Mapping[str, str]
    expires_at: float = 0.0
    data: Any = None
    decode: Decode | None = None  # the decoder `data` came from


def decode_body(api: str, path: str, body: bytes, decode: Decode) -> Any:
    """`body` decoded by `decode`; when its shape is not what the decoder expects (a string where the plan
    reads an object, say), decoded whole, so execution meets the defect as graphql-core would. A body that is
    not JSON is UPSTREAM_BAD_RESPONSE."""
    if decode is not json_decode:
        try:
            return decode(body)
        except msgspec.ValidationError:
            pass
        except (msgspec.DecodeError, RecursionError):
            raise _malformed(api, path, body) from None
    try:
        return json_decode(body)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: msgspec's, past ~1,000 levels of nesting
        raise _malformed(api, path, body) from None


def _malformed(api: str, path: str, body: bytes) -> GatewayError:
    log.warning("%s upstream sent malformed JSON: GET %s (%d bytes)", api, path, len(body))
    return _marked(UpstreamBadResponse(f"The {api} upstream sent a malformed response."), False)


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
    """A case id as one URL path segment. Only positive integer ids pass, so no value can add a segment,
    climb with `..` or change the host. Ids from callers are checked long before (BAD_USER_INPUT); one that
    fails here came from an upstream answer (a linked case), hence UPSTREAM_BAD_RESPONSE."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not _ID.fullmatch(text):
        raise UpstreamBadResponse(f"{str(value)[:40]!r} is not a valid case id.")
    return quote(text, safe="")


def scrub(text: str, credential: Credential) -> str:
    """`text` (an upstream's error message) with the caller's credential blanked out, should it echo it."""
    header = credential.header
    if header:
        for secret in (header, header.partition(" ")[2]):  # the whole header first, then the token
            if len(secret) >= 4:
                text = text.replace(secret, "[redacted]")
    return text


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def keeping_no_cookies() -> CookieJar:
    """A cookie jar that accepts none. The client is shared by every caller, and httpx keeps the cookies
    an answer sets and sends them with every later request: one caller's session would go out with the
    next caller's credential."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


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
            cookies=keeping_no_cookies(),
            transport=transport or UpstreamTransport(settings.max_connections),
        )
        self.cache = cache
        self.settings = settings
        self.max_body = settings.max_upstream_body_bytes
        self.attempt_timeout = settings.attempt_timeout
        self.guards = {api: UpstreamGuard(api, settings) for api in ("v1", "v2")}
        self._bases = {settings.v1_base, settings.v2_base}
        self._inflight: dict[str, asyncio.Future[Fetched]] = {}
        self._waiting: dict[asyncio.Future[Fetched], int] = {}  # callers awaiting each call in flight

    def guard(self, api: str) -> UpstreamGuard:
        guard = self.guards.get(api)
        if guard is None:
            guard = self.guards[api] = UpstreamGuard(api, self.settings)
        return guard

    @property
    def calls(self) -> int:
        """Logical upstream requests sent (a retried request counts once), as the guards counted them."""
        return sum(guard.stats.requests for guard in self.guards.values())

    @property
    def attempts(self) -> int:
        """HTTP requests sent, retries included, as the guards counted them."""
        return sum(guard.stats.attempts for guard in self.guards.values())

    def report(self) -> dict[str, Any]:
        """Each upstream's breaker state, requests, attempts and retries (for /healthz and metrics)."""
        return {api: guard.report() for api, guard in sorted(self.guards.items())}

    async def aclose(self) -> None:
        await self.client.aclose()

    async def get_json(
        self, api: str, base: str, path: str, params: Params, caller: Caller, decode: Decode = json_decode
    ) -> UpstreamResponse:
        qs = query_string(params)
        length = len(base) + len(path) + 1 + len(qs)
        if length > MAX_URL_LENGTH:
            # the caller's input (many ids, a long text) makes a URL no upstream is sure to take: refused
            # before any call, so it is never retried nor counted by the circuit breaker
            raise BadUserInput(
                f"The upstream URL for this request would be {length} characters long, more than the "
                f"{MAX_URL_LENGTH} the gateway sends: ask for fewer ids or a shorter text.",
                urlLength=length,
            )
        key = cache_key(api, path, qs, caller.credential, base)
        ttl = self.cache.ttl_for(path)
        # An identical request in flight is joined first: its answer is fresher than the cache's and
        # costs no cache lookup. After the lookup (which may wait on Redis) look again, since one may
        # have started meanwhile.
        task = self._inflight.get(key)
        if task is None and ttl:
            cached = await self.cache.get(key)
            if cached is not None and isinstance(cached.data, bytes):
                caller.stats.cache_hits += 1
                data = decode_body(api, path, cached.data, decode)
                caller.stats.used(cached.expires_at)
                return UpstreamResponse(data, cached.headers, cached.expires_at)
            task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(
                self._fetch_and_store(api, base, path, qs, caller.credential, key, ttl, decode)
            )
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
            caller.stats.upstream_calls += 1
        else:
            caller.stats.shared_calls += 1
        # shield: a caller that goes away does not cancel the call the others are waiting on; the last one to
        # go does (a client that hung up mid-stream, docs/incremental.md): nobody is left to use its answer
        self._waiting[task] = self._waiting.get(task, 0) + 1
        try:
            fetched = await asyncio.shield(task)
            data = fetched.data if fetched.decode is decode else decode_body(api, path, fetched.body, decode)
        except asyncio.CancelledError:
            caller.stats.used(0.0)
            if self._waiting[task] == 1 and not task.done():
                task.cancel()
            raise
        except BaseException:
            caller.stats.used(0.0)  # an answer built on a failure is never reused
            raise
        finally:
            left = self._waiting.pop(task) - 1
            if left:
                self._waiting[task] = left
        caller.stats.used(fetched.expires_at)
        return UpstreamResponse(data, fetched.headers, fetched.expires_at)

    def _settled(self, key: str, task: asyncio.Future[Fetched]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody waits for any more is not logged as lost

    async def _fetch_and_store(
        self,
        api: str,
        base: str,
        path: str,
        qs: str,
        credential: Credential,
        key: str,
        ttl: float,
        decode: Decode,
    ) -> Fetched:
        """Fetch, decode for the first caller (a body that is not JSON fails here, before it is cached) and
        keep the bytes in the cache."""
        body, headers = await self._fetch(api, base, path, qs, credential)
        data = decode_body(api, path, body, decode)
        expires_at = 0.0
        if ttl:
            expires_at = time.time() + ttl
            await self.cache.set(key, body, headers, ttl)
        return Fetched(body, headers, expires_at, data, decode)

    async def _fetch(
        self, api: str, base: str, path: str, qs: str, credential: Credential
    ) -> tuple[bytes, httpx.Headers]:
        if base not in self._bases or not path.startswith("/api/") or "//" in path:
            raise GatewayError("refusing an upstream URL outside the configured upstreams")  # a bug
        url = f"{base}{path}?{qs}" if qs else f"{base}{path}"
        headers = {"Accept": "application/json"}
        if credential.header:
            headers["Authorization"] = credential.header
        rid = request_id.get()  # the GraphQL request's id (a joined call carries its first caller's)
        if rid:
            headers["X-Request-ID"] = rid
        guard = self.guard(api)
        sent = 0

        async def attempt() -> tuple[bytes, httpx.Headers]:
            nonlocal sent
            sent += 1
            return await self._attempt(api, url, path, headers, credential)

        cache = "miss" if self.cache.ttl_for(path) else "off"
        try:
            with tracing.upstream_span(api, base, path, headers, guard.breaker, cache):
                return await guard.call(attempt)
        finally:
            metrics.observe_call(api, sent, guard.breaker)

    async def _attempt(
        self, api: str, url: str, path: str, headers: dict[str, str], credential: Credential
    ) -> tuple[bytes, httpx.Headers]:
        """One HTTP request, bounded in time (ATTEMPT_TIMEOUT in all) and in body size."""
        started = time.perf_counter()
        outcome = "error"  # for the metrics: the HTTP status once one came, "timeout", or "cancelled"
        try:
            async with asyncio.timeout(self.attempt_timeout):
                async with self.client.stream("GET", url, headers=headers) as response:
                    status = response.status_code
                    outcome = str(status)
                    tracing.upstream_status(status)
                    if status != 200:
                        body = await self._read(response, ERROR_BODY_LIMIT, api, path, truncate=True)
                        raise error_for_status(api, status, response.headers, body, credential)
                    body = await self._read(response, self.max_body, api, path)
                    response_headers = response.headers
        except asyncio.CancelledError:
            outcome = "cancelled"  # nobody waits for it any more (the last caller went away)
            raise
        except TimeoutError:
            outcome = "timeout"
            log.warning("%s upstream too slow: GET %s took over %.1fs", api, path, self.attempt_timeout)
            raise _marked(UpstreamTimeout(f"The {api} upstream did not answer in time."), False) from None
        except httpx.TimeoutException as exc:
            outcome = "timeout"
            log.warning("%s upstream timed out: GET %s (%s)", api, path, type(exc).__name__)
            error = UpstreamTimeout(f"The {api} upstream did not answer in time.")
            # a connect timeout never reached the upstream: safe and cheap to retry
            raise _marked(error, isinstance(exc, httpx.ConnectTimeout)) from None
        except httpx.ConnectError as exc:
            log.warning("%s upstream unreachable: GET %s (%s)", api, path, type(exc).__name__)
            raise _marked(UpstreamError(f"The {api} upstream could not be reached."), True) from None
        except httpx.HTTPError as exc:  # reset, dropped mid-answer, protocol violation
            log.warning("%s upstream connection failed: GET %s (%s)", api, path, type(exc).__name__)
            error = UpstreamError(f"The {api} upstream dropped the connection.")
            raise _marked(error, isinstance(exc, httpx.TransportError)) from None
        finally:
            metrics.observe_upstream(path, outcome, time.perf_counter() - started)
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.debug("%s GET %s -> 200 in %.1f ms", api, path, elapsed_ms)
        return body, response_headers

    async def _read(
        self, response: httpx.Response, limit: int, api: str, path: str, truncate: bool = False
    ) -> bytes:
        """The body, read as it streams in; past `limit` bytes reading stops (and the connection is
        dropped): an error, or for an error answer (`truncate`) just the first `limit` bytes."""
        return await read_capped(
            response.headers.get("content-length"),
            response.aiter_bytes(),
            limit,
            lambda size: self._too_large(api, path, size, limit),
            truncate,
        )

    @staticmethod
    def _too_large(api: str, path: str, size: int, limit: int) -> UpstreamBadResponse:
        log.warning(
            "%s upstream answer too large: GET %s (over %d bytes, limit %d)", api, path, size - 1, limit
        )
        error = UpstreamBadResponse(f"The {api} upstream sent a response larger than the gateway accepts.")
        return _marked(error, False)


def _marked(error: GatewayError, retryable: bool, retry_after: float | None = None) -> Any:
    """`error`, marked for the retry policy (`resilience.py`); the marks never reach the client."""
    error.retryable = retryable  # type: ignore[attr-defined]
    error.retry_after = retry_after  # type: ignore[attr-defined]
    return error


def _upstream_message(body: bytes, credential: Credential) -> str | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    message = parsed.get("error") if isinstance(parsed, dict) else None
    return scrub(str(message), credential)[:300] if message else None


def error_for_status(
    api: str, status: int, headers: Mapping[str, str], body: bytes, credential: Credential
) -> GatewayError:
    """The error for a non-200 answer, marked retryable for 500/502/503/504 and 429."""
    detail = _upstream_message(body, credential)
    if status == 404:
        return _marked(NotFound(detail or f"Not found in the {api} upstream."), False)
    if status == 401:
        if not credential.header:
            message = (
                f"No credential was sent (no Authorization header), and the {api} upstream requires one."
            )
            return _marked(Unauthenticated(message), False)
        message = f"The {api} upstream refused the credentials."
        if " " not in credential.header:  # a token without its scheme (or a scheme without its token)
            message += (
                " The Authorization header is one word: the upstreams expect a scheme and a token,"
                " `Authorization: Bearer <token>`."
            )
        return _marked(Unauthenticated(message), False)
    if status == 403:
        return _marked(Forbidden(f"The {api} upstream does not allow this."), False)
    if status == 400:
        message = f"The {api} upstream refused the request: {detail or 'bad request'}"
        return _marked(UpstreamBadRequest(message), False)
    retry_after = retry_after_seconds(headers.get("Retry-After"))
    if status == 429:
        error = UpstreamRateLimited(
            f"The {api} upstream is rate limiting.", retryAfter=headers.get("Retry-After")
        )
        return _marked(error, True, retry_after)
    error = UpstreamError(f"The {api} upstream failed (HTTP {status}).", upstreamStatus=status)
    return _marked(error, status in RETRYABLE_STATUS, retry_after if status == 503 else None)
