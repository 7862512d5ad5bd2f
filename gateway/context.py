"""Process-wide services and the per-request context handed to every resolver."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.apq import PersistedQueries
from gateway.cache import UpstreamCache
from gateway.config import Settings
from gateway.credentials import Caller
from gateway.loaders import Loaders
from gateway.response_cache import ResponseCache
from gateway.upstream.http import UpstreamHTTP
from gateway.upstream.v1 import V1API
from gateway.upstream.v2 import V2API


@dataclass
class Services:
    """What lives as long as the process: settings and the pooled upstream client."""

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


@dataclass
class Context:
    """One GraphQL request: who is asking (credential, upstream cost so far) and its own dataloaders."""

    services: Services
    caller: Caller
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        services = self.services
        self.loaders = Loaders(services.v1, services.v2, self.caller, services.settings.v1_concurrency)

    @property
    def settings(self) -> Settings:
        return self.services.settings
