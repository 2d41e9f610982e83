"""The process-wide registry of in-process limiters: one per API key, shared by its clients.

The registry keeps one :class:`~chatmaid_async._limiter.SlidingWindowLimiter` per key
fingerprint, never the raw key. Open clients hold a lease; an unleased entry is dropped once
its window is empty, so the registry holds only the keys in use or used within the last window.
A Redis fallback finds the same limiter by fingerprint, so both share the key's budget.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import OrderedDict

from chatmaid_async._limiter import Clock, SlidingWindowLimiter
from chatmaid_async._limits import Limiter, RateLimit, key_fingerprint, redact_key

__all__ = [
    "LimiterRegistry",
    "lease",
    "limiter_for_fingerprint",
    "limiter_for_key",
    "registry_size",
    "release_lease",
]

logger = logging.getLogger("chatmaid_async.limiter")

# Unleased registry entries examined per lookup: more than one lookup can add, so it keeps pace.
SWEEP_BATCH = 8


class _Entry:
    __slots__ = ("leases", "limiter")

    def __init__(self, limiter: SlidingWindowLimiter) -> None:
        self.limiter = limiter
        self.leases = 0


class LimiterRegistry:
    """One :class:`SlidingWindowLimiter` per API key in this process, keyed by fingerprint.

    Clients call :meth:`lease` when they open and :meth:`release_lease` when they close. An
    entry with no lease is dropped once its window is empty, checked a few entries per lookup;
    until then a new client on the key inherits its history and cannot burst past the server.

    Rate limits: the first lease holder's :class:`RateLimit` applies while any lease is held; a
    different one logs a WARNING and gets the limiter as it is. A lease taken when nobody holds
    one sets the limit, keeping the slots already counted.
    """

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        # Fingerprints of unleased entries, the longest unleased first.
        self._idle: OrderedDict[str, None] = OrderedDict()
        # Dropped limiters that a caller still holds, so a lookup finds the same object again.
        self._retired: weakref.WeakValueDictionary[str, SlidingWindowLimiter] = (
            weakref.WeakValueDictionary()
        )

    def lease(self, api_key: str, rate_limit: RateLimit) -> SlidingWindowLimiter:
        """Take a lease on the key's shared limiter; pair with one :meth:`release_lease`."""
        fingerprint = key_fingerprint(api_key)
        with self._lock:
            self._sweep(SWEEP_BATCH)
            entry = self._entry(fingerprint, redact_key(api_key), rate_limit)
            entry.leases += 1
            self._idle.pop(fingerprint, None)
            return entry.limiter

    def release_lease(self, limiter: Limiter | None) -> None:
        """Give back one lease; once none is left the entry goes when its window is empty.

        A limiter from elsewhere (e.g. a Redis backend) is ignored, so callers need not check.
        """
        if not isinstance(limiter, SlidingWindowLimiter):
            return
        fingerprint = limiter._fingerprint
        with self._lock:
            entry = self._entries.get(fingerprint)
            if entry is None or entry.limiter is not limiter or entry.leases == 0:
                logger.debug("limiter %s: lease released more often than taken", limiter.name)
                return
            entry.leases -= 1
            if entry.leases == 0:
                self._idle[fingerprint] = None
            self._sweep(SWEEP_BATCH)

    def get(self, api_key: str, rate_limit: RateLimit) -> SlidingWindowLimiter:
        """The key's shared limiter, without a lease (for tools and tests).

        Without a lease, a limiter whose window empties may be dropped from the registry; while
        you hold it, lookups still return the same object.
        """
        return self.limiter_for(key_fingerprint(api_key), rate_limit, name=redact_key(api_key))

    def limiter_for(
        self, fingerprint: str, rate_limit: RateLimit, *, name: str
    ) -> SlidingWindowLimiter:
        """:meth:`get` by fingerprint, for callers that never see the key (a Redis fallback).

        ``name`` is the redacted key for logs. Matches the ``LimiterBackend`` protocol.
        """
        with self._lock:
            self._sweep(SWEEP_BATCH)
            entry = self._entry(fingerprint, name, rate_limit)
            if entry.leases == 0:
                self._idle[fingerprint] = None
            return entry.limiter

    def size(self) -> int:
        """Drop every entry that can go, then count the rest."""
        with self._lock:
            self._sweep(len(self._idle))
            return len(self._entries)

    def _entry(self, fingerprint: str, name: str, rate_limit: RateLimit) -> _Entry:
        entry = self._entries.get(fingerprint)
        if entry is None:
            limiter = self._retired.pop(fingerprint, None)
            if limiter is None:
                limiter = SlidingWindowLimiter(rate_limit, name=name, clock=self._clock)
                limiter._fingerprint = fingerprint
            entry = self._entries[fingerprint] = _Entry(limiter)
        self._reconcile(entry, rate_limit)
        return entry

    def _reconcile(self, entry: _Entry, rate_limit: RateLimit) -> None:
        limiter = entry.limiter
        if limiter.rate_limit == rate_limit:
            return
        if entry.leases == 0:
            limiter.rate_limit = rate_limit
            return
        logger.warning(
            "limiter %s: asked for %s but an open client set %s; keeping it for this key",
            limiter.name,
            _describe(rate_limit),
            _describe(limiter.rate_limit),
        )

    def _sweep(self, budget: int) -> None:
        # Oldest unleased first; one still counting slots goes to the back of the line.
        for _ in range(min(budget, len(self._idle))):
            fingerprint = next(iter(self._idle))
            limiter = self._entries[fingerprint].limiter
            if limiter._is_quiet():
                del self._entries[fingerprint], self._idle[fingerprint]
                self._retired[fingerprint] = limiter
            else:
                self._idle.move_to_end(fingerprint)

    def __repr__(self) -> str:
        leased = sum(1 for entry in self._entries.values() if entry.leases)
        return f"<LimiterRegistry entries={len(self._entries)} leased={leased}>"


_REGISTRY = LimiterRegistry()


def lease(api_key: str, rate_limit: RateLimit) -> SlidingWindowLimiter:
    """Take a lease on the process-wide limiter of ``api_key`` (on client open)."""
    return _REGISTRY.lease(api_key, rate_limit)


def release_lease(limiter: Limiter | None) -> None:
    """Give back a lease taken with :func:`lease` (on client close); once per lease.

    None (pacing off) and limiters from other backends are ignored.
    """
    _REGISTRY.release_lease(limiter)


def limiter_for_key(api_key: str, rate_limit: RateLimit) -> SlidingWindowLimiter:
    """The process-wide limiter of ``api_key``, without a lease (see ``LimiterRegistry.get``)."""
    return _REGISTRY.get(api_key, rate_limit)


def limiter_for_fingerprint(
    fingerprint: str, rate_limit: RateLimit, *, name: str
) -> SlidingWindowLimiter:
    """:func:`limiter_for_key` by ``key_fingerprint(api_key)``; ``name`` is the redacted key."""
    return _REGISTRY.limiter_for(fingerprint, rate_limit, name=name)


def registry_size() -> int:
    """How many keys the process-wide registry holds after dropping those it can."""
    return _REGISTRY.size()


def _describe(rate_limit: RateLimit) -> str:
    smooth = ", smooth" if rate_limit.smooth else ""
    return f"{rate_limit.requests} per {rate_limit.per:g}s{smooth}"
