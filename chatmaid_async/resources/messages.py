"""``client.messages``: send messages, read them back, and read what your numbers received."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Collection, Iterable
from typing import TYPE_CHECKING

from chatmaid_async._idempotency_keys import new_idempotency_key
from chatmaid_async._validation import (
    check_content,
    check_id,
    check_idempotency_key,
    check_optional_filter,
    check_page,
    check_page_size,
    check_phone_ref,
    check_recipient,
)
from chatmaid_async.errors import ValidationError
from chatmaid_async.models import InboundMessage, Message, Page, decode, decode_sent
from chatmaid_async.resources._base import Resource
from chatmaid_async.resources._pagination import decode_page, iterate_pages, page_query

if TYPE_CHECKING:
    from chatmaid_async.batch import SendRequest, SendResult

__all__ = ["MessagesResource"]

SEND = "/v1/messages/send"
MESSAGES = "/v1/messages"
MESSAGE = "/v1/messages/{}"
INBOUND = "/v1/messages/inbound"
INBOUND_MESSAGE = "/v1/messages/inbound/{}"

RESERVED_MESSAGE_PATHS = frozenset({"inbound", "send"})
DEFAULT_PAGE_SIZE = 20
DEFAULT_ITERATE_PAGE_SIZE = 100
DEFAULT_UNTIL = frozenset({"delivered", "read", "failed"})


class MessagesResource(Resource):
    """Send and read outbound messages, and read inbound ones."""

    __slots__ = ()

    async def send(
        self,
        from_phone_id: str,
        to: str,
        content: str | None = None,
        media_urls: Iterable[str] | None = None,
        idempotency_key: str | None = None,
    ) -> Message:
        """Send a text or media message and return it.

        ``from_phone_id`` is the sender's E.164 number or dashboard id; ``to`` an E.164 number
        or a group JID. Give ``content`` (at most 4096 characters), ``media_urls`` (https), or
        both. Every send carries an idempotency key, yours or a generated uuid4, and retries
        reuse it, so one call never creates two messages; the key is on the returned
        ``Message`` and on any error raised. Bad arguments raise ``ValidationError`` before
        anything is sent.
        """
        key, body = _send_body(from_phone_id, to, content, media_urls, idempotency_key)
        envelope = await self._client._request("POST", SEND, body=body, idempotency_key=key)
        return decode_sent(envelope.data, SEND, key)

    async def get(self, message_id: str) -> Message:
        """Return one outbound message by id (``msg_…``)."""
        message_id = _check_message_id(message_id)
        envelope = await self._client._request("GET", MESSAGE, (message_id,))
        return decode(envelope.data, Message, MESSAGE)

    async def list(
        self,
        status: str | None = None,
        phone_number_id: str | None = None,
        page: int = 1,
        limit: int = DEFAULT_PAGE_SIZE,
    ) -> Page[Message]:
        """Return one page of outbound messages, newest first, optionally filtered."""
        query = page_query(
            page=check_page(page),
            limit=check_page_size(limit),
            status=check_optional_filter("status", status),
            phoneNumberId=check_optional_filter("phone_number_id", phone_number_id),
        )
        envelope = await self._client._request("GET", MESSAGES, query=query)
        return decode_page(envelope, Message, MESSAGES, page, limit)

    def iterate(
        self,
        status: str | None = None,
        phone_number_id: str | None = None,
        limit: int = DEFAULT_ITERATE_PAGE_SIZE,
        *,
        page: int = 1,
    ) -> AsyncIterator[Message]:
        """Yield every outbound message from ``page`` on, fetching pages lazily.

        Stops at the last page and never loops, whatever the server answers (F23).
        """
        check_page(page)
        check_page_size(limit)

        async def fetch(number: int) -> Page[Message]:
            return await self.list(status, phone_number_id, page=number, limit=limit)

        return iterate_pages(fetch, first_page=page, item_id=_item_id)

    async def list_inbound(
        self, phone_number_id: str | None = None, page: int = 1, limit: int = DEFAULT_PAGE_SIZE
    ) -> Page[InboundMessage]:
        """Return one page of received messages (live keys; test keys always get none)."""
        query = page_query(
            page=check_page(page),
            limit=check_page_size(limit),
            phoneNumberId=check_optional_filter("phone_number_id", phone_number_id),
        )
        envelope = await self._client._request("GET", INBOUND, query=query)
        return decode_page(envelope, InboundMessage, INBOUND, page, limit)

    async def get_inbound(self, message_id: str) -> InboundMessage:
        """Return one received message by id (``inmsg_…``)."""
        message_id = check_id("message_id", message_id)
        envelope = await self._client._request("GET", INBOUND_MESSAGE, (message_id,))
        return decode(envelope.data, InboundMessage, INBOUND_MESSAGE)

    def iterate_inbound(
        self,
        phone_number_id: str | None = None,
        limit: int = DEFAULT_ITERATE_PAGE_SIZE,
        *,
        page: int = 1,
    ) -> AsyncIterator[InboundMessage]:
        """Yield every received message from ``page`` on, fetching pages lazily."""
        check_page(page)
        check_page_size(limit)

        async def fetch(number: int) -> Page[InboundMessage]:
            return await self.list_inbound(phone_number_id, page=number, limit=limit)

        return iterate_pages(fetch, first_page=page, item_id=_item_id)

    def send_many(
        self,
        items: Iterable[SendRequest] | AsyncIterable[SendRequest],
        *,
        concurrency: int = 32,
        namespace: str = "",
    ) -> AsyncGenerator[SendResult, None]:
        """Send many messages; yield one :class:`~chatmaid_async.batch.SendResult` per item.

        See :func:`chatmaid_async.batch.send_many`: the input is read lazily, results come as
        sends complete, and each item's idempotency key derives from its id, so running the
        same batch again never sends a message twice.
        """
        from chatmaid_async.batch import send_many

        return send_many(self, items, concurrency=concurrency, namespace=namespace)

    async def wait_for_status(
        self,
        message_id: str,
        until: Collection[str] = DEFAULT_UNTIL,
        *,
        timeout: float = 300.0,
        initial_interval: float = 1.0,
        max_interval: float = 30.0,
    ) -> Message:
        """Poll a message until its status is in ``until``, and return it.

        Polls go through the key's rate limiter, at intervals growing from
        ``initial_interval`` to ``max_interval``. Raises ``StatusTimeoutError`` (carrying the
        last status seen) once ``timeout`` seconds pass.
        """
        from chatmaid_async.batch import wait_for_status

        return await wait_for_status(
            self,
            message_id,
            until,
            timeout=timeout,
            initial_interval=initial_interval,
            max_interval=max_interval,
        )


def _send_body(
    from_phone_id: str,
    to: str,
    content: str | None,
    media_urls: Iterable[str] | None,
    idempotency_key: str | None,
) -> tuple[str, dict[str, object]]:
    sender = check_phone_ref("from_phone_id", from_phone_id)
    recipient = check_recipient("to", to)
    text, urls = check_content(content, media_urls)
    if idempotency_key is None:
        key = new_idempotency_key()
    else:
        key = check_idempotency_key(idempotency_key)

    body: dict[str, object] = {"fromPhoneId": sender, "to": recipient}
    if text is not None:
        body["content"] = text
    if urls:
        body["mediaUrls"] = urls
    body["idempotencyKey"] = key
    return key, body


def _check_message_id(value: object) -> str:
    message_id = check_id("message_id", value)
    # These words are routes beside /v1/messages/{id}, never message ids.
    if message_id in RESERVED_MESSAGE_PATHS:
        raise ValidationError("message_id", f"{message_id!r} is a route, not a message id")
    return message_id


def _item_id(item: Message | InboundMessage) -> str:
    return item.id
