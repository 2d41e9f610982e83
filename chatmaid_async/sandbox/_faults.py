"""Faults on demand: latency, 503s, HTML 502s, dropped connections and slow bodies.

:class:`Faults` is the configuration; :class:`FaultInjector` draws from a seedable RNG and
tells the middleware what to do with one request. Choosing is pure and separate from acting,
so the odds can be tested without a server.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Literal

import attrs

__all__ = ["FAULT_KINDS", "FaultDecision", "FaultInjector", "FaultKind", "Faults"]

FaultKind = Literal["error_503", "html_502", "drop_before", "drop_after", "slow_body"]

# Order matters: a single uniform draw is split into these slices, in this order.
FAULT_KINDS: tuple[FaultKind, ...] = (
    "error_503",
    "html_502",
    "drop_before",
    "drop_after",
    "slow_body",
)


def _paths(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


def _share(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} is a probability in [0, 1], got {value!r}")


def _check_latency(value: float | tuple[float, float]) -> None:
    low, high = value if isinstance(value, tuple) else (value, value)
    if not 0.0 <= low <= high:
        raise ValueError(f"latency must be seconds >= 0 or a (low, high) range, got {value!r}")


@attrs.frozen(kw_only=True)
class Faults:
    """Which faults to inject and how often.

    Each share is the probability that one request gets that fault; shares add up to at most 1
    and at most one fault hits a request. ``latency`` (seconds, or a ``(low, high)`` range drawn
    uniformly) is added before every request in scope. ``paths`` limits faults to some request
    paths or route templates (``"/v1/messages/send"``, ``"/v1/messages/{message_id}"``); None
    means every path. ``times`` caps how many share-faults are injected in all (latency is not
    counted); None means no cap.
    """

    latency: float | tuple[float, float] = 0.0
    error_503: float = attrs.field(default=0.0, validator=_share)
    html_502: float = attrs.field(default=0.0, validator=_share)
    drop_before: float = attrs.field(default=0.0, validator=_share)
    drop_after: float = attrs.field(default=0.0, validator=_share)
    slow_body: float = attrs.field(default=0.0, validator=_share)
    slow_body_seconds: float = 0.5
    paths: frozenset[str] | None = attrs.field(default=None, converter=_paths)
    times: int | None = None

    def __attrs_post_init__(self) -> None:
        _check_latency(self.latency)
        if self.total_share > 1.0 + 1e-9:
            raise ValueError(f"fault shares add up to {self.total_share}, more than 1")
        if self.slow_body_seconds < 0:
            raise ValueError("slow_body_seconds must be >= 0")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or None")

    @property
    def shares(self) -> tuple[tuple[FaultKind, float], ...]:
        """Each fault with its probability, in the order a draw is split."""
        return (
            ("error_503", self.error_503),
            ("html_502", self.html_502),
            ("drop_before", self.drop_before),
            ("drop_after", self.drop_after),
            ("slow_body", self.slow_body),
        )

    @property
    def total_share(self) -> float:
        """The probability that a request in scope gets some fault."""
        return sum(share for _, share in self.shares)

    def applies_to(self, path: str, template: str | None) -> bool:
        """Whether a request for ``path`` (matched to route ``template``) is in scope."""
        if self.paths is None:
            return True
        return path in self.paths or (template is not None and template in self.paths)

    def kind_for(self, draw: float) -> FaultKind | None:
        """Map a uniform draw in [0, 1) to a fault, or None for a clean request."""
        edge = 0.0
        for kind, share in self.shares:
            edge += share
            if draw < edge:
                return kind
        return None


@attrs.frozen(slots=True)
class FaultDecision:
    """What to do to one request: wait ``latency`` seconds, then inject ``kind`` (or nothing)."""

    latency: float = 0.0
    kind: FaultKind | None = None


_NO_FAULT = FaultDecision()


class FaultInjector:
    """Draws fault decisions from a seedable RNG, honouring the ``times`` cap."""

    def __init__(self, faults: Faults | None = None, *, seed: int | None = None) -> None:
        self._faults = faults or Faults()
        self._rng = random.Random(seed)
        self._left = self._faults.times

    @property
    def faults(self) -> Faults:
        """The configuration in force."""
        return self._faults

    def configure(self, faults: Faults, *, seed: int | None = None) -> None:
        """Replace the configuration; a ``seed`` restarts the RNG for repeatable runs."""
        self._faults = faults
        self._left = faults.times
        if seed is not None:
            self._rng.seed(seed)

    def decide(self, path: str, template: str | None) -> FaultDecision:
        """Choose the latency and fault for a request."""
        faults = self._faults
        if faults.latency == 0.0 and faults.total_share == 0.0:
            return _NO_FAULT
        if not faults.applies_to(path, template):
            return _NO_FAULT

        latency = self._draw_latency(faults.latency)
        kind = faults.kind_for(self._rng.random()) if faults.total_share else None

        # The cap counts injected faults only, so a clean draw does not use one up.
        if kind is not None and self._left is not None:
            if self._left == 0:
                kind = None
            else:
                self._left -= 1
        return FaultDecision(latency, kind)

    def _draw_latency(self, latency: float | tuple[float, float]) -> float:
        if isinstance(latency, tuple):
            return self._rng.uniform(*latency)
        return latency

    def __repr__(self) -> str:
        return f"<FaultInjector {self._faults!r} left={self._left}>"
