"""Turns to answer GraphQL requests, shared fairly between callers (one `Turns` per process).

A process answers at most `MAX_CONCURRENT_REQUESTS` requests at once. No caller holds more than its share of
those turns, so that one caller sending many slow queries cannot take every turn:

- a **credential** (the `Authorization` header the client sent; a request without one counts as the anonymous
  credential *of its address*) holds at most `CALLER_SHARE` of the turns (default a quarter);
- a **client address** holds at most `ADDRESS_SHARE` of them (default a half), whatever credentials its
  requests carry: made-up tokens from one address do not add up to every turn. The address is the one uvicorn
  resolves (`scope["client"]`): the peer, or the rightmost `X-Forwarded-For` hop that is not a trusted proxy
  when the peer is one (`FORWARDED_ALLOW_IPS`): a forged header from an untrusted peer changes nothing.

A request that may not have a turn yet (none free, or its caller at its share) waits, first come first served
among the requests that could go, at most `QUEUE_TIMEOUT`; then it is shed, with the reason: `overloaded` (no
turn free), `credential_share` or `address_share` (its caller held its share all along). A turn is freed by
`release` and goes at once to the first waiting request that fits its caller's shares.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass

OVERLOADED = "overloaded"
CREDENTIAL_SHARE = "credential_share"
ADDRESS_SHARE = "address_share"
BODY_TIMEOUT = "body_timeout"  # not a turn's: a body that did not come within BODY_TIMEOUT (408)


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a turn (a caller): the keys its shares are counted under."""

    credential: str
    address: str


def holder_of(authorization: str | None, address: str) -> Holder:
    """The caller of a request with this Authorization header from this (resolved) client address."""
    credential = authorization.strip(" \t") if authorization else ""
    return Holder(credential or f"anonymous@{address}", address)


def share(total: int, fraction: float) -> int:
    """A share of `total` turns: `fraction` of them, at least one."""
    return max(1, int(total * fraction))


class Turns:
    def __init__(self, total: int, credential_share: int, address_share: int) -> None:
        self.total = total
        self.free = total
        self.credential_share = credential_share
        self.address_share = address_share
        self.credentials: dict[str, int] = {}  # turns held per credential, per address (absent: none)
        self.addresses: dict[str, int] = {}
        self.waiting: deque[tuple[Holder, asyncio.Future[None]]] = deque()

    def _over_share(self, caller: Holder) -> str | None:
        if self.credentials.get(caller.credential, 0) >= self.credential_share:
            return CREDENTIAL_SHARE
        if self.addresses.get(caller.address, 0) >= self.address_share:
            return ADDRESS_SHARE
        return None

    def _grant(self, caller: Holder) -> None:
        self.free -= 1
        self.credentials[caller.credential] = self.credentials.get(caller.credential, 0) + 1
        self.addresses[caller.address] = self.addresses.get(caller.address, 0) + 1

    def take_now(self, caller: Holder) -> bool:
        """A turn for `caller` if one is free and its share allows, without waiting (nearly every request)."""
        # With a turn free, every waiting request is one its caller's share holds back: a request that fits
        # goes first without wronging any of them.
        if self.free and self._over_share(caller) is None:
            self._grant(caller)
            return True
        return False

    async def take(self, caller: Holder, timeout: float) -> str | None:
        """A turn for `caller`, waiting at most `timeout` seconds: None once taken, else why it was shed."""
        if self.take_now(caller):
            return None
        if timeout <= 0:
            return self._over_share(caller) or OVERLOADED
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (caller, waiter)
        self.waiting.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return None  # granted as the time ran out
            self._forget(entry)
            return self._over_share(caller) or OVERLOADED
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(caller)  # granted, but its request went away
            else:
                self._forget(entry)
            raise
        return None

    def release(self, caller: Holder) -> None:
        """`caller`'s turn is over: it goes to the first waiting request that fits."""
        self.free += 1
        for keys, key in ((self.credentials, caller.credential), (self.addresses, caller.address)):
            left = keys[key] - 1
            if left:
                keys[key] = left
            else:
                del keys[key]
        if self.waiting:
            self._serve()

    def _serve(self) -> None:
        served = []
        for entry in self.waiting:
            if not self.free:
                break
            waiting_caller, waiter = entry
            if not waiter.done() and self._over_share(waiting_caller) is None:
                self._grant(waiting_caller)
                waiter.set_result(None)
                served.append(entry)
        for entry in served:
            self.waiting.remove(entry)

    def _forget(self, entry: tuple[Holder, asyncio.Future[None]]) -> None:
        with contextlib.suppress(ValueError):  # served and removed meanwhile
            self.waiting.remove(entry)
