"""The in-process, per-key rate limiter: the default :class:`~chatmaid_async._limits.Limiter`.

How it paces (issue 3; field reports F01, F27, F28):

- A sliding log of N slots. A slot is taken at grant and counts until its attempt *ends* plus
  one window: the server saw the request no later than we saw the end, so no window of ``per``
  seconds at the server ever holds more than N, whatever the network does. A slot whose
  request never left (``release(sent=False)``) is free at once.
- An idle key still bursts N at once, but never lets 2N into one window the way aiolimiter's
  leaky bucket does (F01). Waiters queue FIFO; only the head sleeps on a timer, until the
  earliest moment a slot can free; releases wake it.
- Nothing is bound to a loop: state sits under a ``threading.Lock``, a waiter's future comes
  from its running loop, and wake-ups cross threads with ``call_soon_threadsafe``.
- Smooth mode's minimum spacing is one more "not before" time in the same scheduler. We do not
  stack aiolimiter's ``AsyncLimiter(1, spacing)`` on top: it binds to the first loop it sees,
  and a second queue lets grants bunch up behind a slow slot. aiolimiter stays the baseline we
  measure against (``benchmarks/bench_pacing.py``).
- One limiter per key is shared by every client in the process: ``_registry`` hands them out
  (re-exported here).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import attrs

from chatmaid_async._aio import resolve, running_loop
from chatmaid_async._limits import RateLimit

__all__ = [
    "LimiterRegistry",
    "LimiterState",
    "SlidingWindowLimiter",
    "SlotPermit",
    "lease",
    "limiter_for_fingerprint",
    "limiter_for_key",
    "registry_size",
    "release_lease",
]

logger = logging.getLogger("chatmaid_async.limiter")

Clock = Callable[[], float]

# An acquire that waits longer than this many seconds is logged at INFO.
SLOW_WAIT_SECONDS = 1.0
# How long repr() waits for the lock before reporting the limiter as busy.
REPR_LOCK_TIMEOUT = 0.05


class _SlidingLog:
    """The bookkeeping of one key's window: no locks, no awaits, every time passed in."""

    __slots__ = ("ended", "hold_until", "in_flight", "last_grant", "limit", "per", "spacing")

    def __init__(self, rate_limit: RateLimit) -> None:
        self.ended: deque[float] = deque()
        self.in_flight = 0
        self.hold_until = float("-inf")
        self.last_grant = float("-inf")
        self.configure(rate_limit)

    def configure(self, rate_limit: RateLimit) -> None:
        """Adopt a new limit; the slots already counted stay counted."""
        self.limit = rate_limit.requests
        self.per = float(rate_limit.per)
        self.spacing = rate_limit.min_spacing

    def expire(self, now: float) -> None:
        """Forget ended slots whose window has passed."""
        ended, per = self.ended, self.per
        while ended and ended[0] + per <= now:
            ended.popleft()

    def in_window(self) -> int:
        """Slots in flight plus slots ended within the last window."""
        return self.in_flight + len(self.ended)

    def try_take(self, now: float) -> bool:
        """Take a slot if one may be granted at ``now``."""
        self.expire(now)
        if (
            self.in_flight + len(self.ended) < self.limit
            and self.hold_until <= now
            and self.last_grant + self.spacing <= now
        ):
            self.in_flight += 1
            self.last_grant = now
            return True
        return False

    def free_at(self, now: float) -> float | None:
        """The earliest time a slot may be granted, or None when only a release can free one."""
        self.expire(now)
        at = max(now, self.hold_until, self.last_grant + self.spacing)
        excess = self.in_flight + len(self.ended) - self.limit
        if excess < 0:
            return at

        # The (excess + 1)-th oldest ended slot must leave the window before a grant.
        if excess >= len(self.ended):
            return None
        return max(at, self.ended[excess] + self.per)

    def end(self, stamp: float, *, sent: bool) -> None:
        """End one in-flight slot; a sent one keeps counting until ``stamp + per``."""
        self.in_flight -= 1
        if not sent:
            return

        # A permit collected late or released from another thread may carry an older stamp.
        if self.ended and stamp < self.ended[-1]:
            bisect.insort(self.ended, stamp)
        else:
            self.ended.append(stamp)

    def is_quiet(self, now: float) -> bool:
        """True when forgetting this log could not let a request through early."""
        self.expire(now)
        return not self.in_flight and not self.ended and self.hold_until <= now


@attrs.frozen(slots=True)
class LimiterState:
    """A snapshot of a limiter, for ``repr`` and tests.

    ``next_free`` is the seconds until a slot may be granted (0 when one is free now), or None
    when every slot is in flight and only a release can free one.
    """

    in_window: int
    in_flight: int
    waiters: int
    next_free: float | None
    hold_remaining: float


class _Waiter:
    """One task queued in :meth:`SlidingWindowLimiter.acquire`, in its own event loop."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] | None = None

    def wake(self) -> bool:
        """Ask the task to look at the window again; False if its loop is gone for good."""
        loop, future = self.loop, self.future
        if loop.is_closed():
            return False
        if future is None or future.done():
            return True

        if loop is running_loop():
            future.set_result(None)
            return True
        try:
            loop.call_soon_threadsafe(resolve, future)
        except RuntimeError:
            return False
        return True


class SlotPermit:
    """One granted slot of a :class:`SlidingWindowLimiter`.

    Release it when the attempt ends. Releasing twice is harmless. A permit collected without
    a release counts as a sent request that ended when it was collected.
    """

    __slots__ = ("_limiter", "_released")

    def __init__(self, limiter: SlidingWindowLimiter) -> None:
        self._limiter = limiter
        self._released = False

    async def release(self, *, sent: bool) -> None:
        """End the attempt; ``sent=False`` only if nothing can have reached the server."""
        self._limiter._finish(self, sent=sent)

    def __del__(self) -> None:
        if not self._released:
            # No lock here: a collection may run while this thread holds it.
            self._limiter._orphans.append(self._limiter._clock())

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<SlotPermit {self._limiter.name or '?'} {state}>"


class SlidingWindowLimiter:
    """At most ``requests`` attempts per ``per`` seconds for one key, counted to their end.

    Share one instance per key (see :func:`lease`). ``acquire()`` waits FIFO for a slot and
    returns a :class:`SlotPermit`; cancelling the wait takes no slot. Safe to use from several
    event loops and threads at once. ``name`` appears in logs and ``repr``: a redacted key,
    never the key itself. ``clock`` is injectable for tests (monotonic seconds).
    """

    __slots__ = (
        "__weakref__",
        "_clock",
        "_fingerprint",
        "_lock",
        "_log",
        "_orphans",
        "_rate_limit",
        "_waiters",
        "name",
    )

    def __init__(
        self, rate_limit: RateLimit, *, name: str = "", clock: Clock = time.monotonic
    ) -> None:
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._log = _SlidingLog(rate_limit)
        self._rate_limit = rate_limit
        self._waiters: deque[_Waiter] = deque()
        # Stamps of permits collected unreleased: appended without the lock (list.append and
        # list.pop are atomic), adopted under it.
        self._orphans: list[float] = []
        # Set by the registry; a hash, never the key.
        self._fingerprint = ""

    @property
    def rate_limit(self) -> RateLimit:
        """The limit in force. Setting it keeps the slots already counted."""
        return self._rate_limit

    @rate_limit.setter
    def rate_limit(self, value: RateLimit) -> None:
        with self._lock:
            self._rate_limit = value
            self._log.configure(value)

            # A higher limit may free a slot at once.
            self._wake_head()

    async def acquire(self) -> SlotPermit:
        """Wait for a free slot and return it; the wait is FIFO across tasks and loops.

        Cancelling the wait raises ``CancelledError`` at once and takes no slot.
        """
        with self._lock:
            if self._orphans:
                self._adopt_orphans()
            if not self._waiters and self._log.try_take(self._clock()):
                return SlotPermit(self)
        return await self._wait_for_slot()

    async def hold(self, seconds: float) -> None:
        """Grant no slot for ``seconds`` from now; extends an earlier hold, never shortens it."""
        if not seconds > 0:
            return
        with self._lock:
            until = self._clock() + seconds
            self._log.hold_until = max(self._log.hold_until, until)
        logger.debug("limiter %s: holding for %.3f s", self.name, seconds)

    def state(self) -> LimiterState:
        """A consistent snapshot of the window, the queue and the hold."""
        with self._lock:
            return self._state()

    async def _wait_for_slot(self) -> SlotPermit:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop)
        started = self._clock()
        with self._lock:
            self._drop_dead_heads()
            self._waiters.append(waiter)

        # A fresh future per round, made under the lock, so a wake-up is never lost.
        try:
            while True:
                with self._lock:
                    granted, delay = self._try_grant(waiter)
                    if granted:
                        break
                    future = waiter.future = loop.create_future()
                await _sleep(loop, future, delay)
        except BaseException:
            self._leave(waiter)
            raise

        self._log_wait(started)
        return SlotPermit(self)

    def _try_grant(self, waiter: _Waiter) -> tuple[bool, float | None]:
        """Grant ``waiter`` a slot if it heads the queue and one is free; else how long to sleep.

        The head sleeps until the earliest free slot, or one window when only a release can
        free one (a poll that also adopts permits collected unreleased). The rest sleep until
        woken (None).
        """
        if not self._waiters or self._waiters[0] is not waiter:
            return False, None
        if self._orphans:
            self._adopt_orphans()

        now = self._clock()
        if self._log.try_take(now):
            self._waiters.popleft()
            self._wake_head()
            return True, None
        at = self._log.free_at(now)
        return False, self._log.per if at is None else max(at - now, 0.0)

    def _leave(self, waiter: _Waiter) -> None:
        # A head that leaves may have been woken for a free slot: pass the wake-up on.
        with self._lock:
            was_head = bool(self._waiters) and self._waiters[0] is waiter
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if was_head:
                self._wake_head()

    def _finish(self, permit: SlotPermit, *, sent: bool) -> None:
        with self._lock:
            if permit._released:
                return
            permit._released = True
            self._log.end(self._clock(), sent=sent)
            if self._waiters:
                self._wake_head()

    def _wake_head(self) -> None:
        # A waiter whose loop has closed can never run; it must not block the queue.
        while self._waiters:
            if self._waiters[0].wake():
                return
            self._waiters.popleft()

    def _drop_dead_heads(self) -> None:
        dropped = False
        while self._waiters and self._waiters[0].loop.is_closed():
            self._waiters.popleft()
            dropped = True
        if dropped:
            self._wake_head()

    def _adopt_orphans(self) -> None:
        while self._orphans:
            self._log.end(self._orphans.pop(), sent=True)

    def _is_quiet(self) -> bool:
        with self._lock:
            if self._orphans:
                self._adopt_orphans()
            return not self._waiters and self._log.is_quiet(self._clock())

    def _state(self) -> LimiterState:
        if self._orphans:
            self._adopt_orphans()
        now = self._clock()
        log = self._log
        at = log.free_at(now)
        return LimiterState(
            in_window=log.in_window(),
            in_flight=log.in_flight,
            waiters=len(self._waiters),
            next_free=None if at is None else at - now,
            hold_remaining=max(0.0, log.hold_until - now),
        )

    def _log_wait(self, started: float) -> None:
        waited = self._clock() - started
        if waited > SLOW_WAIT_SECONDS and logger.isEnabledFor(logging.INFO):
            logger.info(
                "limiter %s: waited %.2f s for a slot (%d of %d in window)",
                self.name,
                waited,
                self._log.in_window(),
                self._log.limit,
            )

    def __repr__(self) -> str:
        limit = self._rate_limit
        head = f"SlidingWindowLimiter {self.name or '?'} {limit.requests}/{limit.per:g}s"
        if limit.smooth:
            head += " smooth"

        # repr may run in a debugger while this thread holds the lock.
        if not self._lock.acquire(timeout=REPR_LOCK_TIMEOUT):
            return f"<{head} busy>"
        try:
            state = self._state()
        finally:
            self._lock.release()
        next_free = "on release" if state.next_free is None else f"{state.next_free:.3f}s"
        return (
            f"<{head} in_window={state.in_window} in_flight={state.in_flight}"
            f" waiters={state.waiters} next_free={next_free}"
            f" hold={state.hold_remaining:.3f}s>"
        )


async def _sleep(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[None], delay: float | None
) -> None:
    """Wait for a wake-up, or at most ``delay`` seconds."""
    if delay is None:
        await future
        return
    timer = loop.call_later(delay, resolve, future)
    try:
        await future
    finally:
        timer.cancel()


# The registry moved to its own module; callers and tests still reach it here. Imported last
# because ``_registry`` imports SlidingWindowLimiter from this module.
from chatmaid_async._registry import _REGISTRY as _REGISTRY  # noqa: E402
from chatmaid_async._registry import (  # noqa: E402
    LimiterRegistry,
    lease,
    limiter_for_fingerprint,
    limiter_for_key,
    registry_size,
    release_lease,
)
