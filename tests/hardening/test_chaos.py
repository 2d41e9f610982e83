"""Nothing lost, nothing sent twice: batches through a sandbox that fails on purpose.

The sandbox injects 5xx answers, HTML 502 pages from a "proxy", connections dropped after the
send was stored, dropped before it was, and answers so slow the client gives up. Every item must
still end with exactly one result and exactly one message on the server, because every retry
reuses the item's idempotency key. Pacing is off in the big run, so it is bound by the faults
and the retries, not by a rate limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence

import pytest

from chatmaid_async import Chatmaid, RateLimit, RetryPolicy, SendRequest, SendResult
from chatmaid_async.batch import idempotency_key_for
from chatmaid_async.sandbox import Sandbox

from .conftest import RECIPIENT

SEND = "/v1/messages/send"
CHAOS_ITEMS = 10_000
# Generous: the run takes about 30 s here; a hang or a retry storm takes far longer.
CHAOS_BOUND = 90.0
SMALL_BOUND = 30.0
# 17% of attempts fail; with twelve retries an item is lost with odds 0.17**13, about 1e-10.
CHAOS_RETRY = RetryPolicy(max_retries=12, base_delay=0.01, max_delay=0.1)


def batch(phone: str, count: int, prefix: str = "item") -> list[SendRequest]:
    """``count`` sends whose content names their id, so a cross-wired result shows."""
    return [
        SendRequest(id=f"{prefix}-{n}", from_phone_id=phone, to=RECIPIENT, content=f"body {n}")
        for n in range(count)
    ]


async def send_all(
    client: Chatmaid, items: Sequence[SendRequest], concurrency: int = 64
) -> list[SendResult]:
    return [result async for result in client.messages.send_many(items, concurrency=concurrency)]


def assert_exactly_once(
    sandbox: Sandbox, items: Sequence[SendRequest], results: Sequence[SendResult]
) -> None:
    """One ok result per input id, one stored message per input id, each the right one."""
    ids = [item.id for item in items]
    assert len(results) == len(ids)
    assert Counter(result.id for result in results) == Counter(ids)
    failed = [(result.id, result.error) for result in results if not result.ok]
    assert failed == []

    id_of_key = {idempotency_key_for(item_id): item_id for item_id in ids}
    stored = Counter(id_of_key.get(m.idempotency_key) for m in sandbox.messages.values())
    assert stored == Counter(ids), "a message is missing, doubled, or not from this batch"

    content_of = {item.id: item.content for item in items}
    for result in results:
        assert result.message is not None
        assert result.message.idempotency_key == idempotency_key_for(result.id)
        message = sandbox.messages[result.message.id]
        assert id_of_key[message.idempotency_key] == result.id
        assert message.content == content_of[result.id]


def retries_logged(records: Sequence[logging.LogRecord]) -> int:
    return sum(
        1
        for record in records
        if record.name == "chatmaid_async" and record.getMessage().startswith("retrying ")
    )


@pytest.mark.slow
async def test_ten_thousand_sends_through_5xx_drops_and_html_502s_each_arrive_exactly_once(
    sandbox: Sandbox, phone: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.set_faults(
        latency=(0.0, 0.02),
        error_503=0.10,
        drop_after=0.05,
        html_502=0.02,
        paths=[SEND],
        seed=20240601,
    )
    items = batch(phone, CHAOS_ITEMS)

    caplog.set_level(logging.WARNING, logger="chatmaid_async")
    async with Chatmaid(
        key, base_url=sandbox.base_url, rate_limit=None, retry=CHAOS_RETRY
    ) as client:
        results = await asyncio.wait_for(send_all(client, items), CHAOS_BOUND)

    assert_exactly_once(sandbox, items, results)
    counters = sandbox.counters
    faults = counters.faults_by_kind
    # The faults really happened, at about the odds asked for (each kind well over 100 times).
    assert faults["error_503"] > 700
    assert faults["drop_after"] > 300
    assert faults["html_502"] > 100
    assert counters.messages_created == CHAOS_ITEMS
    # A dropped answer is the only way a send reaches the server twice; each replay was
    # answered with the stored message instead of a new one.
    assert counters.duplicates_prevented == faults["drop_after"]
    # Exactly one retry per failed attempt: no item gave up, none retried a success.
    assert counters.requests_total == CHAOS_ITEMS + counters.faults_injected
    assert retries_logged(caplog.records) == counters.faults_injected


async def test_every_fault_kind_and_timeouts_after_the_send_was_stored_lose_nothing(
    sandbox: Sandbox, phone: str, key: str
) -> None:
    # A slow body outlasts the client's timeout: the server stored the send, the client saw a
    # timeout and retried with the same key.
    sandbox.set_faults(
        latency=(0.0, 0.01),
        error_503=0.05,
        html_502=0.03,
        drop_before=0.05,
        drop_after=0.05,
        slow_body=0.03,
        slow_body_seconds=2.0,
        paths=[SEND],
        seed=7,
    )
    items = batch(phone, 1000)
    retry = RetryPolicy(max_retries=12, base_delay=0.01, max_delay=0.05)

    # Few sends in flight, so a clean answer comes far within the timeout even on a busy host.
    async with Chatmaid(
        key, base_url=sandbox.base_url, rate_limit=None, retry=retry, timeout=0.5
    ) as client:
        results = await asyncio.wait_for(send_all(client, items, concurrency=16), SMALL_BOUND)

    assert_exactly_once(sandbox, items, results)
    faults = sandbox.counters.faults_by_kind
    assert set(faults) == {"error_503", "html_502", "drop_before", "drop_after", "slow_body"}
    # Every answer the client never read (dropped, or too slow) was replayed, not resent.
    assert sandbox.counters.duplicates_prevented >= faults["drop_after"] + faults["slow_body"]
    assert sandbox.counters.messages_created == len(items)


async def test_rerunning_a_batch_through_faults_returns_the_messages_already_sent(
    sandbox: Sandbox, phone: str, key: str
) -> None:
    items = batch(phone, 500)
    retry = RetryPolicy(max_retries=12, base_delay=0.01, max_delay=0.05)
    sandbox.set_faults(error_503=0.1, drop_after=0.1, html_502=0.05, paths=[SEND], seed=11)

    async with Chatmaid(key, base_url=sandbox.base_url, rate_limit=None, retry=retry) as client:
        first = await asyncio.wait_for(send_all(client, items), SMALL_BOUND)
        created = sandbox.counters.messages_created
        again = await asyncio.wait_for(send_all(client, items), SMALL_BOUND)

    assert_exactly_once(sandbox, items, again)
    assert created == len(items)
    assert sandbox.counters.messages_created == len(items)
    first_ids = {result.id: result.message.id for result in first if result.message}
    again_ids = {result.id: result.message.id for result in again if result.message}
    assert again_ids == first_ids


async def test_paced_sends_through_faults_never_exceed_the_keys_limit(
    sandbox: Sandbox, phone: str
) -> None:
    limit = RateLimit(50, 0.5)
    key = sandbox.create_key(rate_limit=limit)
    sandbox.set_faults(
        latency=(0.0, 0.01), error_503=0.1, drop_after=0.05, html_502=0.02, paths=[SEND], seed=3
    )
    items = batch(phone, 200)
    retry = RetryPolicy(max_retries=12, base_delay=0.01, max_delay=0.05)

    async with Chatmaid(key, base_url=sandbox.base_url, rate_limit=limit, retry=retry) as client:
        results = await asyncio.wait_for(send_all(client, items), SMALL_BOUND)

    assert_exactly_once(sandbox, items, results)
    assert sandbox.counters.rate_limited_total == 0
    assert sandbox.counters.max_in_window_by_key[key] <= limit.requests
