"""Pages of a listing: decoding the three shapes the API is known to use, and walking them.

The contract nests pagination inside ``data`` (§9); the JS SDK's transport also accepts it
beside ``data``; and when it is missing the SDK makes up a single page. All three are read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

from chatmaid_async._transport import Envelope
from chatmaid_async.errors import ChatmaidError
from chatmaid_async.models import Page, Pagination, decode

__all__ = ["MAX_PAGES", "decode_page", "iterate_pages"]

T = TypeVar("T")

# A listing longer than this many pages is a server loop, not data.
MAX_PAGES = 100_000


def decode_page(
    envelope: Envelope, item_type: type[T], endpoint: str, page: int, limit: int
) -> Page[T]:
    """Decode a paginated payload into a :class:`Page` of ``item_type``."""
    payload = envelope.data
    if isinstance(payload, Mapping) and "data" in payload:
        items_value = payload["data"]
        pagination_value = _first_present(payload, envelope.pagination)
    else:
        items_value, pagination_value = payload, envelope.pagination

    items = decode(items_value, list[item_type], endpoint)  # type: ignore[valid-type]
    if not isinstance(pagination_value, Mapping):
        pagination = Pagination(page=page, limit=limit, total=len(items), total_pages=1)
    else:
        # A pagination object missing page or limit describes the page we asked for.
        defaults = {"page": page, "limit": limit}
        pagination = decode({**defaults, **pagination_value}, Pagination, endpoint)
    return Page(data=items, pagination=pagination)


def _first_present(payload: Mapping[str, Any], top_level: object) -> object:
    # Nested "pagination" is documented; "meta" and a top-level object are tolerated.
    for name in ("pagination", "meta"):
        if payload.get(name) is not None:
            return payload[name]
    return top_level


async def iterate_pages(
    fetch: Callable[[int], Awaitable[Page[T]]], *, first_page: int, item_id: Callable[[T], str]
) -> AsyncIterator[T]:
    """Yield every item from ``first_page`` on, one page request at a time.

    Stops at ``totalPages`` (0 included), on an empty or short page, and when the server
    answers with a page it already sent (clamping or cycling), so it never loops (F23).
    """
    page_number = first_page
    previous_first_id: str | None = None
    for _ in range(MAX_PAGES):
        page = await fetch(page_number)
        info = page.pagination
        total_pages = _total_pages(info)
        past_the_end = total_pages is not None and page_number > total_pages
        if not page.data or past_the_end or info.page < page_number:
            return
        first_id = item_id(page.data[0])
        if first_id == previous_first_id:
            return

        for item in page.data:
            yield item

        last_page = total_pages is not None and page_number >= total_pages
        if last_page or len(page.data) < info.limit:
            return
        previous_first_id = first_id
        page_number += 1
    raise ChatmaidError(f"stopped after {MAX_PAGES} pages: the server kept returning more")


def _total_pages(info: Pagination) -> int | None:
    # Without totalPages, total and limit still say where the listing ends.
    if info.total_pages is not None:
        return info.total_pages
    if info.total is not None and info.limit > 0:
        return -(-info.total // info.limit)
    return None


def page_query(**values: Any) -> dict[str, Any]:
    """A query mapping without the filters left as None."""
    return {name: value for name, value in values.items() if value is not None}
