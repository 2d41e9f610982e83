"""What Redis has not heard yet from this process about one key, until it does.

Releases are stamped when the attempt ends and sent later, batched; slots an interrupted
acquire may hold, slots granted locally during an outage and a 429 hold wait here too. Until
Redis hears an entry its slot only counts longer, so a lost call never lets Redis undercount.
"""

from __future__ import annotations

import threading
from collections import deque
from itertools import islice

__all__ = ["NO_HOLD", "Entry", "Journal"]

# Journal entries sent in one call.
REPLAY_BATCH = 256

Entry = tuple[str, float, bool]
NO_HOLD = float("-inf")


class Journal:
    """What Redis has not heard yet from this process about one key.

    Releases (sent by a background task, or by the next acquire if it goes first), slots an
    interrupted acquire may have taken, slots granted locally during an outage, and a hold.
    Whatever a call carries is marked in flight so no other call sends it twice; it is
    forgotten once Redis answers and offered again if it does not. Entries too old to count
    any more are dropped, so an outage never lets Redis undercount and never grows this.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # slot -> (when recorded, sent); sent slots count from that time, others are given back.
        self._slots: dict[str, tuple[float, bool]] = {}
        self._in_flight: set[str] = set()
        # Filled without the lock by permits collected unreleased; adopted under it.
        self._orphans: deque[tuple[str, float]] = deque()
        self._hold_until = NO_HOLD
        self._hold_in_flight = NO_HOLD

    def __len__(self) -> int:
        return len(self._slots) + len(self._orphans) + (self._hold_until > NO_HOLD)

    @property
    def hold_until(self) -> float:
        """The hold Redis has not confirmed yet (monotonic time), or ``NO_HOLD``."""
        return self._hold_until

    def has_news(self) -> bool:
        """True if something is neither confirmed nor in flight."""
        with self._lock:
            fresh_hold = self._hold_until > NO_HOLD and self._hold_until != self._hold_in_flight
            return bool(self._orphans) or fresh_hold or len(self._slots) > len(self._in_flight)

    def record(self, slot: str, at: float, *, sent: bool) -> None:
        """Remember that ``slot`` ended at ``at`` (``sent``) or must be given back."""
        with self._lock:
            self._slots[slot] = (at, sent)

    def give_back(self, slots: list[str], at: float) -> None:
        """Remember slots an interrupted acquire may have taken, to return them."""
        with self._lock:
            for slot in slots:
                self._slots[slot] = (at, False)

    def record_orphan(self, slot: str, at: float) -> None:
        """Like :meth:`record` for a sent slot, safe in ``__del__`` (no lock)."""
        self._orphans.append((slot, at))

    def hold(self, until: float) -> None:
        """Remember a hold Redis has not heard yet."""
        with self._lock:
            self._hold_until = max(self._hold_until, until)

    def take(self, now: float, horizon: float) -> tuple[list[Entry], float]:
        """Entries and hold to send now, marked in flight; drops entries older than
        ``horizon`` seconds first. The hold is ``NO_HOLD`` if none is due."""
        with self._lock:
            while self._orphans:
                slot, at = self._orphans.popleft()
                self._slots[slot] = (at, True)
            for slot in [s for s, (at, _) in self._slots.items() if now - at > horizon]:
                del self._slots[slot]
                self._in_flight.discard(slot)

            unsent = (s for s in self._slots if s not in self._in_flight)
            entries = [(slot, *self._slots[slot]) for slot in islice(unsent, REPLAY_BATCH)]
            self._in_flight.update(slot for slot, _, _ in entries)
            hold = NO_HOLD if self._hold_until == self._hold_in_flight else self._hold_until
            if hold > NO_HOLD:
                self._hold_in_flight = hold
            return entries, hold

    def delivered(self, entries: list[Entry], hold: float) -> None:
        """Redis has heard these: forget them (unless recorded again meanwhile)."""
        with self._lock:
            for slot, at, sent in entries:
                self._in_flight.discard(slot)
                if self._slots.get(slot) == (at, sent):
                    del self._slots[slot]
            if hold > NO_HOLD and self._hold_until == hold:
                self._hold_until = self._hold_in_flight = NO_HOLD

    def returned(self, entries: list[Entry], hold: float) -> None:
        """Redis may not have heard these: offer them again."""
        with self._lock:
            for slot, _, _ in entries:
                self._in_flight.discard(slot)
            if hold > NO_HOLD and self._hold_in_flight == hold:
                self._hold_in_flight = NO_HOLD
