"""What a resolver sees of its request's context: the protocol the schema's types are written against.

The request's context itself (`gateway.planning.context.RequestContext`) is made by the HTTP endpoint and
planned by the planner, both above the schema; the resolvers only read what is named here."""

from __future__ import annotations

from typing import Protocol

from gateway.ops.config import Settings
from gateway.upstream.credentials import Caller
from gateway.upstream.decoding import Decoders
from gateway.upstream.loaders import Loaders
from gateway.upstream.v1 import V1API
from gateway.upstream.v2 import V2API


class Upstreams(Protocol):
    """What a request's resolvers use of the process's services (`gateway.http.services.Services`)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def v1(self) -> V1API: ...

    @property
    def v2(self) -> V2API: ...


class Planned(Protocol):
    """What a resolver asks of its operation's plan (`gateway.planning.plan.OperationPlan`)."""

    def reaches(self, response_key: str, *path: str) -> bool:
        """Whether the root field `response_key` selects fields named `path` below it (a lookahead)."""
        ...


class Context(Protocol):
    """One GraphQL request as its resolvers see it: who is asking, the upstream APIs, the operation's plan
    (None before planning), how upstream answers are decoded, and the request's own dataloaders."""

    @property
    def services(self) -> Upstreams: ...

    @property
    def caller(self) -> Caller: ...

    @property
    def plan(self) -> Planned | None: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def decoders(self) -> Decoders: ...

    @property
    def loaders(self) -> Loaders: ...
