"""The upstream response cache (aiocache): in memory by default, Redis when CACHE_URL names one.

Keys are made in one place, `cache_key`: API, upstream base URL, path, the query string normalised
(parameter order and `filters` key order do not matter) and the credential's fingerprint, so two callers with
different credentials never share an entry, and no token is ever stored in clear.

A cache failure is never a query failure: Redis errors and timeouts are logged (at most once per
`RETRY_AFTER` seconds) and the cache is skipped until then: a circuit breaker (`gateway/upstream/resilience.py`)
that opens on one failure and lets one probe through after `RETRY_AFTER` seconds. `stats` counts hits, misses and errors
for /healthz; every lookup and error is also counted in /metrics (`gateway/ops/metrics.py`), under its
`CacheStats.name` (upstream, response, apq).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import httpx
import msgspec
import orjson
from aiocache import RedisCache, SimpleMemoryCache
from aiocache.base import BaseCache
from aiocache.serializers import BaseSerializer, NullSerializer

from gateway.ops import metrics
from gateway.ops.config import Settings
from gateway.upstream.credentials import Credential
from gateway.upstream.resilience import BreakerState, CircuitBreaker

log = logging.getLogger("gateway.cache")

RETRY_AFTER = 5.0  # seconds the cache is skipped after a failure
NAMESPACE = "casegraph"  # every key starts with "casegraph:"; `clear` removes only those
SINGLE_CASE = re.compile(r"^/api/v[12]/cases/[^/]+$")
KEPT_HEADERS = ("x-total-count", "x-page", "x-per-page", "x-total-pages")


def _encoded(value: bytes) -> bytes:
    """The serializer of a value encoded already (`UpstreamCache.set`)."""
    return value


class MsgpackSerializer(BaseSerializer):
    """Entries as MessagePack for Redis: an upstream answer's bytes are stored as they came (no JSON
    inside JSON), beside the few headers and the expiry."""

    DEFAULT_ENCODING = None

    def dumps(self, value: Any) -> bytes:
        return msgspec.msgpack.encode(value)

    def loads(self, value: bytes | None) -> Any:
        if value is None:
            return None
        try:
            return msgspec.msgpack.decode(value)
        except msgspec.DecodeError:  # not an entry this gateway wrote (or an older format): a miss
            return None


def cache_key(api: str, path: str, query: str, credential: Credential, base: str = "") -> str:
    """The one place a cache key is made. `base` (the upstream's base URL) is part of the digest, so
    gateways in front of different upstreams never share entries, even in one Redis database."""
    pairs = []
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "filters":
            with contextlib.suppress(orjson.JSONDecodeError):
                value = orjson.dumps(orjson.loads(value), option=orjson.OPT_SORT_KEYS).decode()
        pairs.append((name, value))
    digest = hashlib.sha256(f"{base}\n{urlencode(sorted(pairs))}".encode()).hexdigest()[:32]
    return f"{NAMESPACE}:{api}:{credential.fingerprint}:{path}:{digest}"


def redis_backend(url: str, timeout: float) -> RedisCache:
    """A Redis cache for redis://[user:password@]host[:port][/db], or rediss:// for TLS."""
    parts = urlsplit(url)
    db = parts.path.strip("/")
    pool_kwargs: dict[str, Any] = {}
    if parts.username:
        pool_kwargs["username"] = unquote(parts.username)
    return RedisCache(
        serializer=MsgpackSerializer(),
        endpoint=parts.hostname or "127.0.0.1",
        port=parts.port or 6379,
        db=int(db) if db.isdigit() else 0,
        password=unquote(parts.password) if parts.password else None,
        ssl=parts.scheme == "rediss",
        create_connection_timeout=timeout,
        connection_pool_kwargs=pool_kwargs,
        timeout=timeout,
    )


@dataclass
class CacheStats:
    hits: int = 0  # lookups answered by the cache
    misses: int = 0  # lookups it could not answer (including while it is skipped after a failure)
    errors: int = 0  # failed cache operations (Redis down, timed out, ...)
    name: str = "upstream"  # which cache these lookups are of, in /metrics


@dataclass(frozen=True, slots=True)
class Cached:
    """A cached entry: an upstream answer's body (bytes, decoded by each caller's plan), the headers the
    gateway reads, and when it expires. (The response and persisted-query caches keep their own values.)"""

    data: Any
    headers: httpx.Headers  # case-insensitive, as on a live response
    expires_at: float = 0.0  # wall-clock time (time.time()); 0 for entries without one


class UpstreamCache:
    def __init__(self, settings: Settings) -> None:
        self.ttl_list = settings.cache_ttl if settings.cache_ttl_list is None else settings.cache_ttl_list
        self.ttl_case = settings.cache_ttl if settings.cache_ttl_case is None else settings.cache_ttl_case
        if settings.cache_ttl == 0:
            self.ttl_list = self.ttl_case = 0
        self.shared = bool(settings.cache_url and not settings.cache_url.startswith("memory://"))
        self.backend: BaseCache
        if self.shared:
            assert settings.cache_url is not None
            self.backend = redis_backend(settings.cache_url, settings.cache_timeout)
        else:
            # In process: entries are kept as they are given (an upstream answer's bytes), never copied.
            self.backend = SimpleMemoryCache(serializer=NullSerializer(), timeout=0)
        self.stats = CacheStats()
        # skipped for RETRY_AFTER seconds after a failure (its clock read through this module's `time`)
        self.breaker = CircuitBreaker("cache", 1, RETRY_AFTER, clock=lambda: time.monotonic(), logger=None)

    @property
    def kind(self) -> str:
        return "redis" if self.shared else "memory"

    def report(self) -> dict[str, Any]:
        """The counters since start, as /healthz shows them."""
        return {
            "backend": self.kind,
            "hits": self.stats.hits,
            "misses": self.stats.misses,
            "errors": self.stats.errors,
        }

    def ttl_for(self, path: str) -> float:
        """Seconds to keep an answer from this upstream path (0: do not cache)."""
        return self.ttl_case if SINGLE_CASE.match(path) else self.ttl_list

    def _failed(self, action: str, exc: BaseException) -> None:
        self.stats.errors += 1
        metrics.cache_error(action)
        if self.breaker.state is not BreakerState.OPEN:  # the first failure since the cache last worked
            log.warning(
                "cache %s failed (%s); serving without the cache for %.0fs",
                action,
                type(exc).__name__,
                RETRY_AFTER,
            )
        self.breaker.failure()

    def _worked(self) -> None:
        if self.breaker.state is not BreakerState.CLOSED:
            log.info("cache is working again")
        self.breaker.success()

    async def get(self, key: str, stats: CacheStats | None = None) -> Cached | None:
        """The entry under `key`, counted in `stats` (the upstream counters unless others are given)."""
        stats = self.stats if stats is None else stats
        found = await self._lookup(key, stats)
        metrics.cache_lookup(stats.name, found is not None)
        return found

    async def _lookup(self, key: str, stats: CacheStats) -> Cached | None:
        if not self.breaker.allow():
            stats.misses += 1
            return None
        try:
            value = await self.backend.get(key)
        except Exception as exc:
            self._failed("read", exc)
            value = None
        else:
            self._worked()
        if value is None:
            stats.misses += 1
            return None
        if isinstance(value, Cached):
            stats.hits += 1
            return value
        try:
            cached = Cached(value["d"], httpx.Headers(value["h"]), float(value.get("x", 0)))
        except (
            TypeError,
            KeyError,
            ValueError,
            AttributeError,
        ):  # not an entry this gateway wrote: ignore it
            stats.misses += 1
            return None
        stats.hits += 1
        return cached

    async def set(self, key: str, data: Any, headers: Any, ttl: float) -> None:
        if not self.breaker.allow():
            return
        kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
        expires_at = time.time() + ttl
        value: Any = (
            {"d": data, "h": kept, "x": expires_at}
            if self.shared
            else Cached(data, httpx.Headers(kept), expires_at)
        )
        dumps_fn = None
        if self.shared:
            # Encoded here, apart from the Redis call: a value that cannot be encoded is this entry's problem
            # (left uncached, counted as action "encode"), not Redis being down for every caller.
            try:
                value = self.backend.serializer.dumps(value)
            except Exception as exc:
                self.stats.errors += 1
                metrics.cache_error("encode")
                log.warning("cache entry not kept: it cannot be encoded (%s)", type(exc).__name__)
                self.breaker.release()  # no verdict on Redis
                return
            dumps_fn = _encoded
        try:
            await self.backend.set(key, value, ttl=ttl, dumps_fn=dumps_fn)
        except Exception as exc:
            self._failed("write", exc)
        else:
            self._worked()

    async def clear(self) -> None:
        """Drop the gateway's entries (only keys under `casegraph:`; never the rest of a shared Redis db)."""
        try:
            await self.backend.clear(namespace=NAMESPACE)
        except Exception as exc:
            self._failed("clear", exc)

    async def aclose(self) -> None:
        try:
            client = getattr(self.backend, "client", None)
            if client is not None and hasattr(client, "aclose"):
                await client.aclose()  # redis-py >= 5 (its `close` is deprecated)
            else:
                await self.backend.close()
        except Exception as exc:  # closing a broken connection must not fail shutdown
            log.debug("cache close: %s", type(exc).__name__)
