"""Whole answers, reused while every upstream answer they were built from is still cached.

A GraphQL answer is a function of the query, its variables, the credential and the upstream answers
it used. When each of those came from (or went into) the upstream cache, the answer can be served
again, unchanged, until the first of them expires: that is what this cache does, in the same store
as the upstream cache (memory, or Redis shared by several gateway processes). An answer that used an
upstream failure, an uncached route (TTL 0) or no upstream answer at all is never kept, so errors
such as timeouts are always retried; errors computed from cached data (a dangling link) are kept
with the rest of the answer, exactly as a fresh execution over the cache would give them.

A reused answer reports the same `extensions.upstream` (0 calls, its cache hits) and
`cacheControl.fromCache` as an answer rebuilt from the upstream cache would.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson

from gateway.cache import NAMESPACE, CacheStats, UpstreamCache
from gateway.credentials import CallStats, Credential

MIN_TTL = 0.5  # seconds; an answer about to expire is not worth storing


def response_key(credential: Credential, query: str, operation_name: str | None, variables: Any) -> str:
    """The one place an answer's cache key is made: credential fingerprint, operation and variables."""
    text = orjson.dumps([query, operation_name, variables], option=orjson.OPT_SORT_KEYS)
    return f"{NAMESPACE}:response:{credential.fingerprint}:{hashlib.sha256(text).hexdigest()[:40]}"


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

    async def get(self, key: str) -> tuple[dict[str, Any], int, float] | None:
        """A kept answer (data and errors, as sent), how many upstream answers it was built from, and until
        when it may be reused (wall-clock time, 0 when unknown)."""
        if not self.enabled:
            return None
        cached = await self.cache.get(key, self.stats)
        if cached is None or not isinstance(cached.data, dict) or "body" not in cached.data:
            return None
        return cached.data["body"], int(cached.data.get("answers", 0)), cached.expires_at

    async def put(self, key: str, body: dict[str, Any], stats: CallStats) -> None:
        """Keep `body` if every upstream answer it used is reusable, until the first of them expires."""
        if not self.enabled or stats.answers == 0:
            return
        ttl = stats.reusable_until - time.time()
        if ttl < MIN_TTL:
            return
        await self.cache.set(key, {"body": body, "answers": stats.answers}, {}, ttl)
        self.stored += 1
