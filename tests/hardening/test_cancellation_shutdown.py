"""Stopping a batch, or closing the client under it, leaves nothing behind and loses nothing.

After a ``send_many`` of 1,000 items is cancelled at a random point (after a random number of
results, after a random delay, or by ``break``) and the client is closed: no task is left, no
connection is open on either side, the key's limiter has every slot back, and nothing warned
(the suite runs with warnings as errors; one case also runs under ``python -X dev -W error``).
Closing the client in the middle of a batch still gives every item exactly one result, and a
rerun sends each missing item exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from chatmaid_async import Chatmaid, RateLimit, RetryPolicy, SendRequest, SendResult
from chatmaid_async.batch import idempotency_key_for
from chatmaid_async.errors import ChatmaidError
from chatmaid_async.sandbox import Sandbox

from .conftest import RECIPIENT

ITEMS = 1000
SEND = "/v1/messages/send"
# Wide enough never to pace these batches, short enough to wait out between checks.
LIMIT = RateLimit(1000, 0.3)
SETTLE = 3.0


def batch(phone: str, count: int = ITEMS) -> list[SendRequest]:
    return [
        SendRequest(id=f"item-{n}", from_phone_id=phone, to=RECIPIENT, content=f"body {n}")
        for n in range(count)
    ]


async def settled(condition: Callable[[], bool], within: float = SETTLE) -> bool:
    """Whether ``condition`` holds, polling for up to ``within`` seconds."""
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    # Polling: a closed socket or a finished task sets no event this test could wait on.
    while not condition() and loop.time() < until:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    return condition()


def acquired_connections(client: Chatmaid) -> int:
    # aiohttp keeps the connections handed to requests in the connector's _acquired set.
    sessions = client._transport._sessions.values()
    return sum(len(session.connector._acquired) for session in sessions if session.connector)


def server_connections(sandbox: Sandbox) -> int:
    assert sandbox._runner is not None
    return len(sandbox._runner.server.connections)


def stray_tasks(baseline: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    return asyncio.all_tasks() - baseline - {asyncio.current_task()}  # type: ignore[operator]


async def consume(
    client: Chatmaid,
    items: Sequence[SendRequest],
    results: list[SendResult],
    reached: asyncio.Event,
    signal_at: int,
    *,
    break_there: bool = False,
) -> None:
    """Collect results; set ``reached`` at ``signal_at`` of them, and ``break`` there if asked."""
    async for result in client.messages.send_many(items, concurrency=32):
        results.append(result)
        if len(results) == signal_at:
            reached.set()
            if break_there:
                break


@pytest.fixture
def slow_sends(sandbox: Sandbox) -> None:
    """A few milliseconds per send, so every cancellation finds sends in flight."""
    sandbox.set_faults(latency=(0.001, 0.01), paths=[SEND])


@pytest.mark.parametrize("seed", range(6))
async def test_cancelling_a_batch_at_a_random_point_leaves_no_task_connection_or_slot(
    sandbox: Sandbox,
    key: str,
    phone: str,
    slow_sends: None,
    seed: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = random.Random(seed)
    how = ("after results", "after a delay", "by break")[seed % 3]
    items = batch(phone)
    baseline = asyncio.all_tasks()
    results: list[SendResult] = []
    reached = asyncio.Event()
    stop_after = rng.randrange(1, 400)

    client = Chatmaid(key, base_url=sandbox.base_url, rate_limit=LIMIT)
    limiter = client.limiter
    assert limiter is not None
    consumer = asyncio.create_task(
        consume(client, items, results, reached, stop_after, break_there=how == "by break")
    )
    if how == "after a delay":
        await asyncio.sleep(rng.uniform(0.02, 0.3))
    else:
        await reached.wait()
    if how != "by break":
        consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)

    # Cancelled mid-flight: every send in flight was cancelled, its connection and slot freed.
    assert await settled(lambda: acquired_connections(client) == 0)
    assert await settled(lambda: limiter.state().in_flight == 0)
    assert limiter.state().waiters == 0
    assert len(results) < ITEMS
    assert len({result.id for result in results}) == len(results)
    assert all(result.ok for result in results)

    await client.aclose()
    assert await settled(lambda: not stray_tasks(baseline)), stray_tasks(baseline)
    assert await settled(lambda: server_connections(sandbox) == 0)
    assert client._transport._sessions == {}
    # Neither side took the hang-ups for a failure.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []

    # Once the window has passed, a new client on the key gets the whole budget at once.
    await asyncio.sleep(LIMIT.per)
    async with Chatmaid(key, base_url=sandbox.base_url, rate_limit=LIMIT) as fresh:
        fresh_limiter = fresh.limiter
        assert fresh_limiter is not None
        permits = [
            await asyncio.wait_for(fresh_limiter.acquire(), 0.5) for _ in range(LIMIT.requests)
        ]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(fresh_limiter.acquire(), 0.05)
        for permit in permits:
            await permit.release(sent=False)


async def test_cancelling_a_batch_queued_on_the_limiter_takes_no_slot(
    sandbox: Sandbox, phone: str
) -> None:
    limit = RateLimit(20, 30.0)
    key = sandbox.create_key(rate_limit=limit)
    results: list[SendResult] = []
    reached = asyncio.Event()

    async with Chatmaid(key, base_url=sandbox.base_url, rate_limit=limit) as client:
        consumer = asyncio.create_task(consume(client, batch(phone), results, reached, 20))
        await reached.wait()
        # The other twelve of the 32 in flight now queue for a slot that frees in 30 s.
        assert await settled(lambda: client.limiter.state().waiters > 0)  # type: ignore[union-attr]
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        state = client.limiter.state()  # type: ignore[union-attr]

    assert len(results) == 20
    assert state.waiters == 0
    assert state.in_flight == 0
    # Exactly the twenty sent count against the window: the cancelled waits took nothing.
    assert state.in_window == 20 == sandbox.counters.requests_total


async def close_before_the_end(client: Chatmaid, items: Sequence[SendRequest]) -> list[SendResult]:
    """Run the batch, closing the client once 100 results are in."""
    results: list[SendResult] = []
    async for result in client.messages.send_many(items, concurrency=32):
        results.append(result)
        if len(results) == 100:
            await client.aclose()
    return results


async def close_leftover_sessions(client: Chatmaid) -> None:
    # Keeps a failing run from leaking a session whose warning would fail a later test.
    for session in client._transport._sessions.values():
        await session.close()


async def test_closing_the_client_during_a_batch_gives_every_item_one_result(
    sandbox: Sandbox, key: str, phone: str, slow_sends: None
) -> None:
    items = batch(phone)
    client = Chatmaid(key, base_url=sandbox.base_url, rate_limit=LIMIT)
    try:
        results = await close_before_the_end(client, items)
    finally:
        await close_leftover_sessions(client)

    assert sorted(result.id for result in results) == sorted(item.id for item in items)
    failed = [result.error for result in results if not result.ok]
    assert failed
    assert all(isinstance(error, ChatmaidError) for error in failed)

    # The rerun sends exactly the items that never reached the server, each once.
    async with Chatmaid(key, base_url=sandbox.base_url, rate_limit=LIMIT) as again:
        rerun = [result async for result in again.messages.send_many(items, concurrency=32)]

    assert all(result.ok for result in rerun)
    assert sandbox.counters.messages_created == ITEMS
    keys = sorted(message.idempotency_key or "" for message in sandbox.messages.values())
    assert keys == sorted(idempotency_key_for(item.id) for item in items)


async def test_closing_the_client_during_a_batch_sends_nothing_more_and_leaves_no_connection(
    sandbox: Sandbox, key: str, phone: str, slow_sends: None
) -> None:
    client = Chatmaid(key, base_url=sandbox.base_url, rate_limit=LIMIT)
    try:
        results = await close_before_the_end(client, batch(phone))
        sessions_after_close = len(client._transport._sessions)
    finally:
        await close_leftover_sessions(client)

    # The sends cut off by the close fail; none goes out again on a new session.
    assert not all(result.ok for result in results)
    assert sessions_after_close == 0
    assert await settled(lambda: server_connections(sandbox) == 0)


async def test_a_call_waiting_to_retry_when_the_client_closes_sends_nothing_more(
    sandbox: Sandbox, key: str, phone: str
) -> None:
    sandbox.set_faults(error_503=1.0, paths=[SEND])
    retry = RetryPolicy(max_retries=3, base_delay=0.3, max_delay=0.3)
    client = Chatmaid(key, base_url=sandbox.base_url, rate_limit=None, retry=retry)
    send = asyncio.create_task(client.messages.send(phone, RECIPIENT, "hi"))
    assert await settled(lambda: sandbox.counters.requests_total >= 1)

    try:
        await client.aclose()
        sandbox.clear_faults()
        await asyncio.gather(send, return_exceptions=True)
        sessions_after_close = len(client._transport._sessions)
    finally:
        await close_leftover_sessions(client)

    assert sessions_after_close == 0
    assert sandbox.counters.requests_total == 1
    assert sandbox.counters.messages_created == 0


DEV_MODE_SCRIPT = """
    import asyncio

    from chatmaid_async import Chatmaid, RateLimit, SendRequest
    from chatmaid_async.sandbox import Sandbox


    async def main() -> None:
        # Dev mode logs callbacks slower than 0.1 s; on a busy host that is noise, not a fault.
        asyncio.get_running_loop().slow_callback_duration = 10.0
        async with Sandbox(status_delays=(None, None)) as sandbox:
            key = sandbox.create_key()
            phone = sandbox.add_phone("+15550100000")
            sandbox.set_faults(latency=(0.001, 0.005), paths=["/v1/messages/send"])
            items = [
                SendRequest(id=str(n), from_phone_id=phone, to="+15557654321", content="hi")
                for n in range(1000)
            ]
            seen = 0
            limit = RateLimit(1000, 1.0)
            async with Chatmaid(key, base_url=sandbox.base_url, rate_limit=limit) as c:

                async def consume() -> None:
                    nonlocal seen
                    async for _ in c.messages.send_many(items):
                        seen += 1

                task = asyncio.create_task(consume())
                while seen < 200:
                    await asyncio.sleep(0.005)
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
            print("stopped after", seen)
        assert 200 <= seen < 1000, seen


    asyncio.run(main())
"""


def test_a_cancelled_batch_is_silent_under_python_dev_mode_with_warnings_as_errors(
    tmp_path: Path,
) -> None:
    script = tmp_path / "cancel_batch.py"
    script.write_text(textwrap.dedent(DEV_MODE_SCRIPT), encoding="utf-8")

    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("stopped after")
    assert done.stderr == ""
