"""When a new message reaches each status: a pure function of its environment and recipient.

Test keys answer the send with ``sent`` (simulated synchronous delivery), live keys with
``pending``; ``delivered`` and ``read`` follow after configurable delays counted from ``sent``.
A recipient in ``FAILURE_RECIPIENTS`` fails instead: at once for a test key (the send already
answers ``failed``), after the pending delay for a live key.
"""

from __future__ import annotations

import attrs

from chatmaid_async.sandbox._records import FAILURE_RECIPIENTS, Environment, failure_text

__all__ = ["DEFAULT_STATUS_DELAYS", "Lifecycle", "Schedule"]

# (delivered_after, read_after) in seconds after ``sent``; short so tests stay fast.
DEFAULT_STATUS_DELAYS: tuple[float | None, float | None] = (0.05, 0.1)
DEFAULT_PENDING_FOR = 0.02


@attrs.frozen(slots=True)
class Schedule:
    """Absolute transition times (Unix seconds) of one message; None means never."""

    sent_at: float | None
    delivered_at: float | None
    read_at: float | None
    failed_at: float | None = None
    error_code: str | None = None
    error_message: str | None = None


Delays = tuple[float | None, float | None]


def _check_delays(_: object, __: attrs.Attribute[Delays], value: Delays) -> None:
    delivered, read = value
    for delay in value:
        if delay is not None and delay < 0:
            raise ValueError(f"status delays must be >= 0 seconds or None, got {value!r}")
    if delivered is not None and read is not None and read < delivered:
        raise ValueError(f"read_after must not be before delivered_after, got {value!r}")


@attrs.frozen(slots=True)
class Lifecycle:
    """The timing rules: ``status_delays=(delivered_after, read_after)`` after ``sent``.

    A None delay means the message never gets there (``(0.05, None)``: never read;
    ``(None, 0.1)``: goes from sent straight to read). ``pending_for`` is how long a live
    message stays ``pending``.
    """

    status_delays: tuple[float | None, float | None] = attrs.field(
        default=DEFAULT_STATUS_DELAYS, validator=_check_delays
    )
    pending_for: float = attrs.field(default=DEFAULT_PENDING_FOR)

    @pending_for.validator
    def _check_pending(self, _: attrs.Attribute[float], value: float) -> None:
        if value < 0:
            raise ValueError(f"pending_for must be >= 0 seconds, got {value!r}")

    def schedule(self, environment: Environment, to: str, created_at: float) -> Schedule:
        """The transition times of a message created at ``created_at``."""
        start = created_at if environment == "test" else created_at + self.pending_for

        error_code = FAILURE_RECIPIENTS.get(to)
        if error_code is not None:
            return Schedule(None, None, None, start, error_code, failure_text(error_code))

        delivered_after, read_after = self.status_delays
        return Schedule(
            sent_at=start,
            delivered_at=None if delivered_after is None else start + delivered_after,
            read_at=None if read_after is None else start + read_after,
        )
