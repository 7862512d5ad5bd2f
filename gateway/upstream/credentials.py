"""Who is asking: the caller's upstream credential (forwarded, never shown) and what the request
has cost so far.

`Credential` is the only object that holds a token. Its repr, str and fingerprint never contain the
token, so it is safe in logs, errors and cache keys.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from gateway.ops.config import Settings
from gateway.ops.errors import GatewayError

# What an Authorization header can carry upstream: printable ASCII, words separated by spaces
# (RFC 9110's credentials); a control character or a byte past 0x7E cannot be sent (h11 refuses some of
# them, httpx others), and a request carrying one is refused before any upstream call. Spaces and TABs
# around the value are not part of it (RFC 9110 5.5): they are removed here, whether or not the server's
# header parser removed them first (uvicorn's httptools parser keeps a trailing TAB, its h11 parser and
# uvicorn 0.55 do not), so the answer does not depend on the server.
_OPTIONAL_WHITESPACE = " \t"
_SENDABLE = re.compile(r"[\x21-\x7e]+(?: +[\x21-\x7e]+)*")


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

    def counts(self) -> dict[str, int]:
        """`extensions.upstream`: the calls sent, those joined while in flight, the answers from the cache."""
        return {"calls": self.upstream_calls, "sharedCalls": self.shared_calls, "cacheHits": self.cache_hits}

    def report(self) -> dict[str, Any]:
        """The answer's `extensions`: `upstream` (`counts`), and `cacheControl.fromCache` when the cache
        answered everything."""
        report: dict[str, Any] = {"upstream": self.counts()}
        if self.cache_hits and not self.upstream_calls and not self.shared_calls:
            report["cacheControl"] = {"fromCache": True}
        return report

    def used(self, expires_at: float) -> None:
        """Note an upstream answer this request used, valid until `expires_at` (0: not reusable)."""
        self.answers += 1
        self.reusable_until = min(self.reusable_until, expires_at)


@dataclass(frozen=True, slots=True)
class Caller:
    credential: Credential
    stats: CallStats = field(default_factory=CallStats)


class UnsendableCredential(GatewayError):
    """The caller's Authorization header holds what no HTTP request may carry: refused (HTTP 400) before any
    upstream call, so it never counts as an upstream failure."""

    code = "BAD_REQUEST"


def credential_for(settings: Settings, authorization: str | None) -> Credential:
    """The credential to send upstream for a caller with this Authorization header."""
    if settings.auth_mode == "token" and settings.upstream_token is not None:
        return Credential("Bearer " + settings.upstream_token.get_secret_value())
    if authorization:
        authorization = authorization.strip(_OPTIONAL_WHITESPACE)
    if authorization and not _SENDABLE.fullmatch(authorization):
        raise UnsendableCredential(
            "The Authorization header cannot be sent upstream: it holds control characters, bytes outside "
            "printable ASCII or a TAB inside its value."
        )
    return Credential(authorization or None)
