"""The sliding and fixed window models, and the 429 / X-RateLimit-* answers."""

from __future__ import annotations

import asyncio
import math

import pytest

from chatmaid_async import RateLimit
from chatmaid_async.sandbox import Sandbox
from chatmaid_async.sandbox._ratelimit import (
    FixedWindow,
    SlidingWindow,
    make_window,
    retry_after_seconds,
)

from ._support import Api

TEN_PER_SECOND = RateLimit(10, per=1.0)


def test_sliding_window_admits_the_limit_then_rejects() -> None:
    window = SlidingWindow(TEN_PER_SECOND)

    verdicts = [window.hit(0.01 * n) for n in range(11)]

    assert [v.allowed for v in verdicts] == [True] * 10 + [False]
    assert [v.remaining for v in verdicts[:10]] == list(range(9, -1, -1))
    assert verdicts[10].reset_after == pytest.approx(1.0 - 0.1)


def test_sliding_window_frees_a_slot_exactly_per_seconds_after_an_arrival() -> None:
    window = SlidingWindow(TEN_PER_SECOND)
    for n in range(10):
        window.hit(n * 0.1)

    assert not window.hit(0.999).allowed
    assert window.hit(1.0).allowed  # the arrival at 0.0 stops counting at 1.0
    assert not window.hit(1.05).allowed
    assert window.hit(1.1).allowed


def test_rejected_requests_take_no_capacity() -> None:
    window = SlidingWindow(RateLimit(2, per=1.0))
    window.hit(0.0)
    window.hit(0.5)

    for moment in (0.6, 0.7, 0.8, 0.9):
        assert not window.hit(moment).allowed
    verdict = window.hit(1.0)

    assert verdict.allowed
    assert verdict.in_window == 2


def test_sliding_window_never_holds_more_than_the_limit_in_any_window() -> None:
    window = SlidingWindow(TEN_PER_SECOND)
    accepted = [t / 100 for t in range(500) if window.hit(t / 100).allowed]

    for start in accepted:
        assert sum(1 for t in accepted if start <= t < start + 1.0) <= 10


def test_fixed_window_resets_at_each_boundary_from_the_first_request() -> None:
    window = FixedWindow(TEN_PER_SECOND)

    first = [window.hit(5.0 + 0.01 * n).allowed for n in range(11)]
    at_end = window.hit(5.99)
    next_window = window.hit(6.0)

    assert first == [True] * 10 + [False]
    assert not at_end.allowed
    assert at_end.reset_after == pytest.approx(0.01)
    assert next_window.allowed
    assert next_window.remaining == 9


def test_fixed_window_lets_two_bursts_straddle_a_boundary() -> None:
    window = FixedWindow(TEN_PER_SECOND)
    window.hit(0.0)  # opens the first window at t=0

    late = [window.hit(0.95) for _ in range(9)]
    early = [window.hit(1.0) for _ in range(10)]

    assert all(verdict.allowed for verdict in late + early)
    assert not window.hit(1.5).allowed
    # 19 accepted arrivals within 0.05 s: the weakness a client limiter must survive.
    assert early[-1].in_window == 19


def test_fixed_window_skips_idle_windows() -> None:
    window = FixedWindow(TEN_PER_SECOND)
    window.hit(0.0)

    verdict = window.hit(7.25)

    assert verdict.allowed
    assert verdict.reset_after == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("wait", "expected"),
    [(0.0, 1), (0.001, 1), (0.999, 1), (1.0, 1), (1.0000000001, 1), (1.2, 2), (59.5, 60)],
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_1(
    wait: float, expected: int
) -> None:
    assert retry_after_seconds(wait) == expected


def test_unknown_window_model_is_rejected() -> None:
    with pytest.raises(ValueError, match="sliding"):
        make_window(TEN_PER_SECOND, "leaky")  # type: ignore[arg-type]


def test_create_key_rejects_an_unknown_window(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="window"):
        sandbox.create_key(rate_limit=TEN_PER_SECOND, window="token")  # type: ignore[arg-type]


async def _burst(api: Api, key: str, count: int) -> list[tuple[int, dict[str, str], object]]:
    async def one() -> tuple[int, dict[str, str], object]:
        status, body, headers = await api.request("GET", "/v1/account", key)
        return status, dict(headers), body

    return await asyncio.gather(*(one() for _ in range(count)))


@pytest.mark.parametrize("model", ["sliding", "fixed"])
async def test_429_past_the_limit_with_retry_after_header_and_body(
    api: Api, sandbox: Sandbox, model: str
) -> None:
    key = sandbox.create_key(rate_limit=RateLimit(10, per=0.5), window=model)  # type: ignore[arg-type]

    results = await _burst(api, key, 13)

    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] * 10 + [429] * 3
    for status, headers, body in results:
        assert headers["X-RateLimit-Limit"] == "10"
        assert float(headers["X-RateLimit-Reset"]) <= 0.5
        if status == 429:
            assert headers["Retry-After"] == "1"
            assert headers["X-RateLimit-Remaining"] == "0"
            assert isinstance(body, dict)
            assert body["retryAfter"] == 1
            assert body["statusCode"] == 429
            assert body["error"] == "Too Many Requests"
    assert sandbox.counters.rate_limited_total == 3
    assert sandbox.counters.rate_limited_by_key == {key: 3}
    assert sandbox.counters.max_in_window_by_key == {key: 10}


async def test_remaining_counts_down_and_reset_has_millisecond_precision(
    api: Api, sandbox: Sandbox
) -> None:
    key = sandbox.create_key(rate_limit=RateLimit(3, per=0.5))

    remaining = []
    for _ in range(3):
        _, _, headers = await api.request("GET", "/v1/account", key)
        remaining.append(headers["X-RateLimit-Remaining"])
        reset = headers["X-RateLimit-Reset"]
        assert len(reset.split(".")[1]) == 3
        assert 0 < float(reset) <= 0.5

    assert remaining == ["2", "1", "0"]


async def test_sliding_window_recovers_after_per_seconds(api: Api, sandbox: Sandbox) -> None:
    key = sandbox.create_key(rate_limit=RateLimit(5, per=0.3))
    await _burst(api, key, 5)

    blocked, _ = await api.get("/v1/account", key)
    await asyncio.sleep(0.31)
    recovered, _ = await api.get("/v1/account", key)

    assert (blocked, recovered) == (429, 200)


async def test_fixed_window_allows_double_the_limit_across_a_boundary(
    api: Api, sandbox: Sandbox
) -> None:
    key = sandbox.create_key(rate_limit=RateLimit(5, per=0.4), window="fixed")
    await api.get("/v1/account", key)  # opens the first window

    await asyncio.sleep(0.3)
    first = await _burst(api, key, 4)
    await asyncio.sleep(0.12)
    second = await _burst(api, key, 5)

    assert all(status == 200 for status, _, _ in first + second)
    # Nine accepted inside roughly 0.15 s: more than 5 in a trailing 0.4 s.
    assert sandbox.counters.max_in_window_by_key[key] == 9


async def test_keys_have_separate_windows_and_unlimited_keys_have_no_headers(
    api: Api, sandbox: Sandbox
) -> None:
    limited = sandbox.create_key(rate_limit=RateLimit(2, per=1.0))
    other = sandbox.create_key(rate_limit=RateLimit(2, per=1.0))
    unlimited = sandbox.create_key()
    await _burst(api, limited, 2)

    other_status, _, _ = await api.request("GET", "/v1/account", other)
    _, _, headers = await api.request("GET", "/v1/account", unlimited)

    assert other_status == 200
    assert not any(name.lower().startswith("x-ratelimit") for name in headers)


async def test_every_request_counts_against_the_window_including_errors(
    api: Api, sandbox: Sandbox
) -> None:
    key = sandbox.create_key(rate_limit=RateLimit(3, per=1.0))

    statuses = [
        (await api.get("/v1/messages/msg_missing", key))[0],
        (await api.get("/v1/messages", key, limit="500"))[0],
        (await api.get("/v1/account", key))[0],
        (await api.get("/v1/account", key))[0],
    ]

    assert statuses == [404, 400, 200, 429]


async def test_429_retry_after_rounds_a_long_wait_up(api: Api, sandbox: Sandbox) -> None:
    key = sandbox.create_key(rate_limit=RateLimit(1, per=2.5))
    await api.get("/v1/account", key)

    status, body, headers = await api.request("GET", "/v1/account", key)

    assert status == 429
    assert body["retryAfter"] == math.ceil(float(headers["X-RateLimit-Reset"]))
    assert body["retryAfter"] == 3
