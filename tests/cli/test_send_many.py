"""``send_many`` against the sandbox: lazy input, one result per item, idempotent reruns."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatmaid_async import Chatmaid, SendRequest, SendResult, ValidationError
from chatmaid_async.batch import idempotency_key_for
from chatmaid_async.sandbox import Sandbox

from .conftest import FAST_LIMIT, PHONE, request


class CountingSource:
    """A lazy input that remembers how far it has been read."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.consumed = 0

    def __iter__(self) -> Iterator[SendRequest]:
        for index in range(self.count):
            self.consumed += 1
            yield request(f"item-{index}")


def send_tasks() -> list[asyncio.Task[object]]:
    """The per-item send tasks of send_many still alive in this loop."""
    return [t for t in asyncio.all_tasks() if "_send_one" in repr(t.get_coro())]


async def collect(client: Chatmaid, items: object, **kwargs: object) -> list[SendResult]:
    return [result async for result in client.messages.send_many(items, **kwargs)]  # type: ignore[arg-type]


async def test_every_item_gets_exactly_one_result_with_its_own_id(
    client: Chatmaid, sandbox: Sandbox
) -> None:
    items = [request(f"id-{n}") for n in range(75)]

    results = await collect(client, items, concurrency=8)

    assert sorted(r.id for r in results) == sorted(i.id for i in items)
    assert all(r.ok and r.message is not None for r in results)
    assert sandbox.counters.messages_created == 75


async def test_input_is_read_lazily_while_results_are_yielded(client: Chatmaid) -> None:
    source = CountingSource(200)
    concurrency = 4
    seen = 0

    async for _ in client.messages.send_many(source, concurrency=concurrency):
        seen += 1
        # Never more than the sends in flight plus the one being handed over.
        assert source.consumed <= seen + concurrency
    assert seen == source.consumed == 200


async def test_an_async_iterable_is_accepted(client: Chatmaid) -> None:
    async def items() -> AsyncIterator[SendRequest]:
        for n in range(10):
            await asyncio.sleep(0)
            yield request(f"a-{n}")

    results = await collect(client, items())

    assert {r.id for r in results} == {f"a-{n}" for n in range(10)}


async def test_running_the_same_batch_twice_never_sends_a_message_twice(
    client: Chatmaid, sandbox: Sandbox
) -> None:
    items = [request(f"order-{n}") for n in range(40)]

    first = {r.id: r.message for r in await collect(client, items)}
    second = {r.id: r.message for r in await collect(client, items)}

    assert sandbox.counters.messages_created == 40
    assert sandbox.counters.duplicates_prevented == 40
    assert {i: m.id for i, m in first.items() if m} == {i: m.id for i, m in second.items() if m}
    assert first["order-7"] is not None
    assert first["order-7"].idempotency_key == idempotency_key_for("order-7")


async def test_a_namespace_separates_two_batches_with_the_same_ids(
    client: Chatmaid, sandbox: Sandbox
) -> None:
    items = [request(f"n-{n}") for n in range(5)]

    await collect(client, items, namespace="monday")
    await collect(client, items, namespace="tuesday")

    assert sandbox.counters.messages_created == 10


@pytest.mark.parametrize(
    ("item_id", "namespace"),
    [("row-\ud83d", ""), ("row-1", "\udc00-run"), ("\ud83d", "\ud83d")],
    ids=["id", "namespace", "both"],
)
async def test_a_lone_surrogate_in_an_id_or_namespace_sends_like_any_other_text(
    client: Chatmaid, sandbox: Sandbox, item_id: str, namespace: str
) -> None:
    # json.loads reads "\ud83d" in a JSON Lines file as a lone surrogate: text JSON and the
    # API's JavaScript both allow, so the item is sent under a key of its own, twice or not.
    items = [request(item_id), request("other")]

    first = await collect(client, items, namespace=namespace)
    again = await collect(client, items, namespace=namespace)

    assert [r.ok for r in first + again] == [True] * 4
    assert {r.message.idempotency_key for r in first if r.message} == {
        idempotency_key_for(item_id, namespace),
        idempotency_key_for("other", namespace),
    }
    assert sandbox.counters.messages_created == 2


async def test_invalid_items_fail_with_a_validation_error_and_are_never_sent(
    client: Chatmaid, sandbox: Sandbox, key: str
) -> None:
    items = [
        request("good"),
        request("no-plus", to="15557654321"),
        request("letters", to="+1555ABC4321"),
        request("empty", content=None),
        request("too-long", content="x" * 5000),
        {"id": "no-sender", "to": "+15557654321", "content": "hi"},
    ]

    results = {r.id: r for r in await collect(client, items)}

    assert set(results) == {"good", "no-plus", "letters", "empty", "too-long", "no-sender"}
    assert results["good"].ok
    for name in ("no-plus", "letters", "empty", "too-long", "no-sender"):
        assert isinstance(results[name].error, ValidationError), name
    assert sandbox.counters.requests_by_key[key] == 1
    assert sandbox.counters.validation_errors_total == 0


async def test_a_none_item_gets_a_failure_and_does_not_end_the_batch(client: Chatmaid) -> None:
    # anext(source, None) used to read a None item as the end of the input.
    items = [request("before"), None, request("after")]

    results = await collect(client, items)

    assert sorted(r.id for r in results) == ["None", "after", "before"]
    failed = [r for r in results if not r.ok]
    assert len(failed) == 1
    assert isinstance(failed[0].error, ValidationError)


async def test_closing_the_iteration_cancels_the_sends_in_flight(client: Chatmaid) -> None:
    results = client.messages.send_many(CountingSource(1000), concurrency=16)

    async with contextlib.aclosing(results):  # type: ignore[type-var]
        async for _ in results:
            break

    assert send_tasks() == []


async def test_cancelling_the_consumer_stops_cleanly(client: Chatmaid, sandbox: Sandbox) -> None:
    source = CountingSource(10_000)
    got: list[SendResult] = []
    twenty_in = asyncio.Event()

    async def consume() -> None:
        async for result in client.messages.send_many(source, concurrency=16):
            got.append(result)
            if len(got) == 20:
                twenty_in.set()

    task = asyncio.ensure_future(consume())
    await twenty_in.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert send_tasks() == []
    # Reading stopped with the sends: at most one round of sends past what was yielded.
    assert source.consumed <= len(got) + 16 + 1
    created = sandbox.counters.messages_created
    await asyncio.sleep(0.05)
    assert sandbox.counters.messages_created == created


async def test_all_sends_share_the_one_limiter_of_the_key(sandbox: Sandbox) -> None:
    key = sandbox.create_key(rate_limit=FAST_LIMIT)
    first = Chatmaid(key, base_url=sandbox.base_url, rate_limit=FAST_LIMIT)
    second = Chatmaid(key, base_url=sandbox.base_url, rate_limit=FAST_LIMIT)
    started = time.monotonic()

    async with first, second:
        assert first.limiter is second.limiter
        batches = await asyncio.gather(
            collect(first, [request(f"one-{n}") for n in range(40)], concurrency=32),
            collect(second, [request(f"two-{n}") for n in range(40)], concurrency=32),
        )

    # 80 sends at 50 per second: a burst of 50, then the rest once the window slides.
    assert time.monotonic() - started >= FAST_LIMIT.per
    assert all(r.ok for results in batches for r in results)
    assert sandbox.counters.rate_limited_total == 0
    assert sandbox.counters.max_in_window_by_key[key] <= FAST_LIMIT.requests


@given(
    items=st.lists(
        st.tuples(st.text(max_size=6), st.booleans()),
        max_size=30,
    ),
    concurrency=st.integers(min_value=1, max_value=8),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_ids_of_the_results_are_the_ids_of_the_input(
    items: list[tuple[str, bool]], concurrency: int
) -> None:
    requests = [
        request(item_id, to="+15557654321" if valid else "not-a-number")
        for item_id, valid in items
    ]

    async def run() -> list[SendResult]:
        async with Sandbox() as sandbox:
            key = sandbox.create_key()
            sandbox.add_phone(PHONE, connected=True)
            async with Chatmaid(key, base_url=sandbox.base_url, rate_limit=None) as client:
                return await collect(client, iter(requests), concurrency=concurrency)

    results = asyncio.run(run())

    assert len(results) == len(requests)
    assert {r.id for r in results} == {r.id for r in requests}
    assert sorted(r.id for r in results) == sorted(r.id for r in requests)


async def test_items_whose_id_is_not_a_string_are_refused_not_sent(
    sandbox: Sandbox, client: Chatmaid
) -> None:
    phone = PHONE
    items = [
        {"id": 7, "from_phone_id": phone, "to": "+15557654321", "content": "a"},
        {"id": "7", "from_phone_id": phone, "to": "+15557654321", "content": "b"},
        {"from_phone_id": phone, "to": "+15557654321", "content": "c"},
    ]

    results = [result async for result in client.messages.send_many(items)]

    refused = [r for r in results if not r.ok]
    assert len(refused) == 2
    assert all(isinstance(r.error, ValidationError) and r.error.field == "id" for r in refused)
    assert sandbox.counters.messages_created == 1


async def test_a_repeated_id_with_other_media_is_refused_not_reported_as_sent(
    sandbox: Sandbox, client: Chatmaid
) -> None:
    phone = PHONE
    base = {"from_phone_id": phone, "to": "+15557654321", "content": "same"}
    items = [
        {"id": "dup", **base},
        {"id": "dup", **base, "media_urls": ["https://cdn.example/a.png"]},
    ]

    results = [result async for result in client.messages.send_many(items, concurrency=1)]

    assert [r.ok for r in results] == [True, False]
    assert sandbox.counters.messages_created == 1
