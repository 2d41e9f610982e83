"""The pacing figures of a batch: limiter wait, rate, ETA and allowance, on an injected clock."""

from __future__ import annotations

import attrs
import pytest

from chatmaid_async import RateLimit
from chatmaid_async.cli._pacing import LimitWaitMeter, Pace, allowed_requests

MINUTE = RateLimit(100, 60.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@attrs.define
class FakeState:
    waiters: int = 0


@attrs.define
class FakeLimiter:
    current: FakeState = attrs.Factory(FakeState)

    def state(self) -> FakeState:
        return self.current


def test_the_meter_counts_only_the_time_with_sends_queued() -> None:
    clock, limiter = Clock(), FakeLimiter()
    meter = LimitWaitMeter(limiter, clock=clock)

    for now, waiters in [(0.0, 0), (1.0, 3), (2.0, 3), (4.5, 0), (5.0, 1)]:
        clock.now = now
        limiter.current.waiters = waiters
        meter.sample()
    clock.now = 5.5

    assert meter.waited == pytest.approx(3.5 + 0.5)
    meter.stop()
    clock.now = 9.0
    assert meter.waited == pytest.approx(4.0)


def test_a_limiter_that_cannot_be_observed_reports_no_wait() -> None:
    meter = LimitWaitMeter(None)
    meter.sample()

    assert not meter.available
    assert meter.waited == 0.0


@pytest.mark.parametrize(
    ("elapsed", "allowed"), [(0.0, 100), (59.9, 100), (60.0, 200), (60.2, 200), (125.0, 300)]
)
def test_what_a_sliding_window_allows_in_a_run(elapsed: float, allowed: int) -> None:
    assert allowed_requests(MINUTE, elapsed) == allowed


def burst(pace: Pace, clock: Clock, count: int, at: float) -> None:
    clock.now = at
    for _ in range(count):
        pace.finished(request=True)


@pytest.mark.parametrize(
    ("done", "now", "remaining", "eta"),
    [
        (0, 0.0, 100, 0.0),  # the whole burst is free
        (0, 0.0, 101, 60.0),  # one past it waits a window
        (20, 1.0, 180, 60.0),  # 80 unused slots, then 100 more a window later
        (100, 1.0, 96, 59.1),  # all slots used at 0.1: the last frees at 60.1
        (100, 1.0, 101, 119.1),  # and one more needs the window after
        (100, 53.0, 96, 7.1),  # the ETA counts down while nothing finishes
        (100, 90.0, 50, 0.0),  # slots long since freed
    ],
)
def test_the_eta_follows_the_sliding_window(
    done: int, now: float, remaining: int, eta: float
) -> None:
    clock = Clock()
    pace = Pace(MINUTE, clock=clock)
    burst(pace, clock, done, at=0.1)
    clock.now = now

    assert pace.eta(remaining) == pytest.approx(eta)


def test_the_rate_falls_while_the_limiter_holds_sends_back() -> None:
    clock = Clock()
    pace = Pace(MINUTE, clock=clock)
    burst(pace, clock, 100, at=0.1)

    clock.now = 1.0
    early = pace.rate
    clock.now = 50.0

    assert early == pytest.approx(100.0)
    assert pace.rate == pytest.approx(2.0)


def test_without_a_limit_the_eta_comes_from_the_recent_rate() -> None:
    clock = Clock()
    pace = Pace(None, clock=clock)
    assert pace.eta(10) is None

    burst(pace, clock, 20, at=2.0)
    clock.now = 4.0

    assert pace.rate == pytest.approx(5.0)
    assert pace.eta(10) == pytest.approx(2.0)
