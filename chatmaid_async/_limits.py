"""Rate-limit configuration and the seam a limiter backend plugs into.

The session layer only knows the two protocols below: it asks for a :class:`Permit` before
every attempt, releases it when the attempt ends, and tells the limiter to hold the key when
the server pushes back. The in-process backend lives in ``_limiter``; the Redis backend in
``redis_limiter``.
"""

from __future__ import annotations

import hashlib
import math
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["Limiter", "LimiterBackend", "Permit", "RateLimit", "key_fingerprint", "redact_key"]

DEFAULT_RATE = 100
DEFAULT_PERIOD = 60.0
# Spacing for servers with approximate two-bucket counters: per / (SMOOTH_FILL * N).
SMOOTH_FILL = 0.98


@attrs.frozen(slots=True)
class RateLimit:
    """At most ``requests`` requests in any window of ``per`` seconds, for one API key.

    ``smooth=True`` also spaces grants at least ``per / (0.98 * requests)`` apart, for servers
    that approximate their window with two counters and punish bursts.
    """

    requests: int = attrs.field(default=DEFAULT_RATE)
    per: float = attrs.field(default=DEFAULT_PERIOD, kw_only=False)
    smooth: bool = attrs.field(default=False, kw_only=True)

    @requests.validator
    def _check_requests(self, _: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"requests must be a positive integer, got {value!r}")

    @per.validator
    def _check_per(self, _: attrs.Attribute[float], value: float) -> None:
        valid = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not valid or not 0 < value < math.inf:
            raise ValueError(f"per must be a positive, finite number of seconds, got {value!r}")

    @property
    def min_spacing(self) -> float:
        """Seconds between two grants in smooth mode (0 when not smooth)."""
        return self.per / (SMOOTH_FILL * self.requests) if self.smooth else 0.0


@runtime_checkable
class Permit(Protocol):
    """One granted slot for one attempt."""

    async def release(self, *, sent: bool) -> None:
        """End the attempt.

        ``sent=True``: the request may have reached the server; the slot keeps counting for a
        full window from now (the server saw the request no later than we saw its end).
        ``sent=False``: nothing left the process; the slot returns to the budget at once.
        """
        ...


@runtime_checkable
class Limiter(Protocol):
    """A per-key budget of requests, shared by every client that uses the key."""

    rate_limit: RateLimit

    async def acquire(self) -> Permit:
        """Wait for a free slot and return it. Cancelling the wait takes no slot."""
        ...

    async def hold(self, seconds: float) -> None:
        """Grant no slot on this key for ``seconds`` (a 429 or an exhausted quota)."""
        ...


def key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible name for an API key (registry and Redis keys)."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:32]


def redact_key(secret: str | None) -> str:
    """Show a key or secret as its prefix and last four characters, e.g. ``sk_test_…a1b2``."""
    if not secret:
        return "<none>"
    prefix = ""
    for known in ("sk_test_", "sk_live_", "whsec_"):
        if secret.startswith(known):
            prefix = known
            break
    tail = secret[-4:] if len(secret) - len(prefix) > 8 else ""
    return f"{prefix}…{tail}"


@runtime_checkable
class LimiterBackend(Protocol):
    """A shared limiter store (e.g. Redis) that hands out one :class:`Limiter` per key."""

    def limiter_for(self, fingerprint: str, rate_limit: RateLimit, *, name: str) -> Limiter:
        """The limiter of the key with this fingerprint (never the raw key)."""
        ...
