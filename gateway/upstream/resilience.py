"""Retries, a retry budget and a circuit breaker for each upstream (v1, v2).

`UpstreamGuard.call` runs one logical upstream GET: it asks the circuit breaker first (an open breaker
fails fast with UPSTREAM_UNAVAILABLE, sending nothing), then makes attempts with tenacity: exponential
backoff with full jitter between them, a `Retry-After` waited out when it is short enough, and never more
retries than the retry budget allows. Every attempt's outcome goes to the breaker.

What is retried (GETs are idempotent): connections refused or dropped before the whole answer came, connect
timeouts, HTTP 500/502/503/504 and 429. Not retried: read timeouts and the attempt deadline (the caller
already waited that long; retrying would multiply it), unusable bodies (asking again gives the same),
and every other status (404, 401, 400...). The HTTP layer (`gateway/upstream/http.py`) marks each error
it raises with `retryable` and, for 429/503, `retry_after`.

What opens the breaker: consecutive failed attempts (timeouts, connection failures, 5xx, unusable bodies).
Any other answer, 4xx included, proves the upstream alive and counts as a success; a 429 counts as neither.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, wait_random_exponential
from tenacity.retry import retry_base

from gateway.ops import tracing
from gateway.ops.config import Settings
from gateway.ops.errors import (
    GatewayError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)

log = logging.getLogger("gateway.upstream")

T = TypeVar("T")
Clock = Callable[[], float]

BUDGET_WINDOW = 10.0  # seconds of history the retry budget looks at


class BreakerState(StrEnum):
    CLOSED = "closed"  # calls go through; consecutive failures are counted
    OPEN = "open"  # calls fail fast until the cool-down has passed
    HALF_OPEN = "half_open"  # one probe call goes through; its outcome closes or re-opens the breaker


class CircuitBreaker:
    """A consecutive-failures circuit breaker for asyncio (one event loop, so no locks).

    CLOSED -> OPEN after `failures` failed calls in a row; OPEN -> HALF_OPEN once `reset` seconds have
    passed, when the next call becomes the one probe (other calls keep failing fast meanwhile);
    HALF_OPEN -> CLOSED when the probe succeeds, -> OPEN again (for another `reset`) when it fails.
    """

    def __init__(
        self,
        name: str,
        failures: int,
        reset: float,
        clock: Clock = time.monotonic,
        logger: logging.Logger | None = log,
    ) -> None:
        self.name = name
        self.log = logger  # None: the owner logs the changes in its own words (the cache)
        self.threshold = failures
        self.reset = reset
        self.clock = clock
        self._state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = 0.0
        self.times_opened = 0
        self.rejected = 0  # calls refused while open
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The state as a caller would find it now (OPEN reads HALF_OPEN once the cool-down is over)."""
        if self._state is BreakerState.OPEN and self.clock() >= self.opened_at + self.reset:
            return BreakerState.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """May a call go through now? In HALF_OPEN only one may (the probe) until it ends."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._state = BreakerState.HALF_OPEN
            self._probing = True
            if self.log is not None:
                self.log.info("%s circuit breaker half-open: sending one probe", self.name)
            return True
        self.rejected += 1
        return False

    def success(self) -> None:
        if self._state is not BreakerState.CLOSED and self.log is not None:
            self.log.warning("%s circuit breaker closed: the probe succeeded", self.name)
        self._state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self._probing = False

    def failure(self) -> None:
        self.consecutive_failures += 1
        if self._state is BreakerState.HALF_OPEN or (
            self._state is BreakerState.CLOSED and self.consecutive_failures >= self.threshold
        ):
            self._open()

    def release(self) -> None:
        """A call ended with no verdict (rate limited, cancelled): a probe slot is free again."""
        self._probing = False

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self.opened_at = self.clock()
        self.times_opened += 1
        self._probing = False
        if self.log is None:
            return
        self.log.warning(
            "%s circuit breaker open after %d failed attempts: failing fast for %.1fs",
            self.name,
            self.consecutive_failures,
            self.reset,
        )

    def report(self) -> dict[str, Any]:
        state = self.state
        report: dict[str, Any] = {
            "state": state.value,
            "consecutiveFailures": self.consecutive_failures,
            "timesOpened": self.times_opened,
            "rejected": self.rejected,
        }
        if state is BreakerState.OPEN:
            report["retryInSeconds"] = round(self.opened_at + self.reset - self.clock(), 3)
        return report


class RetryBudget:
    """Retries may be at most `percent`% of the requests of the last `window` seconds, plus `minimum` per
    window: under a failing upstream the gateway adds at most that much traffic (no retry storms), while a
    quiet gateway still retries its occasional failure. Counts are kept in one-second buckets."""

    def __init__(
        self, percent: float, minimum: int, window: float = BUDGET_WINDOW, clock: Clock = time.monotonic
    ) -> None:
        self.ratio = percent / 100
        self.minimum = minimum
        self.window = window
        self.clock = clock
        self._buckets: deque[list[int]] = deque()  # [second, requests, retries]
        self.denied = 0  # retries refused for want of budget

    def _bucket(self) -> list[int]:
        second = int(self.clock())
        while self._buckets and self._buckets[0][0] <= second - self.window:
            self._buckets.popleft()
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        return self._buckets[-1]

    def record_request(self) -> None:
        self._bucket()[1] += 1

    def try_spend(self) -> bool:
        """Take one retry from the budget if there is one left."""
        bucket = self._bucket()
        requests = sum(b[1] for b in self._buckets)
        retries = sum(b[2] for b in self._buckets)
        if retries < self.minimum + self.ratio * requests:
            bucket[2] += 1
            return True
        self.denied += 1
        return False


@dataclass
class GuardStats:
    requests: int = 0  # logical upstream requests (what callers asked for)
    attempts: int = 0  # HTTP requests actually sent
    retries: int = 0  # attempts beyond the first


class _Retry(retry_base):
    """tenacity's retry decision: a retryable error, attempts left, the breaker still closed, a Retry-After
    short enough, and budget left (checked last, so the budget is only spent on a retry that happens)."""

    def __init__(self, guard: UpstreamGuard) -> None:
        self.guard = guard

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        guard = self.guard
        exc = outcome.exception()
        if not getattr(exc, "retryable", False) or retry_state.attempt_number >= guard.attempts:
            return False
        if guard.breaker.state is not BreakerState.CLOSED:
            return False
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after > guard.retry_after_max:
            return False
        return guard.budget.try_spend()


class UpstreamGuard:
    """Retries, retry budget and circuit breaker of one upstream."""

    def __init__(self, name: str, settings: Settings, clock: Clock = time.monotonic) -> None:
        self.name = name
        self.attempts = settings.retry_attempts
        self.retry_after_max = settings.retry_after_max
        self.breaker = CircuitBreaker(name, settings.breaker_failures, settings.breaker_reset, clock)
        self.budget = RetryBudget(settings.retry_budget_percent, settings.retry_budget_min, clock=clock)
        self.stats = GuardStats()
        self._backoff = wait_random_exponential(
            multiplier=settings.retry_backoff, max=settings.retry_backoff_max
        )
        self._retry = _Retry(self)

    def _wait(self, retry_state: RetryCallState) -> float:
        """A Retry-After the upstream sent (already known to be short enough), else the jittered backoff."""
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return float(self._backoff(retry_state))

    def _before_sleep(self, retry_state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        tracing.retry_event(
            retry_state.attempt_number, getattr(exc, "code", type(exc).__name__), retry_state.upcoming_sleep
        )
        log.info(
            "%s upstream: attempt %d failed (%s); retrying in %.2fs",
            self.name,
            retry_state.attempt_number,
            getattr(exc, "code", type(exc).__name__),
            retry_state.upcoming_sleep,
        )

    async def call(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt` (one HTTP request) until it succeeds or may not be retried."""
        self.stats.requests += 1
        self.budget.record_request()
        retrying = AsyncRetrying(
            retry=self._retry,
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
            sleep=asyncio.sleep,
        )
        async for try_ in retrying:
            with try_:
                return await self._attempt(attempt)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _attempt(self, attempt: Callable[[], Awaitable[T]]) -> T:
        if not self.breaker.allow():
            raise UpstreamUnavailable(
                f"The {self.name} upstream is failing; the gateway is not calling it for now.",
                retryAfter=self.breaker.report().get("retryInSeconds"),
            )
        self.stats.attempts += 1
        try:
            result = await attempt()
        except UpstreamRateLimited:
            self.breaker.release()
            raise
        except UpstreamError as exc:
            if counts_as_failure(exc):
                self.breaker.failure()
            else:
                self.breaker.success()
            raise
        except GatewayError:
            self.breaker.success()  # 404, 401, 403: the upstream answered
            raise
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.success()
        return result

    def report(self) -> dict[str, Any]:
        return {
            "breaker": self.breaker.report(),
            "requests": self.stats.requests,
            "attempts": self.stats.attempts,
            "retries": self.stats.retries,
            "retriesDenied": self.budget.denied,
        }


def counts_as_failure(exc: UpstreamError) -> bool:
    """Errors that say the upstream is unhealthy: timeouts, connection failures, 5xx, unusable bodies; not
    a 400, which says it is alive and refused this request."""
    return not isinstance(exc, UpstreamBadRequest)
