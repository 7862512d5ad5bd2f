"""Gateway configuration: environment variables, or a `.env` file in the working directory.

Every setting is documented in docs/configuration.md's table; the variable name is the field
name in capitals (`v2_url` -> `V2_URL`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(Exception):
    """Invalid configuration; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    v1_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8001"), description="Base URL of the v1 API (before /api/v1)."
    )
    v2_url: AnyHttpUrl = Field(
        AnyHttpUrl("http://127.0.0.1:8001"), description="Base URL of the v2 API (before /api/v2)."
    )
    auth_mode: Literal["passthrough", "token"] = Field(
        "passthrough",
        description="passthrough: forward the caller's Authorization header; token: send UPSTREAM_TOKEN.",
    )
    upstream_token: SecretStr | None = Field(None, description="Bearer token used when AUTH_MODE=token.")
    connect_timeout: float = Field(3.0, gt=0, le=60, description="Upstream connect timeout, seconds.")
    read_timeout: float = Field(10.0, gt=0, le=300, description="Upstream read timeout, seconds.")
    max_connections: int = Field(100, ge=1, le=10_000, description="Pooled upstream connections.")
    v1_concurrency: int = Field(
        8, ge=1, le=100, description="Most v1 single-case GETs one GraphQL request runs at once."
    )
    cache_url: str | None = Field(
        None, description="redis://host:port/db to share the cache between processes; unset: in memory."
    )
    cache_ttl: float = Field(
        30.0, ge=0, le=86_400, description="Seconds upstream answers stay cached; 0 disables."
    )
    cache_ttl_list: float | None = Field(
        None,
        ge=0,
        le=86_400,
        description="TTL for list answers (cases, activities, records); default CACHE_TTL.",
    )
    cache_ttl_case: float | None = Field(
        None, ge=0, le=86_400, description="TTL for single-case answers; default CACHE_TTL."
    )
    cache_timeout: float = Field(
        0.25, gt=0, le=10, description="Longest wait for one Redis operation, seconds."
    )
    response_cache: bool = Field(
        True,
        description="Reuse whole answers (per credential, query and variables) while every upstream answer "
        "they were built from is still cached. Off when the cache is off (CACHE_TTL=0).",
    )
    host: str = Field("127.0.0.1", description="Address the gateway listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the gateway listens on.")
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Serve GET /metrics on this port of HOST instead of PORT (the sum over workers, as on "
        "PORT); unset: /metrics on PORT.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    v2_link_label: str = Field(
        "Tines case", min_length=1, description="v1 reference label whose value is the v2 case id."
    )
    v1_link_metadata_key: str = Field(
        "trackops_case_id", min_length=1, description="v2 metadata key holding the v1 case id."
    )
    sla_warning_percent: float = Field(
        75.0, ge=0, le=100, description="SLA.status is WARNING from this percent elapsed on."
    )
    graphiql: bool = Field(True, description="Serve GraphiQL to browsers at /graphql.")
    graphiql_headers: dict[str, str] = Field(
        default_factory=dict,
        description="Request headers GraphiQL's page starts with, as a JSON object (`casegraph demo`: the demo "
        "token's Authorization). Whoever opens the page sees them: never a real credential.",
    )
    gc_threshold: int = Field(
        20_000,
        ge=0,
        le=10_000_000,
        description="Allocations between young-generation garbage collections (Python's default is 700; "
        "parsed upstream JSON makes many short-lived objects, and a higher threshold saves ~25% CPU on big "
        "answers). 0 keeps Python's defaults.",
    )
    execution: Literal["fast", "plain"] = Field(
        "fast",
        description="fast: plain fields completed by compiled projections (gateway/planning/execution.py); plain: "
        "graphql-core's own field-by-field execution, same answers at about 10x the CPU (a fallback, and the "
        "benchmark's baseline).",
    )
    # Upstream resilience (gateway/upstream/resilience.py)
    attempt_timeout: float = Field(
        15.0,
        gt=0,
        le=600,
        description="Longest one upstream attempt may take in all, connection to last byte, seconds.",
    )
    max_upstream_body_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        le=1024**3,
        description="Largest upstream body read; past it the gateway stops reading (UPSTREAM_BAD_RESPONSE).",
    )
    retry_attempts: int = Field(
        3, ge=1, le=10, description="Attempts per upstream GET, the first included (1: no retries)."
    )
    retry_backoff: float = Field(
        0.1,
        ge=0,
        le=60,
        description="Base of the exponential backoff between attempts, seconds (full jitter).",
    )
    retry_backoff_max: float = Field(
        1.0, ge=0, le=600, description="Longest backoff between attempts, seconds."
    )
    retry_after_max: float = Field(
        2.0,
        ge=0,
        le=600,
        description="Longest Retry-After (429/503) honoured by waiting and retrying; longer ones fail at once.",
    )
    retry_budget_percent: float = Field(
        20.0,
        ge=0,
        le=100,
        description="Retries allowed per upstream, as a percent of its requests of the last 10 s.",
    )
    retry_budget_min: int = Field(
        10,
        ge=0,
        le=10_000,
        description="Retries per upstream always allowed within 10 s, beyond the percent.",
    )
    breaker_failures: int = Field(
        5, ge=1, le=10_000, description="Consecutive failed attempts that open an upstream's circuit breaker."
    )
    breaker_reset: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="Seconds an open breaker fails fast before letting one probe through.",
    )
    # Hostile queries (gateway/planning/limits.py)
    max_query_depth: int = Field(10, ge=1, le=1000, description="Deepest field nesting a query may have.")
    max_aliases: int = Field(30, ge=0, le=100_000, description="Most aliased fields in one query.")
    max_query_tokens: int = Field(3000, ge=10, le=1_000_000, description="Most lexical tokens in one query.")
    max_query_cost: int = Field(
        300, ge=1, le=1_000_000, description="Most upstream calls a query could make (see docs/limits.md)."
    )
    cost_list_size: int = Field(
        5,
        ge=1,
        le=1000,
        description="Length assumed for lists without a size argument when costing a query.",
    )
    max_request_bytes: int = Field(
        100_000, ge=1024, le=100_000_000, description="Largest /graphql request body; larger ones get 413."
    )
    introspection: bool = Field(True, description="Answer introspection queries (__schema, __type).")
    max_concurrent_requests: int = Field(
        64,
        ge=1,
        le=100_000,
        description="Most GraphQL requests one process answers at once; more wait their turn (QUEUE_TIMEOUT).",
    )
    queue_timeout: float = Field(
        1.0,
        ge=0,
        le=60,
        description="Seconds a request beyond MAX_CONCURRENT_REQUESTS waits for its turn before it gets 503 with "
        "Retry-After; 0 answers 503 at once.",
    )
    caller_share: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Part of MAX_CONCURRENT_REQUESTS one credential (Authorization header; without one, the "
        "anonymous caller of an address) may hold at once; its further requests wait, then get 503.",
    )
    address_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Part of MAX_CONCURRENT_REQUESTS one client address may hold at once, whatever credentials "
        "its requests carry (the address as resolved from trusted proxies only: FORWARDED_ALLOW_IPS).",
    )
    header_timeout: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds a request head (request line and headers) may take to arrive, from the connection's "
        "start or the request's first byte; past it 408 and the connection closed (casegraph serve).",
    )
    max_header_bytes: int = Field(
        65_536,
        ge=1024,
        le=10_000_000,
        description="Largest request head (request line and headers); a larger one gets 431 and the connection "
        "closed (casegraph serve).",
    )
    body_timeout: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds a request body may take to arrive; past it the request gets 408 and its "
        "connection is closed. No turn is taken before the body is read.",
    )
    # Operations (gateway/ops/logs.py, observe.py, endpoint.py, graphql_http.py, apq.py, readiness.py; docs/operations.md)
    log_format: Literal["json", "text"] = Field(
        "json", description="json: one JSON object per log line (production); text: plain lines."
    )
    cors_origins: str = Field(
        "",
        description="Comma-separated origins browsers may call /graphql from (`*` for any); empty: no CORS.",
    )
    shutdown_timeout: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="Seconds a stopping gateway waits for requests in flight before cutting them.",
    )
    persisted_queries: bool = Field(True, description="Accept automatic persisted queries (Apollo APQ).")
    apq_ttl: float = Field(
        86_400.0, gt=0, le=30 * 86_400, description="Seconds a registered persisted query is kept."
    )
    trusted_documents: str | None = Field(
        None,
        description="A manifest of trusted documents, or a directory of them (Apollo's persisted query manifest, or "
        "the id -> document map of GraphQL Code Generator's client preset and Relay), loaded at start.",
    )
    trusted_documents_mode: Literal["off", "log", "enforce"] = Field(
        "off",
        description="off: every document runs; log: untrusted ones run, counted and logged once each; enforce: "
        "only trusted documents run (others get 400 DOCUMENT_NOT_TRUSTED), APQ registers nothing.",
    )
    ready_timeout: float = Field(
        2.0, gt=0, le=60, description="Longest wait for each /readyz check (upstreams, Redis), seconds."
    )

    @model_validator(mode="after")
    def _token_mode_needs_token(self) -> Settings:
        if self.auth_mode == "token" and not self.upstream_token:
            raise ValueError("UPSTREAM_TOKEN is required when AUTH_MODE=token")
        return self

    @model_validator(mode="after")
    def _enforce_needs_documents(self) -> Settings:
        if self.trusted_documents_mode == "enforce" and not self.trusted_documents:
            raise ValueError("TRUSTED_DOCUMENTS is required when TRUSTED_DOCUMENTS_MODE=enforce")
        return self

    @field_validator("metrics_port", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # METRICS_PORT= (compose's ${METRICS_PORT:-}): unset

    @model_validator(mode="after")
    def _metrics_port_of_its_own(self) -> Settings:
        if self.metrics_port == self.port:
            raise ValueError("METRICS_PORT must differ from PORT")
        return self

    @field_validator("upstream_token")
    @classmethod
    def _token_sendable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[\x21-\x7e]+", value.get_secret_value()):
            raise ValueError("must be printable ASCII without spaces (it is sent in an HTTP header)")
        return value

    @field_validator("cache_url")
    @classmethod
    def _cache_url_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "memory://")):
            raise ValueError("must start with redis://, rediss:// or memory://")
        return value or None

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def v1_base(self) -> str:
        return str(self.v1_url).rstrip("/")

    @property
    def v2_base(self) -> str:
        return str(self.v2_url).rstrip("/")


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation failure into one message naming each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            name = "_".join(str(part) for part in err["loc"]).upper()
            problems.append(f"{name}: {message}" if name else message)
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
