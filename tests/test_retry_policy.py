"""The retry decisions of ``chatmaid_async._retry``, as tables: no I/O, no sleeping."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from chatmaid_async._retry import (
    RetryPolicy,
    backoff_delay,
    is_retryable,
    parse_rate_limit_reset,
    parse_retry_after,
    retry_delay,
)
from chatmaid_async.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ChatmaidError,
    DecodingError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ValidationError,
    error_class_for_status,
)

POLICY = RetryPolicy()
# The F02 scenario: the server's clock reads 07:27:30 and asks for 07:28:00.
SERVER_NOW = datetime(2026, 10, 21, 7, 27, 30, tzinfo=timezone.utc)
SERVER_DATE = "Wed, 21 Oct 2026 07:27:30 GMT"


def at_server_now() -> datetime:
    return SERVER_NOW


def headers(**values: str) -> CIMultiDict[str]:
    """Response headers as aiohttp exposes them: case-insensitive."""
    return CIMultiDict({name.replace("_", "-"): value for name, value in values.items()})


class Ceiling(random.Random):
    """An rng whose jitter always lands on the top of the range."""

    def uniform(self, a: float, b: float) -> float:
        return b


class Floor(random.Random):
    """An rng whose jitter always lands on the bottom of the range."""

    def uniform(self, a: float, b: float) -> float:
        return a


def status_error(status: int, **kwargs: object) -> APIStatusError:
    return error_class_for_status(status)(status, **kwargs)  # type: ignore[arg-type]


# --- the policy ------------------------------------------------------------------------------


def test_default_policy_is_two_retries_half_second_base_eight_second_cap_one_minute_wait():
    assert (POLICY.max_retries, POLICY.base_delay, POLICY.max_delay, POLICY.max_retry_wait) == (
        2,
        0.5,
        8.0,
        60.0,
    )


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2", None])
def test_policy_rejects_a_max_retries_that_is_not_a_whole_number(bad: object):
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=bad)  # type: ignore[arg-type]


def test_policy_accepts_zero_retries():
    assert RetryPolicy(max_retries=0).max_retries == 0


@pytest.mark.parametrize("field", ["base_delay", "max_delay", "max_retry_wait"])
@pytest.mark.parametrize("bad", [-0.5, float("nan"), True, "1", None])
def test_policy_rejects_a_delay_that_is_not_a_number_of_seconds(field: str, bad: object):
    # A negative delay is a sleep that raises elsewhere; asyncio.sleep(nan) never returns.
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: bad})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["base_delay", "max_delay"])
def test_policy_rejects_an_infinite_backoff(field: str):
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**{field: float("inf")})  # type: ignore[arg-type]


def test_policy_accepts_zero_delays_and_an_unbounded_retry_wait():
    policy = RetryPolicy(base_delay=0, max_delay=0, max_retry_wait=float("inf"))

    assert backoff_delay(3, policy) == 0.0
    assert is_retryable(RateLimitError(429, retry_after=86_400.0), policy)


# --- which failures are retried (F30, F08) ---------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520, 521, 522, 523, 524, 529, 599])
def test_f30_every_5xx_is_retried(status: int):
    assert is_retryable(status_error(status), POLICY)


def test_f30_429_without_a_hint_is_retried():
    assert is_retryable(RateLimitError(429), POLICY)


def test_f30_408_request_timeout_is_retried():
    assert is_retryable(status_error(408), POLICY)


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, APIStatusError),
        (413, APIStatusError),
        (422, BadRequestError),
    ],
)
def test_f30_client_errors_are_never_retried(status: int, error_class: type[APIStatusError]):
    error = status_error(status)

    assert type(error) is error_class
    assert not is_retryable(error, POLICY)


@pytest.mark.parametrize(
    "error",
    [APIConnectionError("refused"), APITimeoutError("no answer within 1s")],
    ids=["connection", "timeout"],
)
def test_connection_failures_and_timeouts_are_retried(error: Exception):
    assert is_retryable(error, POLICY)


@pytest.mark.parametrize(
    ("hint", "retried"),
    [(0.0, True), (59.9, True), (60.0, True), (60.1, False), (3600.0, False)],
)
def test_a_rate_limit_hint_longer_than_max_retry_wait_is_not_retried(hint: float, retried: bool):
    assert is_retryable(RateLimitError(429, retry_after=hint), POLICY) is retried


def test_max_retry_wait_is_configurable():
    error = RateLimitError(429, retry_after=90.0)

    assert not is_retryable(error, RetryPolicy())
    assert is_retryable(error, RetryPolicy(max_retry_wait=120.0))


@pytest.mark.parametrize(
    "error",
    [
        asyncio.CancelledError(),
        KeyboardInterrupt(),
        SystemExit(),
        TimeoutError(),
        ConnectionResetError(),
        OSError("socket"),
        ValueError("x"),
        RuntimeError("x"),
        ChatmaidError("x"),
        DecodingError("/v1/account", "no data"),
        ValidationError("to", "must be E.164"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_f08_only_the_sdks_own_transient_failures_are_retried(error: BaseException):
    # A positive predicate: cancellation and foreign exceptions end the call.
    assert not is_retryable(error, POLICY)


# --- how long to wait ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_number", "ceiling"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 8.0), (30, 8.0), (5000, 8.0)],
)
def test_backoff_doubles_from_half_a_second_up_to_eight(retry_number: int, ceiling: float):
    assert backoff_delay(retry_number, POLICY, Ceiling()) == ceiling
    assert backoff_delay(retry_number, POLICY, Floor()) == 0.0


def test_backoff_is_full_jitter_over_the_whole_range():
    rng = random.Random(1234)
    delays = [backoff_delay(3, POLICY, rng) for _ in range(500)]

    assert all(0.0 <= delay <= 2.0 for delay in delays)
    # Full jitter: draws reach both ends of [0, ceiling], not only its upper half.
    assert min(delays) < 0.1
    assert max(delays) > 1.9


def test_backoff_base_and_cap_are_configurable():
    policy = RetryPolicy(base_delay=0.1, max_delay=0.3)

    assert [backoff_delay(n, policy, Ceiling()) for n in (1, 2, 3, 4)] == pytest.approx(
        [0.1, 0.2, 0.3, 0.3]
    )


def test_backoff_without_an_rng_stays_in_range():
    assert all(0.0 <= backoff_delay(2, POLICY) <= 1.0 for _ in range(100))


def test_retry_delay_uses_the_servers_hint_on_a_429():
    assert retry_delay(RateLimitError(429, retry_after=7.0), 1, POLICY, Ceiling()) == 7.0


def test_retry_delay_backs_off_on_a_429_without_a_hint():
    assert retry_delay(RateLimitError(429), 2, POLICY, Ceiling()) == 1.0


@pytest.mark.parametrize("error", [status_error(503), APIConnectionError("refused")])
def test_retry_delay_backs_off_on_other_failures(error: Exception):
    assert retry_delay(error, 3, POLICY, Ceiling()) == 2.0


# --- Retry-After (F02, F03) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (" 7 ", 7.0),
        ("+3", 3.0),
        ("-1", None),
        ("-3", None),
        ("-0.5", None),
        ("abc", None),
        ("", None),
        ("   ", None),
        ("nan", None),
        ("inf", None),
        ("-inf", None),
        ("1e999", None),
        ("Thu, 01 Jan 1970 00:00:00 GMT", None),
    ],
)
def test_f03_retry_after_seconds_negative_or_malformed(value: str, expected: float | None):
    assert parse_retry_after(headers(Retry_After=value), None, now=at_server_now) == expected


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2026 07:28:00 GMT",  # IMF-fixdate
        "Wednesday, 21-Oct-26 07:28:00 GMT",  # RFC 850
        "Wed Oct 21 07:28:00 2026",  # asctime
    ],
    ids=["imf-fixdate", "rfc850", "asctime"],
)
def test_f02_retry_after_http_date_is_seconds_after_the_servers_date(value: str):
    # The local clock is years off: the server's own Date header is the reference.
    hint = parse_retry_after(
        headers(Retry_After=value, Date=SERVER_DATE),
        None,
        now=lambda: datetime(2020, 1, 1, tzinfo=timezone.utc),
    )

    assert hint == pytest.approx(30.0)


def test_f02_retry_after_http_date_without_a_date_header_uses_the_clock():
    hint = parse_retry_after(
        headers(Retry_After="Wed, 21 Oct 2026 07:28:00 GMT"), None, now=at_server_now
    )

    assert hint == pytest.approx(30.0)


def test_f02_an_unreadable_date_header_falls_back_to_the_clock():
    hint = parse_retry_after(
        headers(Retry_After="Wed, 21 Oct 2026 07:28:00 GMT", Date="yesterday"),
        None,
        now=at_server_now,
    )

    assert hint == pytest.approx(30.0)


def test_f02_a_retry_after_date_in_the_past_gives_no_hint():
    past = SERVER_NOW - timedelta(minutes=10)
    value = past.strftime("%a, %d %b %Y %H:%M:%S GMT")

    assert parse_retry_after(headers(Retry_After=value, Date=SERVER_DATE), None) is None


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 21 Oct 2026 07:28:00 +99999999999999999999",
        "Wed, 21 Oct 99999999999999999999 07:28:00 GMT",
        "Wed, 21 Oct 2026 99999999999999999999:28:00 GMT",
        "Wed, 21 Oct 9999999 07:28:00 GMT",
        "Wed, 32 Oct 2026 07:28:00 GMT",
        "Wed, 21 Foo 2026 07:28:00 GMT",
    ],
)
def test_f02_an_out_of_range_http_date_gives_no_hint_instead_of_raising(value: str):
    assert parse_retry_after(headers(Retry_After=value), None, now=at_server_now) is None


def test_f02_an_out_of_range_date_header_falls_back_to_the_clock():
    hint = parse_retry_after(
        headers(
            Retry_After="Wed, 21 Oct 2026 07:28:00 GMT",
            Date="Wed, 21 Oct 2026 07:27:30 +99999999999999999999",
        ),
        None,
        now=at_server_now,
    )

    assert hint == pytest.approx(30.0)


@given(retry_after=st.text(max_size=60), date=st.text(max_size=60), body=st.none())
def test_f03_parse_retry_after_never_raises(retry_after: str, date: str, body: None):
    hint = parse_retry_after({"Retry-After": retry_after, "Date": date}, body)

    assert hint is None or hint >= 0.0


_DATE_PARTS = st.tuples(
    st.sampled_from(["Mon, ", "Wednesday, ", ""]),
    st.integers(-(10**25), 10**25),
    st.sampled_from([" Oct ", "-Oct-", " Foo "]),
    st.integers(-(10**25), 10**25),
    st.integers(-(10**25), 10**25),
    st.sampled_from([" GMT", " +0000", " -2359", " +99999999999", ""]),
)


@given(parts=_DATE_PARTS)
def test_f02_parse_retry_after_never_raises_on_date_shaped_garbage(
    parts: tuple[str, int, str, int, int, str],
):
    weekday, day, month, year, hour, zone = parts
    value = f"{weekday}{day}{month}{year} {hour}:00:00{zone}"

    hint = parse_retry_after({"Retry-After": value, "Date": value}, None)

    assert hint is None or hint >= 0.0


def test_the_body_retry_after_wins_over_the_header():
    assert parse_retry_after(headers(Retry_After="20"), {"retryAfter": 5}) == 5.0


@pytest.mark.parametrize("body_value", [-5, None, True, "soon", float("nan"), [], {}])
def test_an_unusable_body_retry_after_falls_back_to_the_header(body_value: object):
    assert parse_retry_after(headers(Retry_After="20"), {"retryAfter": body_value}) == 20.0


def test_a_numeric_string_body_retry_after_is_read():
    assert parse_retry_after(headers(), {"retryAfter": "7"}) == 7.0


@pytest.mark.parametrize("body", [None, "rate limited", ["retryAfter", 5], 5])
def test_a_body_that_is_not_an_object_is_ignored(body: object):
    assert parse_retry_after(headers(Retry_After="3"), body) == 3.0


def test_no_hint_anywhere_gives_none():
    assert parse_retry_after(headers(), {"success": False, "error": "Too Many Requests"}) is None


def test_the_retry_after_header_name_is_case_insensitive():
    assert parse_retry_after(CIMultiDict({"retry-after": "4"}), None) == 4.0


# --- X-RateLimit-* quota feedback ------------------------------------------------------------


@pytest.mark.parametrize(
    ("remaining", "reset", "expected"),
    [
        ("0", "12", 12.0),
        ("0", "0.5", 0.5),
        ("0", " 3 ", 3.0),
        ("5", "12", None),
        ("1", "12", None),
        ("0", "-4", None),
        ("0", "0", None),
        ("0", "soon", None),
        ("0", "", None),
        ("abc", "12", None),
        ("-1", "12", None),
    ],
)
def test_an_exhausted_quota_holds_the_key_until_the_reset(
    remaining: str, reset: str, expected: float | None
):
    found = parse_rate_limit_reset(
        headers(X_RateLimit_Remaining=remaining, X_RateLimit_Reset=reset), now=at_server_now
    )

    assert found == expected


def test_a_reset_given_as_a_unix_time_becomes_seconds_from_now():
    reset = str(int(SERVER_NOW.timestamp()) + 20)

    found = parse_rate_limit_reset(
        headers(X_RateLimit_Remaining="0", X_RateLimit_Reset=reset), now=at_server_now
    )

    assert found == pytest.approx(20.0)


def test_a_reset_given_as_unix_milliseconds_becomes_seconds_from_now():
    reset = str(int(SERVER_NOW.timestamp() * 1000) + 20_000)

    found = parse_rate_limit_reset(
        headers(X_RateLimit_Remaining="0", X_RateLimit_Reset=reset), now=at_server_now
    )

    assert found == pytest.approx(20.0)


def test_a_unix_time_reset_in_the_past_holds_nothing():
    reset = str(int(SERVER_NOW.timestamp()) - 20)

    found = parse_rate_limit_reset(
        headers(X_RateLimit_Remaining="0", X_RateLimit_Reset=reset), now=at_server_now
    )

    assert found is None


@pytest.mark.parametrize(
    "present",
    [{}, {"X-RateLimit-Remaining": "0"}, {"X-RateLimit-Reset": "12"}],
    ids=["neither", "no-reset", "no-remaining"],
)
def test_no_hold_without_both_quota_headers(present: dict[str, str]):
    assert parse_rate_limit_reset(CIMultiDict(present)) is None


@given(remaining=st.text(max_size=30), reset=st.text(max_size=30))
def test_parse_rate_limit_reset_never_raises(remaining: str, reset: str):
    found = parse_rate_limit_reset(
        {"X-RateLimit-Remaining": remaining, "X-RateLimit-Reset": reset}
    )

    assert found is None or found > 0.0
