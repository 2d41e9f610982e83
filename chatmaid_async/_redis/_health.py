"""Whether Redis answers, and where an acquire goes when it does not.

Which errors mean "Redis did not answer", the grace period while acquires wait, the probes
with backoff that find Redis again, and the ``on_unavailable`` policy once an outage is
declared: ``"local"`` paces with this process's limiter, ``"fail"`` raises.
"""

from __future__ import annotations

import logging
from typing import Literal

from redis import exceptions as redis_errors

__all__ = ["UNAVAILABLE_ERRORS", "Health", "OnUnavailable", "Route", "exc_name"]

logger = logging.getLogger("chatmaid_async.limiter.redis")

OnUnavailable = Literal["local", "fail"]
Route = Literal["redis", "wait", "local", "raise"]

# While Redis is unavailable, the next probe comes after half the outage so far, within these.
PROBE_MIN, PROBE_MAX = 0.05, 5.0

# Errors meaning "Redis did not answer" (connection, timeout, auth, loading, replica, OOM),
# as opposed to a bug that must surface.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    OSError,
)


class Health:
    """Whether Redis answers, and where an acquire goes when it does not.

    No I/O and no clock: the backend passes ``now`` (monotonic seconds) in, under its lock.
    Logs one WARNING when an outage outlasts ``grace`` and one INFO when it ends.
    """

    def __init__(self, location: str, policy: OnUnavailable, grace: float) -> None:
        self.location = location
        self.policy = policy
        self.grace = grace
        self.down_since: float | None = None
        self.declared = False
        self.next_try = 0.0
        self.error = ""

    @property
    def up(self) -> bool:
        """True unless the last call to Redis failed."""
        return self.down_since is None

    def route(self, now: float) -> tuple[Route, float]:
        """Where the next acquire goes, and for ``"wait"`` how long to wait first."""
        if self.down_since is None:
            return "redis", 0.0

        # Claim the probe, so the acquires behind this one do not all try at once.
        if now >= self.next_try:
            self.next_try = now + self._backoff(now)
            return "redis", 0.0

        grace_ends = self.down_since + self.grace
        if not self.declared and now < grace_ends:
            return "wait", min(self.next_try, grace_ends) - now
        self._declare(now)
        return ("local" if self.policy == "local" else "raise"), 0.0

    def failed(self, now: float, exc: BaseException) -> None:
        """A call to Redis went unanswered."""
        self.error = exc_name(exc)
        if self.down_since is None:
            self.down_since = now
        self.next_try = now + self._backoff(now)
        if now >= self.down_since + self.grace:
            self._declare(now)

    def succeeded(self, now: float) -> None:
        """Redis answered."""
        if self.down_since is None:
            return
        if self.declared:
            logger.info(
                "Redis rate limiter at %s answers again after %.1f s; pacing is shared again",
                self.location,
                now - self.down_since,
            )
        self.down_since = None
        self.declared = False

    def describe(self, now: float) -> str:
        """``up``, ``suspect 0.3s`` (within grace) or ``down 4.2s``, for ``repr``."""
        if self.down_since is None:
            return "up"
        state = "down" if self.declared else "suspect"
        return f"{state} {now - self.down_since:.1f}s"

    def _backoff(self, now: float) -> float:
        outage = 0.0 if self.down_since is None else now - self.down_since
        return min(max(outage / 2, PROBE_MIN), PROBE_MAX)

    def _declare(self, now: float) -> None:
        if self.declared:
            return
        self.declared = True
        then = (
            "pacing each process on its own until it answers"
            if self.policy == "local"
            else "acquires raise RateLimiterUnavailableError until it answers"
        )
        logger.warning(
            "Redis rate limiter at %s unavailable for %.1f s (%s); %s",
            self.location,
            now - (self.down_since or now),
            self.error,
            then,
        )


def exc_name(exc: BaseException) -> str:
    """An exception's type, for logs (its message may hold a URL)."""
    return type(exc).__name__
