"""The counters tests and benchmarks read."""

from __future__ import annotations

import asyncio
import time

from chatmaid_async import RateLimit
from chatmaid_async.sandbox import Sandbox

from ._support import RECIPIENT, Api


async def test_requests_are_counted_per_key_and_in_total(
    api: Api, sandbox: Sandbox, key: str
) -> None:
    other = sandbox.create_key()

    await api.get("/v1/account", key)
    await api.get("/v1/account", key)
    await api.get("/v1/account", other)
    await api.get("/v1/account", "sk_test_unknown")
    await api.get("/v1/nowhere")

    counters = sandbox.counters
    assert counters.requests_total == 5
    assert counters.requests_by_key == {key: 2, other: 1}


async def test_messages_duplicates_and_validation_errors(
    api: Api, sandbox: Sandbox, key: str, phone: str
) -> None:
    for _ in range(3):
        await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="x", idempotencyKey="same")
    await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="y")
    await api.send(key, fromPhoneId=phone, to="nope", content="z")
    await api.get("/v1/messages", "sk_test_unknown")

    counters = sandbox.counters
    assert counters.messages_created == 2
    assert counters.duplicates_prevented == 2
    assert counters.validation_errors_by_key == {key: 1}
    assert counters.validation_errors_total == 1


async def test_max_in_window_tracks_accepted_arrivals_only(api: Api, sandbox: Sandbox) -> None:
    key = sandbox.create_key(rate_limit=RateLimit(4, per=0.3))

    await asyncio.gather(*(api.get("/v1/account", key) for _ in range(7)))
    await asyncio.sleep(0.31)
    await asyncio.gather(*(api.get("/v1/account", key) for _ in range(2)))

    assert sandbox.counters.max_in_window_by_key == {key: 4}
    assert sandbox.counters.rate_limited_by_key == {key: 3}


async def test_reset_counters_zeroes_in_place(api: Api, sandbox: Sandbox, key: str) -> None:
    counters = sandbox.counters
    await api.get("/v1/account", key)

    sandbox.reset_counters()
    await api.get("/v1/account", key)

    assert counters is sandbox.counters
    assert counters.requests_total == 1
    assert counters.requests_by_key == {key: 1}


async def test_many_messages_keep_requests_fast(api: Api, sandbox: Sandbox, key: str) -> None:
    # Per-request work must not grow with the number of stored messages.
    phone = sandbox.add_phone("+15550100001")
    sends = [
        api.send(key, fromPhoneId=phone, to=RECIPIENT, content=str(n), idempotencyKey=f"k{n}")
        for n in range(2000)
    ]
    started = time.monotonic()
    results = await asyncio.gather(*sends)
    elapsed = time.monotonic() - started

    first_page_started = time.monotonic()
    _, page = await api.get("/v1/messages", key, limit="100")
    first_page = time.monotonic() - first_page_started

    assert {status for status, _ in results} == {201}
    assert sandbox.counters.messages_created == 2000
    assert page["data"]["pagination"]["total"] == 2000
    assert elapsed < 10
    assert first_page < 0.5
