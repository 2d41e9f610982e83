"""Pacing through the client: the limiter, the transport and the server together (issue 3).

The limiter's own tests drive it with raw aiohttp; these go through ``Chatmaid`` so that every
attempt, retries included, is paced by the one per-key budget, as a user would see it.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import time

import pytest
from ratelimit_servers import Model, WindowServer

from chatmaid_async import Chatmaid, RateLimit, _limiter

_keys = itertools.count()
# A slot counts until its answer, so each window also costs a burst's slowest round trip:
# milliseconds here, tens of them on a loaded machine. One slot wasted per window (0.9) or a
# leaky bucket's spacing (0.84-0.86) still fails.
FULL_RATE = 0.95


def new_key() -> str:
    # Limiters are shared per key across the process: each test needs keys of its own.
    return f"sk_test_pacing{next(_keys):06d}{time.monotonic_ns() % 10**8:08d}"


async def send_many_at_once(client: Chatmaid, n: int) -> None:
    await asyncio.gather(
        *(client.messages.send("+15550100000", "+15550100001", content="x") for _ in range(n))
    )


@pytest.mark.parametrize("model", ["fixed", "sliding"])
async def test_five_times_the_limit_through_the_client_draws_no_429_at_full_rate(
    model: Model,
) -> None:
    key = new_key()

    async with (
        WindowServer(10, 1.0, model) as server,
        Chatmaid(key, base_url=server.url, rate_limit=RateLimit(10, 1.0)) as client,
    ):
        await send_many_at_once(client, 50)

    assert server.rejected == 0
    assert server.max_in_window(key) <= 10
    assert server.utilization(key) >= FULL_RATE


@pytest.mark.parametrize("model", ["fixed", "sliding"])
async def test_two_clients_on_one_key_share_its_budget_without_a_429(model: Model) -> None:
    key = new_key()
    rate = RateLimit(10, 1.0)

    async with (
        WindowServer(10, 1.0, model) as server,
        Chatmaid(key, base_url=server.url, rate_limit=rate) as first,
        Chatmaid(key, base_url=server.url, rate_limit=rate) as second,
    ):
        await asyncio.gather(send_many_at_once(first, 25), send_many_at_once(second, 25))

    assert server.rejected == 0
    assert server.max_in_window(key) <= 10
    assert server.utilization(key) >= FULL_RATE


async def test_f01_25_concurrent_sends_at_10_per_second_never_meet_a_429() -> None:
    key = new_key()

    async with (
        WindowServer(10, 1.0, "sliding") as server,
        Chatmaid(key, base_url=server.url, rate_limit=RateLimit(10, 1.0)) as client,
    ):
        await send_many_at_once(client, 25)

    arrivals = sorted(server.arrivals(key))
    assert server.rejected == 0
    assert all(arrivals[k] - arrivals[k - 10] >= 1.0 for k in range(10, 25))
    assert arrivals[-1] - arrivals[0] >= 2.0


def test_f01_the_default_limit_is_100_per_minute_per_key() -> None:
    client = Chatmaid(new_key())

    assert client.rate_limit == RateLimit(100, per=60.0)
    assert client.limiter is not None
    assert client.limiter.rate_limit == RateLimit(100, per=60.0)


async def test_f27_clients_per_request_share_a_key_and_another_key_runs_free() -> None:
    shared, other = new_key(), new_key()
    rate = RateLimit(10, 1.0)

    async with WindowServer(10, 1.0, "sliding") as server:

        async def per_request_client(key: str) -> None:
            # A FastAPI dependency style: a fresh client for each request, closed after it.
            async with Chatmaid(key, base_url=server.url, rate_limit=rate) as client:
                await client.messages.send("+15550100000", "+15550100001", content="x")

        started = time.monotonic()
        other_done = asyncio.gather(*(per_request_client(other) for _ in range(10)))
        await asyncio.gather(*(per_request_client(shared) for _ in range(30)), other_done)
        elapsed = time.monotonic() - started

    assert server.rejected == 0
    assert server.max_in_window(shared) <= 10
    assert server.max_in_window(other) == 10  # not slowed by the shared key's queue
    assert elapsed >= 2.0


async def test_f28_ten_thousand_keys_come_and_go_without_growing_the_registry() -> None:
    before = _limiter.registry_size()

    async with WindowServer(10**6, 0.05, "sliding") as server:
        for i in range(10_000):
            key = f"sk_test_{i:024d}"
            client = Chatmaid(key, base_url=server.url, rate_limit=RateLimit(100, 0.05))
            if i % 500 == 0:  # a request through every 500th keeps the test quick
                await client.account.get()
            await client.aclose()
        await asyncio.sleep(0.1)

    assert _limiter.registry_size() <= before + 5


def test_a_client_dropped_without_closing_gives_its_lease_back() -> None:
    key = new_key()
    client = Chatmaid(key, rate_limit=RateLimit(10, 0.01))
    limiter = client.limiter

    del client
    gc.collect()
    time.sleep(0.02)

    entry = _limiter._REGISTRY._entries.get(limiter._fingerprint)  # type: ignore[union-attr]
    assert entry is None or entry.leases == 0
