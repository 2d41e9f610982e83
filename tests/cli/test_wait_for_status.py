"""``wait_for_status`` against the sandbox: growing intervals, the rate limit, the timeout."""

from __future__ import annotations

import time

import pytest

from chatmaid_async import Chatmaid, RateLimit, StatusTimeoutError
from chatmaid_async.sandbox import Sandbox

from .conftest import PHONE


async def test_returns_the_message_once_it_reaches_a_wanted_status(client: Chatmaid) -> None:
    sent = await client.messages.send(PHONE, "+15557654321", content="hi")

    message = await client.messages.wait_for_status(
        sent.id, {"delivered"}, timeout=5, initial_interval=0.02
    )

    assert message.id == sent.id
    assert message.status == "delivered"


async def test_a_failed_message_ends_the_wait_by_default(client: Chatmaid) -> None:
    # +15550009002 is a sandbox recipient whose messages fail with INVALID_RECIPIENT.
    sent = await client.messages.send(PHONE, "+15550009002", content="hi")

    message = await client.messages.wait_for_status(sent.id, timeout=5, initial_interval=0.02)

    assert message.status == "failed"
    assert message.error_code == "INVALID_RECIPIENT"


async def test_polls_at_growing_intervals_then_times_out_with_the_last_status() -> None:
    # This sandbox never delivers, so every poll sees "sent".
    async with Sandbox(status_delays=(None, None)) as quiet:
        quiet.add_phone(PHONE)
        quiet_key = quiet.create_key()
        async with Chatmaid(quiet_key, base_url=quiet.base_url, rate_limit=None) as client:
            sent = await client.messages.send(PHONE, "+15557654321", content="hi")
            started = time.monotonic()

            with pytest.raises(StatusTimeoutError) as caught:
                await client.messages.wait_for_status(
                    sent.id, timeout=1.0, initial_interval=0.05, max_interval=0.4
                )

        elapsed = time.monotonic() - started
        polls = quiet.counters.requests_by_key[quiet_key] - 1

    assert caught.value.last_status == "sent"
    assert caught.value.message_id == sent.id
    assert 1.0 <= elapsed < 1.5
    # Polls at 0, .05, .15, .35, .75 and one last at the deadline: 6, where a fixed 50 ms
    # interval would have made 20.
    assert 4 <= polls <= 7


async def test_polling_stays_within_the_keys_rate_limit() -> None:
    limit = RateLimit(3, 1.0)
    async with Sandbox(status_delays=(None, None)) as sandbox:
        sandbox.add_phone(PHONE)
        key = sandbox.create_key(rate_limit=limit)
        async with Chatmaid(key, base_url=sandbox.base_url, rate_limit=limit) as client:
            sent = await client.messages.send(PHONE, "+15557654321", content="hi")
            with pytest.raises(StatusTimeoutError):
                await client.messages.wait_for_status(
                    sent.id, timeout=1.5, initial_interval=0.01, max_interval=0.02
                )

        assert sandbox.counters.rate_limited_total == 0
        assert sandbox.counters.max_in_window_by_key[key] <= limit.requests


async def test_the_timeout_holds_even_while_the_limiter_has_no_slot() -> None:
    limit = RateLimit(2, 5.0)
    async with Sandbox(status_delays=(None, None)) as sandbox:
        sandbox.add_phone(PHONE)
        key = sandbox.create_key(rate_limit=limit)
        async with Chatmaid(key, base_url=sandbox.base_url, rate_limit=limit) as client:
            sent = await client.messages.send(PHONE, "+15557654321", content="hi")
            await client.messages.get(sent.id)
            started = time.monotonic()

            # Both slots are used for the next 5 s: the first poll cannot even start.
            with pytest.raises(StatusTimeoutError) as caught:
                await client.messages.wait_for_status(sent.id, timeout=0.5)

        assert time.monotonic() - started < 1.0
        assert caught.value.last_status is None
