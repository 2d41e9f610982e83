"""The permits a Redis limiter hands out: a slot held in Redis, or a local one in an outage.

Releasing is cheap and never waits on Redis: the end is stamped now and sent in the
background. A permit collected unreleased still counts, as an attempt that ended then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatmaid_async._redis._scripts import new_slot

if TYPE_CHECKING:
    from chatmaid_async._limits import Permit
    from chatmaid_async._redis._limiter import RedisLimiter

__all__ = ["LocalPermit", "RedisPermit"]


class RedisPermit:
    """One slot held in Redis. Release it when the attempt ends; releasing twice is harmless.

    A permit collected unreleased counts as a request that ended when it was collected.
    """

    __slots__ = ("_limiter", "_released", "_slot", "not_before")

    def __init__(self, limiter: RedisLimiter, slot: str, *, not_before: float = 0.0) -> None:
        self._limiter = limiter
        self._slot = slot
        self._released = False
        # Monotonic time before which the attempt must not start (a slot granted ahead).
        self.not_before = not_before

    async def release(self, *, sent: bool) -> None:
        """End the attempt; ``sent=False`` only if nothing can have reached the server."""
        if self._released:
            return
        self._released = True
        await self._limiter._release(self._slot, sent=sent)

    def __del__(self) -> None:
        if not self._released:
            self._limiter._journal.record_orphan(self._slot, self._limiter._backend._clock())

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<RedisPermit {self._limiter.name or '?'} {state}>"


class LocalPermit:
    """A slot of the in-process limiter, taken while Redis was unavailable."""

    __slots__ = ("_inner", "_limiter", "_released")

    def __init__(self, limiter: RedisLimiter, inner: Permit) -> None:
        self._limiter = limiter
        self._inner = inner
        self._released = False

    async def release(self, *, sent: bool) -> None:
        """End the attempt locally; a sent one is also reported to Redis when it is back."""
        if self._released:
            return
        self._released = True
        await self._inner.release(sent=sent)
        if sent:
            limiter = self._limiter
            limiter._journal.record(new_slot(), limiter._backend._clock(), sent=True)

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<RedisLimiter local permit {self._limiter.name or '?'} {state}>"
