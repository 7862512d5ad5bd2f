"""The context of one GraphQL request, handed to every resolver: made by the HTTP endpoint, given its plan by
the planner (`gateway.planning.planner.Planner`), read by the resolvers through `gateway.schema.context.Context`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from gateway.ops.config import Settings
from gateway.planning.documents import Document
from gateway.planning.limits import Limits
from gateway.planning.plan import OperationPlan
from gateway.planning.route import Route
from gateway.schema.context import Upstreams
from gateway.upstream.credentials import Caller
from gateway.upstream.decoding import FULL, Decoders
from gateway.upstream.loaders import Loaders


@dataclass
class RequestContext:
    """One GraphQL request: who is asking (credential, upstream cost so far), its document when it came parsed
    (a trusted document), the operation's plan (set once it is planned, before execution), the path that
    answers it and its own dataloaders, made on first use."""

    services: Upstreams
    caller: Caller
    plan: OperationPlan | None = None
    plan_reused: bool = False
    route: Route = field(default_factory=Route)  # which path answers, and why not a faster one
    document: Document | None = None  # the request's document, already parsed (by the endpoint), else None
    limits: Limits = None  # type: ignore[assignment]  # the settings' (the endpoint makes them once)

    def __post_init__(self) -> None:
        if self.limits is None:
            self.limits = Limits.from_settings(self.services.settings)

    def use_plan(self, plan: OperationPlan, reused: bool) -> None:
        """The plan this request executes (`gateway.planning.planner.Planner`, after validation)."""
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
