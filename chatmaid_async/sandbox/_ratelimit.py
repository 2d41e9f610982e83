"""Per-key window models: how the sandbox decides a request is over the key's limit.

Both models are pure: they take the arrival time (monotonic seconds) and answer with a
:class:`Verdict`. Only accepted requests take capacity; a 429 leaves the window as it was.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal, Protocol

import attrs

from chatmaid_async._limits import RateLimit

__all__ = [
    "FixedWindow",
    "SlidingWindow",
    "Verdict",
    "Window",
    "WindowModel",
    "make_window",
    "retry_after_seconds",
]

WindowModel = Literal["sliding", "fixed"]


@attrs.frozen(slots=True)
class Verdict:
    """The answer for one request.

    ``reset_after`` is the number of seconds until a slot frees (sent as ``X-RateLimit-Reset``);
    ``in_window`` counts accepted arrivals in the trailing ``per`` seconds, this one included.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    in_window: int

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait before retrying (the 429's ``retryAfter``)."""
        return retry_after_seconds(self.reset_after)


class Window(Protocol):
    """A key's window: one call per arriving request."""

    rate_limit: RateLimit

    def hit(self, now: float) -> Verdict:
        """Admit or reject a request arriving at monotonic time ``now``."""
        ...


def retry_after_seconds(wait: float) -> int:
    """Round a wait up to whole seconds, never below 1 (so a client never retries at once)."""
    # Rounding to milliseconds first keeps float noise (2.0000000001) from adding a second.
    return max(1, math.ceil(round(wait, 3)))


class _TrailingCount:
    """Accepted arrivals in the trailing ``per`` seconds, for the ``in_window`` figure."""

    __slots__ = ("_arrivals", "_per")

    def __init__(self, per: float) -> None:
        self._per = per
        self._arrivals: deque[float] = deque()

    def add(self, now: float) -> int:
        arrivals = self._arrivals
        horizon = now - self._per
        while arrivals and arrivals[0] <= horizon:
            arrivals.popleft()
        arrivals.append(now)
        return len(arrivals)


class SlidingWindow:
    """At most ``requests`` accepted arrivals in any ``per`` seconds (a true sliding log)."""

    __slots__ = ("_arrivals", "rate_limit")

    def __init__(self, rate_limit: RateLimit) -> None:
        self.rate_limit = rate_limit
        self._arrivals: deque[float] = deque()

    def hit(self, now: float) -> Verdict:
        """Admit the request unless the trailing window is full."""
        limit, per = self.rate_limit.requests, self.rate_limit.per
        arrivals = self._arrivals

        # An arrival stops counting exactly ``per`` seconds after it was accepted.
        horizon = now - per
        while arrivals and arrivals[0] <= horizon:
            arrivals.popleft()

        if len(arrivals) >= limit:
            return Verdict(False, limit, 0, arrivals[0] + per - now, len(arrivals))

        arrivals.append(now)
        return Verdict(True, limit, limit - len(arrivals), arrivals[0] + per - now, len(arrivals))

    def __repr__(self) -> str:
        limit = self.rate_limit
        return f"<SlidingWindow {limit.requests}/{limit.per}s used={len(self._arrivals)}>"


class FixedWindow:
    """At most ``requests`` per window of ``per`` seconds; windows start at the first request.

    A burst at the end of one window and another at the start of the next can put up to
    ``2 * requests`` arrivals in ``per`` seconds: that is the point of offering this model.
    """

    __slots__ = ("_count", "_first", "_start", "_trailing", "rate_limit")

    def __init__(self, rate_limit: RateLimit) -> None:
        self.rate_limit = rate_limit
        self._first: float | None = None
        self._start = 0.0
        self._count = 0
        self._trailing = _TrailingCount(rate_limit.per)

    def hit(self, now: float) -> Verdict:
        """Admit the request unless the current window's count is used up."""
        limit, per = self.rate_limit.requests, self.rate_limit.per
        self._advance(now, per)
        window_end = self._start + per

        if self._count >= limit:
            return Verdict(False, limit, 0, window_end - now, self._count)

        self._count += 1
        in_window = self._trailing.add(now)
        return Verdict(True, limit, limit - self._count, window_end - now, in_window)

    def _advance(self, now: float, per: float) -> None:
        # Windows are aligned to the key's first request, so step by whole periods from it.
        if self._first is None:
            self._first = self._start = now
            return
        elapsed_windows = math.floor((now - self._first) / per)
        start = self._first + elapsed_windows * per
        if start > self._start:
            self._start = start
            self._count = 0

    def __repr__(self) -> str:
        return (
            f"<FixedWindow {self.rate_limit.requests}/{self.rate_limit.per}s used={self._count}>"
        )


def make_window(rate_limit: RateLimit, model: WindowModel) -> Window:
    """Build the window for a key; raises ``ValueError`` for an unknown model name."""
    if model == "sliding":
        return SlidingWindow(rate_limit)
    if model == "fixed":
        return FixedWindow(rate_limit)
    raise ValueError(f"window must be 'sliding' or 'fixed', got {model!r}")
