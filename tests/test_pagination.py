"""Listing pages and walking them: every known shape, and iteration that always ends (F23)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses
from conftest import envelope, sent_requests
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from chatmaid_async import Chatmaid, ChatmaidError, Group, Page, Pagination
from chatmaid_async.resources import _pagination

LISTINGS = re.compile(r".*/v1/messages(/inbound)?\?.*")
# A server: (page asked for, limit asked for) -> the whole JSON answer.
Server = Callable[[int, int], dict[str, Any]]


def message(n: int) -> dict[str, Any]:
    return {"id": f"msg_{n}", "status": "sent"}


def nested(items: list[Any], meta: dict[str, Any] | None, key: str = "pagination") -> Any:
    """The documented shape: pagination inside ``data`` (or left out when ``meta`` is None)."""
    payload: dict[str, Any] = {"data": items}
    if meta is not None:
        payload[key] = meta
    return envelope(payload)


def beside(items: list[Any], meta: dict[str, Any] | None) -> Any:
    """The JS SDK's other shape: ``pagination`` beside a bare ``data`` list."""
    answer = envelope(items)
    if meta is not None:
        answer["pagination"] = meta
    return answer


SHAPES = {
    "nested-pagination": nested,
    "nested-meta": lambda items, meta: nested(items, meta, key="meta"),
    "top-level-pagination": beside,
}


def serve(mock: aioresponses, server: Server) -> None:
    """Answer every listing request with ``server(page, limit)``, however often it is asked."""

    def answer(url: URL, **_: Any) -> CallbackResult:
        return CallbackResult(payload=server(int(url.query["page"]), int(url.query["limit"])))

    mock.get(LISTINGS, callback=answer, repeat=True)


def pages_asked(mock: aioresponses) -> list[int]:
    return [int(URL(url).query["page"]) for _, url, _ in sent_requests(mock)]


def walk_total(total: int, limit: int, *, shape: str = "nested-pagination") -> Server:
    """An honest server holding ``total`` messages."""
    wrap = SHAPES[shape]

    def server(page: int, asked_limit: int) -> dict[str, Any]:
        start = (page - 1) * asked_limit
        items = [message(n) for n in range(start, min(start + asked_limit, total))]
        meta = {
            "page": page,
            "limit": asked_limit,
            "total": total,
            "totalPages": -(-total // asked_limit),
        }
        return wrap(items, meta)

    return server


async def collect(client: Chatmaid, **options: Any) -> list[str]:
    return [m.id async for m in client.messages.iterate(**options)]


# --- F23 (a) to (e) ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
async def test_f23_a_no_messages_yields_nothing_after_one_request(
    client: Chatmaid, mocked: aioresponses, shape: str
) -> None:
    meta = {"page": 1, "limit": 50, "total": 0, "totalPages": 0}
    serve(mocked, lambda page, limit: SHAPES[shape]([], meta))

    assert await collect(client, limit=50) == []
    assert pages_asked(mocked) == [1]


@pytest.mark.parametrize("shape", SHAPES)
async def test_f23_b_a_server_repeating_the_last_page_yields_120_in_3_requests(
    client: Chatmaid, mocked: aioresponses, shape: str
) -> None:
    honest = walk_total(120, 50, shape=shape)
    serve(mocked, lambda page, limit: honest(min(page, 3), limit))

    ids = await collect(client, limit=50)

    assert ids == [f"msg_{n}" for n in range(120)]
    assert pages_asked(mocked) == [1, 2, 3]


async def test_f23_b_full_pages_repeated_past_an_overstated_total_stop_at_the_repeat(
    client: Chatmaid, mocked: aioresponses
) -> None:
    # 150 messages in three full pages; the server claims 6 pages and answers page 3 again.
    def server(page: int, limit: int) -> dict[str, Any]:
        served = min(page, 3)
        items = [message(n) for n in range((served - 1) * limit, served * limit)]
        return nested(items, {"page": page, "limit": limit, "total": 300, "totalPages": 6})

    serve(mocked, server)

    ids = await collect(client, limit=50)

    assert ids == [f"msg_{n}" for n in range(150)]
    assert pages_asked(mocked) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "answer_for_page_5",
    [
        pytest.param(lambda: ([], 5), id="empty-page"),
        pytest.param(lambda: ([message(n) for n in range(100, 120)], 3), id="clamped-to-3"),
        pytest.param(lambda: ([message(n) for n in range(100, 120)], 5), id="page-3-data-as-5"),
    ],
)
async def test_f23_c_starting_past_the_last_page_yields_nothing_after_one_request(
    client: Chatmaid, mocked: aioresponses, answer_for_page_5: Callable[[], tuple[list[Any], int]]
) -> None:
    def server(page: int, limit: int) -> dict[str, Any]:
        items, reported = answer_for_page_5()
        return nested(items, {"page": reported, "limit": limit, "total": 120, "totalPages": 3})

    serve(mocked, server)

    assert await collect(client, limit=50, page=5) == []
    assert pages_asked(mocked) == [5]


@pytest.mark.parametrize("shape", SHAPES)
async def test_f23_d_without_total_pages_iteration_stops_after_the_short_page(
    client: Chatmaid, mocked: aioresponses, shape: str
) -> None:
    def server(page: int, limit: int) -> dict[str, Any]:
        count = limit if page == 1 else 20
        items = [message((page - 1) * limit + n) for n in range(count)]
        return SHAPES[shape](items, {"page": page, "limit": limit, "total": 70})

    serve(mocked, server)

    ids = await collect(client, limit=50)

    assert ids == [f"msg_{n}" for n in range(70)]
    assert pages_asked(mocked) == [1, 2]


async def test_f23_e_status_and_phone_filters_are_sent_on_every_page(
    client: Chatmaid, mocked: aioresponses
) -> None:
    serve(mocked, walk_total(120, 50))

    await collect(client, status="failed", phone_number_id="+15551234567", limit=50)

    queries = [sorted(URL(url).query.items()) for _, url, _ in sent_requests(mocked)]
    assert queries == [
        sorted(
            {
                "page": str(page),
                "limit": "50",
                "status": "failed",
                "phoneNumberId": "+15551234567",
            }.items()
        )
        for page in (1, 2, 3)
    ]


async def test_f23_e_inbound_phone_filter_is_sent_on_every_page(
    client: Chatmaid, mocked: aioresponses
) -> None:
    serve(mocked, walk_total(5, 2))

    ids = [m.id async for m in client.messages.iterate_inbound("ph_1", limit=2)]

    assert ids == [f"msg_{n}" for n in range(5)]
    urls = [URL(url) for _, url, _ in sent_requests(mocked)]
    assert [url.path for url in urls] == ["/v1/messages/inbound"] * 3
    assert [url.query.get("phoneNumberId") for url in urls] == ["ph_1"] * 3
    assert [url.query["page"] for url in urls] == ["1", "2", "3"]


# --- the shapes of a page ----------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
async def test_list_reads_pagination_in_each_known_shape(
    client: Chatmaid, mocked: aioresponses, shape: str
) -> None:
    serve(mocked, walk_total(120, 50, shape=shape))

    page = await client.messages.list(page=2, limit=50)

    assert [m.id for m in page] == [f"msg_{n}" for n in range(50, 100)]
    assert page.pagination == Pagination(page=2, limit=50, total=120, total_pages=3)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(nested([message(1), message(2)], None), id="nested-without-pagination"),
        pytest.param(envelope([message(1), message(2)]), id="bare-list"),
    ],
)
async def test_a_listing_without_pagination_is_one_page_of_what_came(
    client: Chatmaid, mocked: aioresponses, answer: dict[str, Any]
) -> None:
    serve(mocked, lambda page, limit: answer)

    page = await client.messages.list(limit=2)
    ids = await collect(client, limit=2)

    assert [m.id for m in page] == ["msg_1", "msg_2"]
    assert page.pagination == Pagination(page=1, limit=2, total=2, total_pages=1)
    assert ids == ["msg_1", "msg_2"]
    assert pages_asked(mocked) == [1, 1]


async def test_nested_pagination_wins_over_a_top_level_one(
    client: Chatmaid, mocked: aioresponses
) -> None:
    answer = nested([message(1)], {"page": 1, "limit": 20, "total": 1, "totalPages": 1})
    answer["pagination"] = {"page": 9, "limit": 9, "total": 99, "totalPages": 11}
    serve(mocked, lambda page, limit: answer)

    page = await client.messages.list()

    assert page.pagination == Pagination(page=1, limit=20, total=1, total_pages=1)


async def test_pagination_missing_page_and_limit_describes_the_page_asked_for(
    client: Chatmaid, mocked: aioresponses
) -> None:
    serve(mocked, lambda page, limit: nested([message(1)], {"total": 41, "totalPages": 3}))

    page = await client.messages.list(page=3, limit=20)

    assert page.pagination == Pagination(page=3, limit=20, total=41, total_pages=3)


# --- laziness ----------------------------------------------------------------------------------


async def test_iterate_fetches_nothing_until_iterated_and_one_page_at_a_time(
    client: Chatmaid, mocked: aioresponses
) -> None:
    serve(mocked, walk_total(120, 50))

    iterator = client.messages.iterate(limit=50)
    assert pages_asked(mocked) == []

    first = await iterator.__anext__()
    assert first.id == "msg_0"
    assert pages_asked(mocked) == [1]

    for _ in range(49):
        await iterator.__anext__()
    assert pages_asked(mocked) == [1]

    await iterator.__anext__()
    assert pages_asked(mocked) == [1, 2]
    await iterator.aclose()


async def test_breaking_out_of_iterate_fetches_no_more_pages(
    client: Chatmaid, mocked: aioresponses
) -> None:
    serve(mocked, walk_total(500, 10))

    seen = []
    async for m in client.messages.iterate(limit=10):
        seen.append(m.id)
        if len(seen) == 15:
            break

    assert pages_asked(mocked) == [1, 2]


async def test_iterate_uses_pages_of_a_hundred_by_default(
    client: Chatmaid, mocked: aioresponses
) -> None:
    serve(mocked, walk_total(3, 100))

    assert len(await collect(client)) == 3
    assert [URL(url).query["limit"] for _, url, _ in sent_requests(mocked)] == ["100"]


async def test_iterate_can_start_at_a_later_page(client: Chatmaid, mocked: aioresponses) -> None:
    serve(mocked, walk_total(120, 50))

    ids = await collect(client, limit=50, page=2)

    assert ids == [f"msg_{n}" for n in range(50, 120)]
    assert pages_asked(mocked) == [2, 3]


# --- the walk itself, without HTTP ------------------------------------------------------------


def _walk(pages: list[tuple[list[str], int | None]], limit: int = 2) -> tuple[list[str], int]:
    """Run iterate_pages over canned pages (items, totalPages); the last repeats forever."""
    asked = 0

    async def fetch(number: int) -> Page[Group]:
        nonlocal asked
        asked += 1
        items, total_pages = pages[min(number, len(pages)) - 1]
        info = Pagination(page=number, limit=limit, total=None, total_pages=total_pages)
        return Page([Group(id=i) for i in items], info)

    walk = _pagination.iterate_pages(fetch, first_page=1, item_id=lambda g: g.id)
    return [g.id for g in _drain(walk)], asked


def _drain(walk: AsyncIterator[Group]) -> list[Group]:
    """Exhaust an async iterator that never suspends, without the cost of an event loop."""
    items = []
    while True:
        step = walk.__anext__()
        try:
            step.send(None)
        except StopIteration as done:
            items.append(done.value)
        except StopAsyncIteration:
            return items
        else:  # pragma: no cover - only if fetch suspended
            step.close()
            raise AssertionError("the walk suspended")


page_items = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=0, max_size=3)
canned_pages = st.lists(
    st.tuples(page_items, st.one_of(st.none(), st.integers(0, 6))), min_size=1, max_size=8
)


@settings(max_examples=100, deadline=None)
@given(canned_pages, st.integers(0, 6))
def test_f23_walk_never_asks_for_more_than_total_pages_plus_one(
    pages: list[tuple[list[str], int | None]], total_pages: int
) -> None:
    # Whatever the pages hold, a server that reports totalPages is asked at most once past it.
    reported = [(items, total_pages) for items, _ in pages]

    _, asked = _walk(reported)

    assert asked <= max(total_pages, 1) + 1


@settings(max_examples=100, deadline=None)
@given(canned_pages)
def test_f23_walk_always_ends_whatever_the_server_answers(
    pages: list[tuple[list[str], int | None]],
) -> None:
    _, asked = _walk(pages)

    # The last canned page repeats forever; the walk must notice it within one more request.
    assert asked <= len(pages) + 1


def test_f23_a_server_with_endless_fresh_pages_hits_the_safety_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_pagination, "MAX_PAGES", 5)
    asked = 0

    async def fetch(number: int) -> Page[Group]:
        nonlocal asked
        asked += 1
        items = [Group(id=f"{number}-{n}") for n in range(2)]
        return Page(items, Pagination(page=number, limit=2))

    async def run() -> None:
        async for _ in _pagination.iterate_pages(fetch, first_page=1, item_id=lambda g: g.id):
            pass

    with pytest.raises(ChatmaidError, match="5 pages"):
        asyncio.run(run())
    assert asked == 5


async def test_without_total_pages_the_total_says_where_full_pages_end(
    client: Chatmaid, mocked: aioresponses
) -> None:
    def server(page: int, limit: int) -> dict[str, Any]:
        # Full pages forever, with a cycling body: only "total" tells where the listing ends.
        items = [message(((page - 1) % 2) * limit + n) for n in range(limit)]
        return nested(items, {"page": page, "limit": limit, "total": 100})

    serve(mocked, server)

    ids = await collect(client, limit=50)

    assert len(ids) == 100
    assert pages_asked(mocked) == [1, 2]
