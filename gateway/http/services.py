"""What lives as long as the process, made once by the app (`gateway.http.app`): settings, the upstream cache
and pooled client, the two APIs, the response cache and the persisted queries."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.http.apq import PersistedQueries
from gateway.http.response_cache import ResponseCache
from gateway.ops.config import Settings
from gateway.upstream.cache import UpstreamCache
from gateway.upstream.http import UpstreamHTTP
from gateway.upstream.v1 import V1API
from gateway.upstream.v2 import V2API


@dataclass
class Services:
    """What lives as long as the process: settings and the pooled upstream client. Every request's `Context`
    holds it (as the `gateway.schema.context.Upstreams` the resolvers see)."""

    settings: Settings
    cache: UpstreamCache
    http: UpstreamHTTP
    v1: V1API
    v2: V2API
    responses: ResponseCache | None = None  # whole answers; made from `cache` unless given
    persisted: PersistedQueries = field(init=False)  # APQ queries, in the cache's store

    def __post_init__(self) -> None:
        if self.responses is None:
            self.responses = ResponseCache(self.cache, self.settings.response_cache)
        settings = self.settings
        self.persisted = PersistedQueries(self.cache, settings.apq_ttl, settings.persisted_queries)

    @classmethod
    def create(cls, settings: Settings) -> Services:
        cache = UpstreamCache(settings)
        http = UpstreamHTTP(settings, cache)
        return cls(settings, cache, http, V1API(http, settings.v1_base), V2API(http, settings.v2_base))

    async def aclose(self) -> None:
        await self.http.aclose()
        await self.cache.aclose()
