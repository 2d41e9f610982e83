"""Retry decisions: which failures are retried, and how long to wait before the next attempt.

Everything here is a pure function of a failure and a clock, tested without I/O. The session
layer feeds these to tenacity, and only once a first attempt has failed: a call that succeeds
at once never builds a retrier.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import attrs

from chatmaid_async.errors import (
    APIConnectionError,
    APIStatusError,
    InternalServerError,
    RateLimitError,
)

__all__ = [
    "RetryPolicy",
    "backoff_delay",
    "is_retryable",
    "parse_rate_limit_reset",
    "parse_retry_after",
    "retry_delay",
]

# An X-RateLimit-Reset above this is a Unix time, below it a number of seconds.
_EPOCH_THRESHOLD = 1_000_000_000
# Above this it is a Unix time in milliseconds.
_EPOCH_MS_THRESHOLD = 1_000_000_000_000
# The largest power of two a float holds: backoff stops doubling there.
_MAX_DOUBLINGS = 1023


@attrs.frozen(slots=True)
class RetryPolicy:
    """How a failed attempt is retried.

    ``max_retries`` attempts follow the first. Waits are exponential with full jitter: a
    random share of ``min(max_delay, base_delay * 2**(retry - 1))``. A server hint
    (Retry-After) replaces the backoff; a hint above ``max_retry_wait`` fails the call at once.
    """

    max_retries: int = attrs.field(default=2)
    base_delay: float = attrs.field(default=0.5)
    max_delay: float = attrs.field(default=8.0)
    max_retry_wait: float = attrs.field(default=60.0)

    @max_retries.validator
    def _check_retries(self, _: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"max_retries must be a whole number >= 0, got {value!r}")

    # A negative delay fails in sleep(); asyncio.sleep(nan) never returns.
    @base_delay.validator
    @max_delay.validator
    def _check_backoff(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not _is_seconds(value) or math.isinf(value):
            raise ValueError(
                f"{attribute.name} must be a finite number of seconds >= 0, got {value!r}"
            )

    @max_retry_wait.validator
    def _check_retry_wait(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not _is_seconds(value):
            raise ValueError(f"{attribute.name} must be seconds >= 0 or inf, got {value!r}")


def _is_seconds(value: object) -> bool:
    # NaN fails the comparison, so it is rejected with the negatives.
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value >= 0


def is_retryable(exc: BaseException, policy: RetryPolicy) -> bool:
    """True for failures worth another attempt: 429, 408, 5xx, connection faults, timeouts.

    Only the SDK's own ``Exception`` types qualify, so cancellation is never retried (F08).
    Every send carries an idempotency key, so retrying a send cannot create a second message.
    """
    if isinstance(exc, RateLimitError):
        return exc.retry_after is None or exc.retry_after <= policy.max_retry_wait
    if isinstance(exc, InternalServerError):
        return True
    if isinstance(exc, APIStatusError):
        return exc.status_code == HTTPStatus.REQUEST_TIMEOUT
    return isinstance(exc, APIConnectionError)


def retry_delay(
    exc: BaseException, retry_number: int, policy: RetryPolicy, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number ``retry_number`` (1 for the first retry)."""
    if isinstance(exc, RateLimitError) and exc.retry_after is not None:
        return exc.retry_after
    return backoff_delay(retry_number, policy, rng)


def backoff_delay(
    retry_number: int, policy: RetryPolicy, rng: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter."""
    # Past 2.0**1023 a float overflows; the cap has long applied by then.
    doublings = min(max(retry_number - 1, 0), _MAX_DOUBLINGS)
    ceiling = min(policy.max_delay, policy.base_delay * 2.0**doublings)
    return (rng or random).uniform(0.0, ceiling)


def parse_retry_after(
    headers: Mapping[str, str],
    body: object,
    now: Callable[[], datetime] | None = None,
) -> float | None:
    """The server's wait hint in seconds, or None when absent or unusable (F02, F03).

    The body's ``retryAfter`` wins (it is the documented one), then the ``Retry-After``
    header as seconds or as an HTTP date measured against the response's ``Date``. Negative,
    non-finite, garbage and past values give None, so the caller falls back to backoff.
    """
    if isinstance(body, Mapping):
        hinted = _seconds(body.get("retryAfter"))
        if hinted is not None:
            return hinted

    header = headers.get("Retry-After")
    if header is None:
        return None
    seconds = _seconds(header)
    if seconds is not None:
        return seconds
    return _seconds_until_date(header, headers.get("Date"), now)


def parse_rate_limit_reset(
    headers: Mapping[str, str], now: Callable[[], datetime] | None = None
) -> float | None:
    """Seconds to hold the key when ``X-RateLimit-Remaining`` is 0, else None.

    ``X-RateLimit-Reset`` may be seconds from now or a Unix time in seconds or milliseconds.
    """
    remaining = headers.get("X-RateLimit-Remaining")
    if remaining is None or _seconds(remaining) != 0:
        return None
    reset = _seconds(headers.get("X-RateLimit-Reset"))
    if reset is None:
        return None
    if reset > _EPOCH_MS_THRESHOLD:
        reset = reset / 1000 - _utc_now(now).timestamp()
    elif reset > _EPOCH_THRESHOLD:
        reset -= _utc_now(now).timestamp()
    return reset if reset > 0 else None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number


def _seconds_until_date(
    header: str, date_header: str | None, now: Callable[[], datetime] | None
) -> float | None:
    retry_at = _http_date(header)
    if retry_at is None:
        return None
    reference = _http_date(date_header) if date_header else None
    delay = (retry_at - (reference or _utc_now(now))).total_seconds()
    return delay if delay >= 0 else None


def _http_date(value: str) -> datetime | None:
    # A year, hour or zone too large for datetime raises OverflowError, not ValueError (F02).
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def _utc_now(now: Callable[[], datetime] | None) -> datetime:
    return now() if now is not None else datetime.now(timezone.utc)
