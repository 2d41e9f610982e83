"""What the sandbox counts, for tests and benchmarks to read.

Dicts are keyed by the full API key string, as :meth:`Sandbox.create_key` returned it, so a
test can look its own key up; ``repr`` shows only redacted keys.
"""

from __future__ import annotations

import attrs

from chatmaid_async._limits import redact_key

__all__ = ["Counters"]


def _bump(table: dict[str, int], key: str) -> None:
    table[key] = table.get(key, 0) + 1


@attrs.define(repr=False)
class Counters:
    """Running totals since the sandbox started or since :meth:`Sandbox.reset_counters`.

    - ``requests_total``: every HTTP request received, with or without a valid key.
    - ``requests_by_key``: requests that carried a known key, including 429s and faulted ones.
    - ``rate_limited_total`` / ``rate_limited_by_key``: 429 answers issued.
    - ``validation_errors_total`` / ``validation_errors_by_key``: 400 answers issued.
    - ``max_in_window_by_key``: for keys with a limit, the most accepted requests seen in any
      trailing window of the key's ``per`` seconds.
    - ``messages_created``: new outbound messages; ``duplicates_prevented``: sends answered
      with an existing message because the idempotency key was reused.
    - ``faults_injected`` / ``faults_by_kind``: injected faults (latency alone is not counted).
    - ``webhook_attempts``, ``webhooks_delivered`` (2xx), ``webhook_attempts_failed``,
      ``webhooks_given_up`` (failed after the last retry).
    """

    requests_total: int = 0
    requests_by_key: dict[str, int] = attrs.Factory(dict)
    rate_limited_total: int = 0
    rate_limited_by_key: dict[str, int] = attrs.Factory(dict)
    validation_errors_total: int = 0
    validation_errors_by_key: dict[str, int] = attrs.Factory(dict)
    max_in_window_by_key: dict[str, int] = attrs.Factory(dict)
    messages_created: int = 0
    duplicates_prevented: int = 0
    faults_injected: int = 0
    faults_by_kind: dict[str, int] = attrs.Factory(dict)
    webhook_attempts: int = 0
    webhooks_delivered: int = 0
    webhook_attempts_failed: int = 0
    webhooks_given_up: int = 0

    def count_request(self, key: str | None) -> None:
        """One request arrived; ``key`` is the known key it carried, if any."""
        self.requests_total += 1
        if key is not None:
            _bump(self.requests_by_key, key)

    def count_rate_limited(self, key: str) -> None:
        """A 429 was issued to ``key``."""
        self.rate_limited_total += 1
        _bump(self.rate_limited_by_key, key)

    def count_validation_error(self, key: str | None) -> None:
        """A 400 was issued (to ``key`` when the request carried a known one)."""
        self.validation_errors_total += 1
        if key is not None:
            _bump(self.validation_errors_by_key, key)

    def note_in_window(self, key: str, in_window: int) -> None:
        """Keep the largest trailing-window count seen for ``key``."""
        if in_window > self.max_in_window_by_key.get(key, 0):
            self.max_in_window_by_key[key] = in_window

    def count_fault(self, kind: str) -> None:
        """A fault of ``kind`` was injected."""
        self.faults_injected += 1
        _bump(self.faults_by_kind, kind)

    def reset(self) -> None:
        """Zero everything in place, so references held by tests stay live."""
        fresh = Counters()
        for field in attrs.fields(Counters):
            setattr(self, field.name, getattr(fresh, field.name))

    def __repr__(self) -> str:
        by_key = {redact_key(key): count for key, count in self.requests_by_key.items()}
        return (
            f"<Counters requests={self.requests_total} by_key={by_key} "
            f"429s={self.rate_limited_total} 400s={self.validation_errors_total} "
            f"messages={self.messages_created} duplicates={self.duplicates_prevented} "
            f"faults={self.faults_injected} webhooks={self.webhooks_delivered}>"
        )
