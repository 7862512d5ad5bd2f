"""One timer for every request body being read (`BODY_TIMEOUT`), instead of one per request.

`asyncio.timeout` arms a timer per request and, when the body is read in time (nearly always), cancels it; the
cancelled timer stays in the event loop's heap until it would have fired, so under load the heap holds every
request of the last BODY_TIMEOUT seconds, and the timeout was the largest single cost of a request that does
nothing (12 us of 89 us of gateway CPU, measured in process, 2026-12-07). Here a read only notes its task and
deadline; one timer, every `period` seconds while reads are under way, cancels the reads past their deadline,
which then raise `TimeoutError` as `asyncio.timeout` would (the cancellation taken back with `uncancel`). A
deadline is kept to within `period` (a tenth of the timeout, at most a second).
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class Deadlines:
    """`with deadlines:` bounds the block (in a task) to `seconds` (TimeoutError past it), like `asyncio.timeout`;
    entering and leaving are plain calls, no coroutine."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.period = min(1.0, seconds / 10)
        self._reading: dict[asyncio.Task[object], tuple[float, int]] = {}  # task -> (deadline, cancelling)
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the timer's (an app may outlive a loop: tests)

    def __enter__(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        self._reading[task] = (loop.time() + self.seconds, task.cancelling())
        if self._timer is None or self._loop is not loop:
            self._loop, self._timer = loop, loop.call_later(self.period, self._sweep, loop)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        _, cancelling = self._reading.pop(task)
        if task in self._expired:
            self._expired.discard(task)
            if task.uncancel() <= cancelling and kind is asyncio.CancelledError:
                raise TimeoutError from exc

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            return  # a timer of a loop no longer used
        now = loop.time()
        for task, (deadline, _) in list(self._reading.items()):
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._timer = loop.call_later(self.period, self._sweep, loop) if self._reading else None
