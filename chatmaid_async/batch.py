"""Sending many messages, and waiting for a message's status.

:func:`send_many` reads its input lazily and keeps at most ``concurrency`` sends in flight, so
memory stays flat however many items there are. Each item's idempotency key is derived from
its caller-given id (and an optional namespace), so running the same batch again, after a
crash or on purpose, returns the messages already sent instead of sending them twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any

import attrs

from chatmaid_async.errors import ChatmaidError, StatusTimeoutError, ValidationError

if TYPE_CHECKING:
    from chatmaid_async.models import Message
    from chatmaid_async.resources.messages import MessagesResource

__all__ = ["SendRequest", "SendResult", "idempotency_key_for", "send_many", "wait_for_status"]

MAX_CONCURRENCY = 1024
# Marks the end of the input; None cannot, as a None item must still get its result.
_END: Any = object()


@attrs.frozen(slots=True)
class SendRequest:
    """One message of a batch; ``id`` is yours and must be unique within the batch's namespace.

    ``idempotency_key`` overrides the key derived from ``id``.
    """

    id: str
    from_phone_id: str
    to: str
    content: str | None = None
    media_urls: Sequence[str] | None = None
    idempotency_key: str | None = None

    @classmethod
    def from_mapping(cls, item: Mapping[str, Any]) -> SendRequest:
        """Build a request from a mapping with the same field names."""
        fields = {a.name for a in attrs.fields(cls)}
        return cls(**{name: item[name] for name in fields if name in item})


@attrs.frozen(slots=True)
class SendResult:
    """The outcome of one batch item: ``message`` when sent, else ``error``."""

    id: str
    message: Message | None = None
    error: ChatmaidError | None = None

    @property
    def ok(self) -> bool:
        """True when the message was accepted by the API."""
        return self.message is not None


def idempotency_key_for(item_id: str, namespace: str = "") -> str:
    """The idempotency key a batch item with this id is sent with (stable across runs)."""
    # surrogatepass: a lone surrogate (JSON's "\ud83d" read alone) is text the API takes; any
    # other text encodes to the same UTF-8 bytes, so the keys of earlier runs hold.
    text = f"{namespace}\x00{item_id}"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"batch_{digest[:48]}"


async def send_many(
    messages: MessagesResource,
    items: Iterable[SendRequest | Mapping[str, Any]]
    | AsyncIterable[SendRequest | Mapping[str, Any]],
    *,
    concurrency: int = 32,
    namespace: str = "",
) -> AsyncGenerator[SendResult, None]:
    """Send every item and yield one :class:`SendResult` per item, in completion order.

    Every item gets exactly one result: an invalid item gets a ``ValidationError`` result and
    is never sent, an API failure its typed error. All sends share the key's rate limiter.
    Stopping the iteration (``break``, cancellation) cancels the sends in flight and returns;
    items not yet read are not sent, and a rerun sends each missing item exactly once.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise ValidationError("concurrency", "must be an integer")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValidationError("concurrency", f"must be from 1 to {MAX_CONCURRENCY}")

    source = _items(items)
    in_flight: set[asyncio.Task[SendResult]] = set()
    exhausted = False
    try:
        while True:
            while not exhausted and len(in_flight) < concurrency:
                item = await anext(source, _END)
                if item is _END:
                    exhausted = True
                    break
                in_flight.add(asyncio.ensure_future(_send_one(messages, item, namespace)))
            if not in_flight:
                return

            done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                yield task.result()
    finally:
        await _cancel_all(in_flight)


async def _send_one(
    messages: MessagesResource, item: SendRequest | Mapping[str, Any], namespace: str
) -> SendResult:
    item_id = _item_id(item)
    if not isinstance(_raw_id(item), str) or not item_id.strip():
        # The id names the idempotency key: 7 and "7" must not collide, nor two missing ids.
        return SendResult(item_id, error=ValidationError("id", "must be a non-empty string"))
    try:
        request = item if isinstance(item, SendRequest) else SendRequest.from_mapping(item)
        key = request.idempotency_key or idempotency_key_for(item_id, namespace)
        message = await messages.send(
            request.from_phone_id,
            request.to,
            content=request.content,
            media_urls=request.media_urls,
            idempotency_key=key,
        )
    except ChatmaidError as exc:
        return SendResult(item_id, error=exc)
    except (TypeError, KeyError) as exc:
        return SendResult(item_id, error=ValidationError("item", f"malformed item: {exc}"))

    if _is_another_message(message, request):
        # The key was spent on an earlier item with this id; this item's message never went.
        rule = f"repeats the id of an earlier, different message ({message.id}); not sent"
        return SendResult(item_id, error=ValidationError("id", rule))
    return SendResult(item_id, message=message)


def _is_another_message(message: Message, request: SendRequest) -> bool:
    # The server answers a reused idempotency key with the message it stored under it.
    differs_to = message.to is not None and message.to != request.to
    differs_content = message.content is not None and message.content != (request.content or "")
    # Only when the server echoed mediaUrls: an absent field decodes as [] and proves nothing.
    echoed_media = message.raw.get("mediaUrls") is not None
    differs_media = echoed_media and message.media_urls != list(request.media_urls or ())
    return differs_to or differs_content or differs_media


def _raw_id(item: object) -> object:
    if isinstance(item, SendRequest):
        return item.id
    return item.get("id") if isinstance(item, Mapping) else None


def _item_id(item: object) -> str:
    value = _raw_id(item)
    return value if isinstance(value, str) else str(value)


async def _items(
    items: Iterable[SendRequest | Mapping[str, Any]]
    | AsyncIterable[SendRequest | Mapping[str, Any]],
) -> AsyncIterator[SendRequest | Mapping[str, Any]]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
        return
    iterator: Iterator[SendRequest | Mapping[str, Any]] = iter(items)
    for item in iterator:
        yield item


async def _cancel_all(tasks: set[asyncio.Task[SendResult]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


async def wait_for_status(
    messages: MessagesResource,
    message_id: str,
    until: Collection[str],
    *,
    timeout: float,
    initial_interval: float,
    max_interval: float,
) -> Message:
    """Poll ``messages.get`` until the status is in ``until``; see ``Messages.wait_for_status``."""
    if isinstance(until, str):
        until = {until}
    if not until:
        raise ValidationError("until", "must name at least one status")
    if not timeout > 0 or not initial_interval > 0 or max_interval < initial_interval:
        raise ValidationError("timeout", "timeout and intervals must be positive and ordered")

    deadline = time.monotonic() + timeout
    interval = initial_interval
    last_status: str | None = None
    while True:
        # A poll may queue for a rate-limit slot; the deadline bounds that wait too.
        try:
            message = await asyncio.wait_for(messages.get(message_id), deadline - time.monotonic())
        except asyncio.TimeoutError:
            raise StatusTimeoutError(message_id, last_status, timeout) from None
        last_status = message.status
        if last_status in until:
            return message

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StatusTimeoutError(message_id, last_status, timeout)
        await asyncio.sleep(min(interval, remaining))
        interval = min(interval * 2, max_interval)
