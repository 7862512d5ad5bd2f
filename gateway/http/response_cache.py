"""Whole answers, reused while every upstream answer they were built from is still cached.

A GraphQL answer is a function of the query, its variables, the credential and the upstream answers
it used. When each of those came from (or went into) the upstream cache, the answer can be served
again, unchanged, until the first of them expires: that is what this cache does, in the same store
as the upstream cache (memory, or Redis shared by several gateway processes). An answer that used an
upstream failure, an uncached route (TTL 0) or no upstream answer at all is never kept, so errors
such as timeouts are always retried; errors computed from cached data (a dangling link) are kept
with the rest of the answer, exactly as a fresh execution over the cache would give them.

An answer is kept as the bytes sent: its `data` and `errors` encoded once, when it was built. A reused
answer is those bytes again, with the request's own `extensions` added (`gateway/http/endpoint.py`): the same
`extensions.upstream` (0 calls, its cache hits) and `cacheControl.fromCache` as an answer rebuilt from the
upstream cache would report. In Redis the bytes travel as text inside the entry's JSON.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.upstream.cache import NAMESPACE, CacheStats, UpstreamCache
from gateway.upstream.credentials import CallStats, Credential

MIN_TTL = 0.5  # seconds; an answer about to expire is not worth storing


@dataclass(frozen=True, slots=True)
class Kept:
    """An answer from the response cache."""

    body: bytes  # the answer's `data` and `errors`, encoded, as a JSON object
    answers: int  # the upstream answers it was built from
    outcome: str  # ok, or partial (errors beside the data)
    expires_at: float  # until when it may be reused (wall-clock time, 0 when unknown)


def response_key(credential: Credential, query: str, operation_name: str | None, variables: Any) -> str:
    """The one place an answer's cache key is made: credential fingerprint, operation and variables."""
    text = orjson.dumps([query, operation_name, variables], option=orjson.OPT_SORT_KEYS)
    return f"{NAMESPACE}:response:{credential.fingerprint}:{hashlib.sha256(text).hexdigest()[:40]}"


def reusable_until(stats: CallStats) -> float | None:
    """Until when an answer built with these upstream calls may be reused (wall-clock time), None when never:
    the rule of this cache, and of HTTP caching of GET answers (`gateway/http/graphql_http.py`). Reusable when it
    used at least one upstream answer and every one it used is cached for at least MIN_TTL more seconds
    (an upstream failure or an uncached route is never reusable)."""
    if stats.answers == 0:
        return None
    until = stats.reusable_until
    return until if until - time.time() >= MIN_TTL else None


class ResponseCache:
    def __init__(self, cache: UpstreamCache, enabled: bool) -> None:
        self.cache = cache
        self.enabled = enabled and (cache.ttl_list > 0 or cache.ttl_case > 0)
        # lookups of whole answers (the upstream counters stay apart)
        self.stats = CacheStats(name="response")
        self.stored = 0

    def report(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "hits": self.stats.hits,
            "misses": self.stats.misses,
            "stored": self.stored,
        }

    async def get(self, key: str) -> Kept | None:
        """A kept answer, or None."""
        if not self.enabled:
            return None
        cached = await self.cache.get(key, self.stats)
        if cached is None or not isinstance(cached.data, dict):
            return None
        entry = cached.data
        body = entry.get("body")
        if isinstance(body, str):  # from Redis
            body = body.encode()
        if not isinstance(body, bytes):  # not an entry this gateway wrote
            return None
        return Kept(body, int(entry.get("answers", 0)), str(entry.get("outcome", "ok")), cached.expires_at)

    async def put(self, key: str, body: bytes, outcome: str, stats: CallStats, until: float | None) -> None:
        """Keep `body` (an answer's encoded `data` and `errors`; `outcome` for the metrics of its reuses) until
        `until` (`reusable_until(stats)`; None: not reusable)."""
        if not self.enabled or until is None:
            return
        ttl = until - time.time()
        if ttl < MIN_TTL:
            return
        kept = body.decode() if self.cache.shared else body  # Redis entries are JSON
        await self.cache.set(key, {"body": kept, "answers": stats.answers, "outcome": outcome}, {}, ttl)
        self.stored += 1
