"""The per-process waiter queue of one key in one event loop: only its head talks to Redis.

A burst of acquires costs one round trip per process, not per request: the head asks for a
slot for everyone in line and hands them out in order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence

from chatmaid_async._aio import resolve, running_loop
from chatmaid_async._limits import Permit

__all__ = ["Line"]


class Line:
    """The queue of one key's waiters in one event loop; only its head talks to Redis.

    The head asks for a slot for every waiter in line (up to ``MAX_BATCH``) in one call and
    hands them out in order, so a burst costs a round trip per process, not per request.
    Waiters wait on a future that gets their permit, or None when they become the head.
    """

    __slots__ = ("_timer", "_woken", "flushing", "loop", "polling", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiters: deque[asyncio.Future[Permit | None]] = deque()
        # True while the head waits without knowing when a slot frees (all slots in flight).
        self.polling = False
        # True while a task of this loop sends the journal to Redis.
        self.flushing = False
        self._timer: asyncio.Future[None] | None = None
        self._woken = False

    def join(self) -> asyncio.Future[Permit | None]:
        """Queue up; the caller heads the line if its future is ``waiters[0]``."""
        future: asyncio.Future[Permit | None] = self.loop.create_future()
        self.waiters.append(future)
        return future

    def hand_out(self, permits: Sequence[Permit]) -> tuple[Permit, list[Permit]]:
        """The head's own permit, after handing the rest down the line; returns any spare."""
        self.waiters.popleft()
        spare = list(permits[1:])
        while spare and self.waiters:
            future = self.waiters.popleft()
            # A waiter cancelled since the call was sent takes no permit.
            if not future.done():
                future.set_result(spare.pop(0))
        self._promote()
        return permits[0], spare

    def leave(self, future: asyncio.Future[Permit | None]) -> Permit | None:
        """Take a failed or cancelled waiter out of line; returns a permit it was handed."""
        was_head = bool(self.waiters) and self.waiters[0] is future
        with contextlib.suppress(ValueError):
            self.waiters.remove(future)
        handed = None
        if future.done() and not future.cancelled():
            handed = future.result()
            # Made head but gone before taking over: the next one must.
            was_head = was_head or handed is None
        if was_head:
            self._promote()
        return handed

    async def sleep(self, delay: float) -> None:
        """The head sleeps ``delay`` seconds or until :meth:`wake`, whichever comes first."""
        if self._woken:
            self._woken = False
            return
        timer = self._timer = self.loop.create_future()
        handle = self.loop.call_later(delay, resolve, timer)
        try:
            await timer
        finally:
            handle.cancel()
            self._timer = None
            self._woken = False

    def wake(self) -> None:
        """Cut the head's sleep short (a local release may have freed a slot); thread-safe."""
        timer = self._timer
        if timer is None:
            # The head is talking to Redis: it must look again rather than sleep.
            self._woken = True
            return
        if running_loop() is self.loop:
            resolve(timer)
            return
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(resolve, timer)

    def _promote(self) -> None:
        while self.waiters and self.waiters[0].cancelled():
            self.waiters.popleft()
        if self.waiters and not self.waiters[0].done():
            self.waiters[0].set_result(None)
