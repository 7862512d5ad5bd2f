"""Automatic persisted queries, Apollo's protocol: a client sends the SHA-256 of its query instead of the text.

    {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "<64 hex digits>"}}}

- Hash only (POST, or GET with `extensions` in the URL): the query registered under that hash is run; an
  unknown hash is answered with the error `PersistedQueryNotFound` (code `PERSISTED_QUERY_NOT_FOUND`), and
  the client sends the hash again with the query.
- Hash and query: the hash must be the query's SHA-256 (else `PERSISTED_QUERY_HASH_MISMATCH`, HTTP 400); the
  query runs as usual and, once it has passed parsing and validation, is registered under its hash.

Queries are kept in the same store as the cache (memory, or the Redis every gateway process shares) under
`casegraph:apq:<hash>` for `APQ_TTL` seconds; only valid queries are kept. With `PERSISTED_QUERIES=false`
a request carrying a hash gets `PersistedQueryNotSupported` (code `PERSISTED_QUERY_NOT_SUPPORTED`).

A hash-only GET is a short, stable URL: `gateway/http/graphql_http.py` lets CDNs and browsers cache its answer
when it came from the response cache.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from gateway.upstream.cache import NAMESPACE, CacheStats, UpstreamCache

_HASH = re.compile(r"[0-9a-f]{64}")
NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
BAD_REQUEST = "PERSISTED_QUERY_INVALID"


class PersistedQueryError(Exception):
    """A persisted-query request that cannot run. `status` is the HTTP status with
    `application/graphql-response+json`; with `application/json` a well-formed request gets 200 (the spec's
    rule for that media type), a malformed one (`malformed`) 400 either way."""

    def __init__(self, message: str, code: str, status: int, malformed: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.malformed = malformed


def sha256_hex(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def requested_hash(extensions: dict[str, Any] | None) -> str | None:
    """The hash a request names in `extensions.persistedQuery`, None when it names none."""
    if not extensions or extensions.get("persistedQuery") is None:
        return None
    spec = extensions["persistedQuery"]
    if not isinstance(spec, dict) or spec.get("version", 1) != 1:
        raise PersistedQueryError(
            "Unsupported persisted query version (only version 1 is).", BAD_REQUEST, 400, malformed=True
        )
    digest = spec.get("sha256Hash")
    if not isinstance(digest, str) or not _HASH.fullmatch(digest.lower()):
        raise PersistedQueryError(
            "persistedQuery.sha256Hash must be 64 hexadecimal digits.", BAD_REQUEST, 400, malformed=True
        )
    return digest.lower()


class PersistedQueries:
    """The registered queries, in the cache's store (memory or Redis) under `casegraph:apq:`."""

    def __init__(self, cache: UpstreamCache, ttl: float, enabled: bool = True) -> None:
        self.cache = cache
        self.ttl = ttl
        self.enabled = enabled
        self.stats = CacheStats(name="apq")
        self.registered = 0

    @staticmethod
    def key(digest: str) -> str:
        return f"{NAMESPACE}:apq:{digest}"

    def report(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "hits": self.stats.hits,
            "misses": self.stats.misses,
            "registered": self.registered,
        }

    async def resolve(self, digest: str, query: str | None) -> str:
        """The query to run for a request naming `digest` (with `query`, if it sent one); raises
        `PersistedQueryError` for an unknown hash or a hash that is not the query's."""
        if not self.enabled:
            raise PersistedQueryError("PersistedQueryNotSupported", NOT_SUPPORTED, 400)
        if query is not None:
            if sha256_hex(query) != digest:
                raise PersistedQueryError(
                    "provided sha does not match query", HASH_MISMATCH, 400, malformed=True
                )
            return query
        cached = await self.cache.get(self.key(digest), self.stats)
        if cached is None or not isinstance(cached.data, str):
            raise PersistedQueryError("PersistedQueryNotFound", NOT_FOUND, 404)
        return cached.data

    async def register(self, digest: str, query: str) -> None:
        await self.cache.set(self.key(digest), query, {}, self.ttl)
        self.registered += 1
