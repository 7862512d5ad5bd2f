"""Who is asking: the caller's upstream credential (forwarded, never shown) and what the request
has cost so far.

`Credential` is the only object that holds a token. Its repr, str and fingerprint never contain the
token, so it is safe in logs, errors and cache keys.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from gateway.config import Settings


@dataclass(frozen=True, slots=True)
class Credential:
    header: str | None = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """A short one-way hash of the credential, for cache keys and logs ("anon" without one)."""
        if not self.header:
            return "anon"
        return hashlib.sha256(self.header.encode()).hexdigest()[:32]

    def __str__(self) -> str:
        return f"Credential({self.fingerprint[:8]})"


@dataclass(slots=True)
class CallStats:
    """One GraphQL request's upstream traffic."""

    upstream_calls: int = 0  # requests this GraphQL request sent upstream
    shared_calls: int = 0  # identical requests already in flight, which it waited on instead
    cache_hits: int = 0  # answers it took from the cache
    answers: int = 0  # upstream answers it used, from wherever
    reusable_until: float = float("inf")  # when the first of them expires (0: one may not be reused)

    def used(self, expires_at: float) -> None:
        """Note an upstream answer this request used, valid until `expires_at` (0: not reusable)."""
        self.answers += 1
        self.reusable_until = min(self.reusable_until, expires_at)


@dataclass(frozen=True, slots=True)
class Caller:
    credential: Credential
    stats: CallStats = field(default_factory=CallStats)


def credential_for(settings: Settings, authorization: str | None) -> Credential:
    """The credential to send upstream for a caller with this Authorization header."""
    if settings.auth_mode == "token" and settings.upstream_token is not None:
        return Credential("Bearer " + settings.upstream_token.get_secret_value())
    return Credential(authorization or None)
