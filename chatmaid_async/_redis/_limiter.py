"""The Redis-shared limiter of one key: acquire, hold, release, and the fallback in an outage.

In a process, only the head of each event loop's line calls Redis, for the whole line at once.
A slot that frees within 50 ms is granted ahead and starts when it frees; otherwise the head
sleeps as the script says. Releases and holds go through the journal, sent in the background.
While Redis is down, ``on_unavailable="local"`` paces with the in-process limiter of the key.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chatmaid_async._limiter import SlidingWindowLimiter
from chatmaid_async._limits import Permit, RateLimit
from chatmaid_async._redis._health import UNAVAILABLE_ERRORS, exc_name
from chatmaid_async._redis._journal import Entry, Journal
from chatmaid_async._redis._line import Line
from chatmaid_async._redis._permits import LocalPermit, RedisPermit
from chatmaid_async._redis._scripts import ms, new_slot, replay_args
from chatmaid_async._registry import limiter_for_fingerprint

if TYPE_CHECKING:
    from chatmaid_async._redis._backend import RedisRateLimiter

__all__ = ["RedisLimiter", "cancel_requests"]

logger = logging.getLogger("chatmaid_async.limiter.redis")

# With every slot in flight, a waiter looks again after this share of the window...
POLL_SHARE = 0.02
# ...within these bounds, in seconds.
POLL_MIN, POLL_MAX = 0.002, 0.25
# Slots one acquire call may ask for, for the waiters queued in one process.
MAX_BATCH = 64
# A slot that frees within this many seconds (at most this share of the window) is granted
# ahead, to start when it frees: the round trip to Redis then costs no time at the API.
GRANT_AHEAD, GRANT_AHEAD_SHARE = 0.05, 0.1


class RedisLimiter:
    """The Redis-shared limiter of one key, from :meth:`RedisRateLimiter.limiter_for`.

    ``acquire()`` waits for a slot that every process on the key respects and returns a
    permit; cancelling the wait takes no slot. ``hold(seconds)`` pauses the key everywhere.
    ``name`` (a redacted key) appears in logs and ``repr``; the key itself is never held.
    """

    def __init__(
        self, backend: RedisRateLimiter, fingerprint: str, rate_limit: RateLimit, *, name: str
    ) -> None:
        self.rate_limit = rate_limit
        self.name = name
        self._fingerprint = fingerprint
        self._backend = backend
        self._keys = backend.keys_for(fingerprint)
        self._lock = threading.Lock()
        self._lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Line] = (
            weakref.WeakKeyDictionary()
        )
        self._journal = Journal()
        self._local: SlidingWindowLimiter | None = None
        # Slots Redis counted at its last answer, and where the last slot came from.
        self._counted: int | None = None
        self._source = "none"

    async def acquire(self) -> Permit:
        """Wait for a free slot on the key, across every process, and return it.

        FIFO within a process and event loop. Cancelling the wait takes no slot. Raises
        :class:`~chatmaid_async.errors.RateLimiterUnavailableError` when Redis is unavailable
        and the backend's ``on_unavailable`` is ``"fail"``.
        """
        line = self._line()
        future = line.join()
        try:
            permit = await future if line.waiters[0] is not future else None
            if permit is None:
                permit = await self._lead(line)
        except BaseException:
            handed = line.leave(future)
            if handed is not None:
                await self._return_spare([handed])
            raise

        # A slot granted ahead starts when the slot it replaces leaves the window.
        if isinstance(permit, RedisPermit) and permit.not_before > self._backend._clock():
            try:
                await asyncio.sleep(permit.not_before - self._backend._clock())
            except BaseException:
                await self._return_spare([permit])
                raise
        return permit

    async def hold(self, seconds: float) -> None:
        """Grant no slot on this key, in any process, for ``seconds``; never shortens a hold.

        This process holds at once; the others as soon as Redis hears it (one round trip, sent
        in the background together with pending releases).
        """
        if not seconds > 0:
            return
        backend = self._backend
        self._journal.hold(backend._clock() + seconds)
        if backend._is_up():
            await self._flush_soon()
        else:
            await self._local_limiter().hold(seconds)

    def __repr__(self) -> str:
        limit = self.rate_limit
        counted = "?" if self._counted is None else str(self._counted)
        with self._lock:
            waiters = sum(len(line.waiters) for line in self._lines.values())
        return (
            f"<RedisLimiter {self.name or '?'} {limit.requests}/{limit.per:g}s"
            f" on {self._backend.location} counted={counted} waiters={waiters}"
            f" last_slot={self._source} unreported={len(self._journal)}>"
        )

    async def _lead(self, line: Line) -> Permit:
        """As head of the line: get slots for it, hand them out, return the head's own."""
        while True:
            route, wait = self._backend._route()
            if route == "redis":
                outcome = await self._try_redis(line)
                if isinstance(outcome, list):
                    own, spare = line.hand_out(outcome)
                    if spare:
                        await self._return_spare(spare)
                    return own
                if outcome is not None:
                    await line.sleep(outcome)
            elif route == "wait":
                await line.sleep(wait)
            elif route == "local":
                return line.hand_out([await self._acquire_local()])[0]
            else:
                raise self._backend._unavailable_error()

    async def _try_redis(self, line: Line) -> list[RedisPermit] | float | None:
        """One acquire script: permits, seconds to sleep, or None if Redis did not answer."""
        backend = self._backend
        wanted = min(len(line.waiters), MAX_BATCH)
        prefix = new_slot()
        slots = [f"{prefix}:{n}" for n in range(1, wanted + 1)]
        now = backend._clock()
        entries, _ = self._journal.take(now, self.rate_limit.per + backend.lease)
        # A hold counts for this process at once, even while a release call carries it.
        hold = self._journal.hold_until
        args = self._acquire_args(prefix, wanted, now, entries, hold)
        try:
            reply = await backend._run("acquire", self._keys, args)
        except UNAVAILABLE_ERRORS as exc:
            # The script may have run before the reply was lost: give the slots back later.
            self._journal.returned(entries, hold)
            self._journal.give_back(slots, now)
            backend._failed(exc)
            return None
        except BaseException:
            # Interrupted (usually cancelled) mid-call: give back slots it may have taken.
            self._journal.returned(entries, hold)
            await self._return_slots(slots)
            raise

        received = backend._clock()
        self._journal.delivered(entries, hold)
        backend._succeeded()
        granted, wait_us, counted, *delays = (int(value) for value in reply)
        self._counted = counted
        if granted:
            self._source = "redis"
            # The delays run from the script's clock reading, which came before ``received``.
            return [
                RedisPermit(self, slot, not_before=received + delay / 1e6)
                for slot, delay in zip(slots[:granted], delays, strict=True)
            ]
        line.polling = wait_us < 0
        if wait_us < 0:
            return self._poll_interval()
        # Ask again once the slot is within reach, and have it granted ahead.
        return max(wait_us / 1e6 - self._reach() / 2, 0.0)

    def _acquire_args(
        self,
        prefix: str,
        wanted: int,
        now: float,
        entries: list[Entry],
        hold: float,
    ) -> list[str | float]:
        limit = self.rate_limit
        args: list[str | float] = [
            prefix,
            wanted,
            limit.requests,
            ms(limit.per),
            ms(self._backend.lease),
            ms(limit.min_spacing),
            ms(max(0.0, hold - now)),
            self._guard(),
            ms(self._reach()),
        ]
        return args + replay_args(entries, now)

    async def _acquire_local(self) -> Permit:
        local = self._local_limiter()

        # A hold Redis never heard of still applies here.
        held = self._journal.hold_until - self._backend._clock()
        if held > 0:
            await local.hold(held)
        permit = await local.acquire()
        self._source = "local"
        return LocalPermit(self, permit)

    async def _release(self, slot: str, *, sent: bool) -> None:
        # Stamped now, sent in the background: until Redis hears it, the slot stays in flight
        # there, which only ever counts it longer.
        self._journal.record(slot, self._backend._clock(), sent=sent)
        await self._flush_soon()

    async def _return_slots(self, slots: list[str]) -> None:
        """Give back slots no waiter took, or that an interrupted call may have taken."""
        self._journal.give_back(slots, self._backend._clock())
        await self._flush_soon()

    async def _return_spare(self, spare: Sequence[Permit]) -> None:
        """Give back permits granted but never used (all in one call)."""
        slots = []
        for permit in spare:
            if isinstance(permit, RedisPermit):
                permit._released = True
                slots.append(permit._slot)
            else:
                await permit.release(sent=False)
        if slots:
            await self._return_slots(slots)

    async def _flush_soon(self) -> None:
        """Have the journal sent: by a task of its own, or inline by a task being cancelled."""
        backend = self._backend
        line = self._line()
        if line.flushing or backend._closed or not backend._is_up():
            return
        line.flushing = True

        # One sender per loop: what piles up meanwhile goes out together. A task being
        # cancelled (perhaps by the loop's shutdown) sends it itself, since a task spawned
        # now could outlive the loop.
        if cancel_requests():
            await self._flush(line)
        else:
            backend._spawn(self._flush(line))

    async def _flush(self, line: Line) -> None:
        """Send the journal to Redis until it has no news or Redis stops answering."""
        backend = self._backend
        try:
            while self._journal.has_news():
                now = backend._clock()
                entries, hold = self._journal.take(now, self.rate_limit.per + backend.lease)
                args = [
                    *self._window_args(),
                    ms(max(0.0, hold - now)),
                    *replay_args(entries, now),
                ]
                try:
                    await backend._run("release", self._keys, args)
                except BaseException as exc:
                    # The next acquire carries them instead.
                    self._journal.returned(entries, hold)
                    if isinstance(exc, UNAVAILABLE_ERRORS):
                        backend._failed(exc)
                        return
                    if not isinstance(exc, Exception):
                        raise
                    # Nobody awaits this task: log, and let the next acquire surface a bug.
                    logger.warning("limiter %s: releases not sent (%s)", self.name, exc_name(exc))
                    return
                self._journal.delivered(entries, hold)
                self._wake(sent=all(sent for _, _, sent in entries))
        finally:
            line.flushing = False

    def _wake(self, *, sent: bool) -> None:
        # A sent slot frees nothing before a window passes, unless the head has no timer.
        with self._lock:
            lines = list(self._lines.values())
        for line in lines:
            if not sent or line.polling:
                line.wake()

    def _local_limiter(self) -> SlidingWindowLimiter:
        # The one clients without a backend use for this key, so they share its budget;
        # holding it keeps the registry handing out the same object.
        if self._local is None:
            self._local = limiter_for_fingerprint(
                self._fingerprint, self.rate_limit, name=self.name
            )
        return self._local

    def _line(self) -> Line:
        loop = asyncio.get_running_loop()
        with self._lock:
            line = self._lines.get(loop)
            if line is None:
                line = self._lines[loop] = Line(loop)
            return line

    def _window_args(self) -> list[str | float]:
        return [ms(self.rate_limit.per), ms(self.rate_limit.min_spacing), self._guard()]

    def _guard(self) -> str:
        return "1" if self._backend.restart_hold else "0"

    def _reach(self) -> float:
        return min(GRANT_AHEAD, self.rate_limit.per * GRANT_AHEAD_SHARE)

    def _poll_interval(self) -> float:
        return min(max(self.rate_limit.per * POLL_SHARE, POLL_MIN), POLL_MAX)


def cancel_requests() -> int:
    """How often the running task has been asked to cancel (0 before Python 3.11)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return int(cancelling()) if cancelling is not None else 0
