"""Process-wide services and the per-request context handed to every resolver."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.config import Settings
from gateway.credentials import Credential
from gateway.loaders import Loaders
from gateway.upstream.http import UpstreamHTTP
from gateway.upstream.v1 import V1API
from gateway.upstream.v2 import V2API


@dataclass
class Services:
    """What lives as long as the process: settings and the pooled upstream client."""

    settings: Settings
    http: UpstreamHTTP
    v1: V1API
    v2: V2API

    @classmethod
    def create(cls, settings: Settings) -> Services:
        http = UpstreamHTTP(settings)
        return cls(settings, http, V1API(http, settings.v1_base), V2API(http, settings.v2_base))

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass
class Context:
    """One GraphQL request: the caller's credential and its own dataloaders (never shared)."""

    services: Services
    credential: Credential
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        services = self.services
        self.loaders = Loaders(services.v1, services.v2, self.credential, services.settings.v1_concurrency)

    @property
    def settings(self) -> Settings:
        return self.services.settings
