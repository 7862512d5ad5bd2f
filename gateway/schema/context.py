"""Process-wide services and the per-request context handed to every resolver."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from gateway.http.apq import PersistedQueries
from gateway.http.response_cache import ResponseCache
from gateway.ops.config import Settings
from gateway.planning.documents import Document
from gateway.planning.plan import OperationPlan
from gateway.planning.route import Route
from gateway.upstream.cache import UpstreamCache
from gateway.upstream.credentials import Caller
from gateway.upstream.decoding import FULL, Decoders
from gateway.upstream.http import UpstreamHTTP
from gateway.upstream.loaders import Loaders
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
    """One GraphQL request: who is asking (credential, upstream cost so far), its document when it came parsed
    (a trusted document), the operation's plan (set once it is planned, before execution) and its own
    dataloaders, made on first use."""

    services: Services
    caller: Caller
    plan: OperationPlan | None = None
    plan_reused: bool = False
    route: Route = field(default_factory=Route)  # which path answers, and why not a faster one
    document: Document | None = None  # the request's document, already parsed (a trusted one), else None

    def use_plan(self, plan: OperationPlan, reused: bool) -> None:
        """The plan this request executes (`gateway.planning.plan.Planner`, after validation)."""
        self.plan, self.plan_reused = plan, reused
        self.route = Route.planned(plan)

    def report(self) -> dict[str, Any]:
        """`extensions.upstream` (and `cacheControl` when the cache answered all): what the request cost upstream."""
        return self.caller.stats.report()

    @property
    def decoders(self) -> Decoders:
        """How this request decodes upstream answers: only what its operation reads."""
        return self.plan.decoders_for(self.services.settings) if self.plan is not None else FULL

    @cached_property
    def loaders(self) -> Loaders:
        services = self.services
        return Loaders(services.v1, services.v2, self.caller, services.settings.v1_concurrency, self.decoders)

    def release(self) -> None:
        """Drop what the request's loaders fetched (if it made them), once its answer is built."""
        if "loaders" in self.__dict__:
            self.loaders.release()

    @property
    def settings(self) -> Settings:
        return self.services.settings
