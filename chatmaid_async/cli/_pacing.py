"""Measuring the pacing of a batch: the wait on the limiter, the rate, the ETA, the allowance.

The wait is observed, not guessed: a sampler looks at the key's limiter a few times a second
and counts the time during which at least one send was queued for a slot. It reads the public
``client.limiter`` (shared by every client on the key), so the SDK's request path is
untouched. Its error is at most one sampling interval per wait.

Rate and ETA are computed when the progress bar redraws, not when an item finishes, so they
stay true while the limiter holds every send back for most of a window.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from chatmaid_async import RateLimit

__all__ = ["LimitWaitMeter", "Pace", "allowed_requests", "metered"]

SAMPLE_INTERVAL = 0.05
# Without a rate limit, the rate shown is over this many recent seconds.
DEFAULT_RATE_WINDOW = 10.0


class _State(Protocol):
    @property
    def waiters(self) -> int: ...


class LimitWaitMeter:
    """Seconds during which some send waited for a rate-limit slot, sampled every ``interval``.

    ``limiter`` is the client's limiter; one without a ``state()`` (or None, pacing off) makes
    the meter report zero and :attr:`available` False.
    """

    def __init__(
        self,
        limiter: object,
        *,
        interval: float = SAMPLE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        state = getattr(limiter, "state", None)
        self._state: Callable[[], _State] | None = state if callable(state) else None
        self._interval = interval
        self._clock = clock
        self._waited = 0.0
        self._waiting_since: float | None = None

    @property
    def available(self) -> bool:
        """Whether the limiter can be observed at all."""
        return self._state is not None

    @property
    def waited(self) -> float:
        """Seconds waited so far, including a wait still going on."""
        ongoing = 0.0 if self._waiting_since is None else self._clock() - self._waiting_since
        return self._waited + ongoing

    def sample(self) -> None:
        """Look at the limiter once: open or close a waiting span."""
        if self._state is None:
            return
        now = self._clock()
        queued = self._state().waiters > 0
        if queued and self._waiting_since is None:
            self._waiting_since = now
        elif not queued and self._waiting_since is not None:
            self._waited += now - self._waiting_since
            self._waiting_since = None

    def stop(self) -> None:
        """Close a span still open, so :attr:`waited` stops growing."""
        if self._waiting_since is not None:
            self._waited += self._clock() - self._waiting_since
            self._waiting_since = None

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            self.sample()
            await asyncio.sleep(self._interval)

    def __repr__(self) -> str:
        state = "waiting" if self._waiting_since is not None else "idle"
        return f"<LimitWaitMeter waited={self.waited:.2f}s {state}>"


@contextlib.asynccontextmanager
async def metered(limiter: object) -> AsyncIterator[LimitWaitMeter]:
    """A :class:`LimitWaitMeter` sampling in the background for the duration of the block."""
    meter = LimitWaitMeter(limiter)
    if not meter.available:
        yield meter
        return
    sampler = asyncio.ensure_future(meter.run())
    try:
        yield meter
    finally:
        # wait() rather than await: the sampler's CancelledError must not mask the caller's.
        sampler.cancel()
        await asyncio.wait([sampler])
        meter.stop()


def allowed_requests(rate_limit: RateLimit, elapsed: float) -> int:
    """The most requests a key idle at the start may make in ``elapsed`` seconds.

    A sliding window of N per ``per`` seconds lets N through at once, then N more each time
    the window slides past them: N for every started window.
    """
    return rate_limit.requests * (1 + int(elapsed // rate_limit.per))


class Pace:
    """Recent throughput and an ETA that knows how the key's sliding window frees slots.

    ``rate`` counts items finished in the trailing window (evaluated when asked, so it falls
    while the limiter holds everything back). The ETA replays the limiter's rule: a slot
    freed by a request that ended at ``t`` is usable again at ``t + per``, so with the end
    times of the last N requests known, the k-th request still to go starts at
    ``max(ends[k % N] + per * (k // N + 1), now + per * (k // N))``.
    """

    def __init__(
        self, rate_limit: RateLimit | None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate_limit = rate_limit
        self._clock = clock
        self._window = rate_limit.per if rate_limit is not None else DEFAULT_RATE_WINDOW
        self._started = clock()
        self._finished: deque[float] = deque()
        limit = rate_limit.requests if rate_limit is not None else 0
        self._request_ends: deque[float] = deque(maxlen=limit or None)

    def finished(self, *, request: bool) -> None:
        """One item finished; ``request`` when it took a rate-limit slot (reached the API)."""
        now = self._clock()
        self._finished.append(now)
        if request and self.rate_limit is not None:
            self._request_ends.append(now)

    @property
    def rate(self) -> float | None:
        """Items per second over the trailing window, or None before the first one."""
        now = self._clock()
        finished = self._finished
        while finished and finished[0] <= now - self._window:
            finished.popleft()
        span = min(self._window, now - self._started)
        if span <= 0 or not finished:
            return None
        return len(finished) / span

    def eta(self, remaining: float) -> float | None:
        """Seconds until ``remaining`` more items are done, or None when unknown."""
        if remaining <= 0:
            return 0.0
        if self.rate_limit is None:
            rate = self.rate
            return None if not rate else remaining / rate
        return self._eta_by_limit(int(remaining))

    def _eta_by_limit(self, remaining: int) -> float:
        assert self.rate_limit is not None
        limit, per = self.rate_limit.requests, self.rate_limit.per
        now = self._clock()
        last = remaining - 1
        rounds, slot = divmod(last, limit)

        # Slots never used in this run are free now: they sort before every recorded end.
        unused = limit - len(self._request_ends)
        if slot < unused:
            freed = now + per * rounds
        else:
            freed = self._request_ends[slot - unused] + per * (rounds + 1)
        return max(freed, now + per * rounds) - now
