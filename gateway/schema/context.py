"""The per-request context handed to every resolver."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from gateway.ops.config import Settings
from gateway.upstream.credentials import Caller
from gateway.upstream.decoding import FULL, Decoders
from gateway.upstream.loaders import Loaders
from gateway.upstream.v1 import V1API
from gateway.upstream.v2 import V2API


class Upstreams(Protocol):
    """What a request's resolvers use of the process's services (`gateway.http.services.Services`): the
    settings and the two upstream APIs."""

    @property
    def settings(self) -> Settings: ...

    @property
    def v1(self) -> V1API: ...

    @property
    def v2(self) -> V2API: ...


class Planned(Protocol):
    """What the request's context uses of its operation's plan (`gateway.planning.plan.OperationPlan`)."""

    @property
    def decoders(self) -> Decoders: ...

    def reaches(self, response_key: str, *path: str) -> bool:
        """Whether the root field `response_key` selects fields named `path` below it (a lookahead)."""
        ...


@dataclass
class Context:
    """One GraphQL request: who is asking (credential, upstream cost so far), the operation's plan (set once
    it is planned, before execution) and its own dataloaders, made on first use."""

    services: Upstreams
    caller: Caller
    plan: Planned | None = None
    plan_reused: bool = False

    def use_plan(self, plan: Planned, reused: bool) -> None:
        """The plan this request executes (`gateway.planning.plan.Planner`, after validation)."""
        self.plan, self.plan_reused = plan, reused

    @property
    def decoders(self) -> Decoders:
        """How this request decodes upstream answers: only what its operation reads."""
        return self.plan.decoders if self.plan is not None else FULL

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
