"""Typed webhook events, built from a verified and decoded delivery body.

Only :mod:`chatmaid_async.webhooks` calls :func:`parse_event`, and only after the signature has
checked out. The parser is tolerant where the API has drifted (old SDK shapes, new event names,
new enum values, missing fields) and strict only about types: a field that is present with the
wrong type is an ``invalid_payload`` error naming the field, never a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal, TypeAlias, cast

import attrs

from chatmaid_async._timestamps import parse_timestamp
from chatmaid_async.errors import WebhookVerificationError

__all__ = [
    "InboundMessageData",
    "MessageOutgoingEvent",
    "MessageReceivedEvent",
    "MessageStatusData",
    "MessageStatusEvent",
    "MessageStatusEventName",
    "OutgoingMessageData",
    "PhoneData",
    "PhoneEvent",
    "PhoneEventName",
    "UnknownEvent",
    "WebhookEvent",
    "parse_event",
]

MessageStatusEventName: TypeAlias = Literal[
    "message.sent", "message.delivered", "message.read", "message.failed"
]
PhoneEventName: TypeAlias = Literal["phone.connected", "phone.disconnected"]

_MESSAGE_STATUS_EVENTS = frozenset(
    {"message.sent", "message.delivered", "message.read", "message.failed"}
)
_PHONE_EVENTS = frozenset({"phone.connected", "phone.disconnected"})

# The decoded JSON object, kept for fields the typed view does not (yet) cover.
_Raw: TypeAlias = Mapping[str, object]


@attrs.frozen(slots=True)
class MessageStatusData:
    """``data`` of ``message.sent`` / ``.delivered`` / ``.read`` / ``.failed``.

    Every field is None when the delivery omits it. ``status`` and ``error_code`` stay plain
    strings so values the API adds later pass through. ``from_number`` is the API's ``from``
    (your sending phone); ``to`` is a number or a group JID. ``content`` is only sent by the old
    (SDK 0.1.0) shape, which also names the message ``id`` instead of ``messageId``.
    """

    message_id: str | None
    from_number: str | None
    to: str | None
    status: str | None
    is_group: bool | None
    group_id: str | None
    source: str | None
    environment: str | None
    content: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    error_code: str | None
    error_message: str | None


@attrs.frozen(slots=True)
class InboundMessageData:
    """``data`` of ``message.received``: a message one of your numbers received.

    ``from_number`` is the sender, ``to`` your receiving number. ``type`` is ``text``,
    ``image``, ... kept as a string so new kinds pass through. Missing fields are None.
    """

    message_id: str | None
    from_number: str | None
    to: str | None
    content: str | None
    type: str | None
    is_group: bool | None
    group_id: str | None
    received_at: datetime | None


@attrs.frozen(slots=True)
class OutgoingMessageData:
    """``data`` of ``message.outgoing``: a message typed on the connected phone itself.

    There is no message id: no API message exists for it. ``source`` is ``"manual"``.
    """

    from_number: str | None
    to: str | None
    content: str | None
    type: str | None
    is_group: bool | None
    group_id: str | None
    source: str | None
    sent_at: datetime | None


@attrs.frozen(slots=True)
class PhoneData:
    """``data`` of ``phone.connected`` / ``phone.disconnected``.

    Older deliveries send ``id`` for ``phoneId`` and ``connectionStatus`` for ``status``; both
    shapes land here. ``status`` is an open set (``connected``, ``qr_pending``, ...).
    """

    phone_id: str | None
    phone_number: str | None
    display_name: str | None
    status: str | None
    last_connected_at: datetime | None
    last_disconnected_at: datetime | None


@attrs.frozen(slots=True)
class MessageStatusEvent:
    """A status change of a message you sent through the API."""

    event: MessageStatusEventName
    timestamp: datetime | None
    data: MessageStatusData
    raw: _Raw = attrs.field(eq=False, repr=False)


@attrs.frozen(slots=True)
class MessageReceivedEvent:
    """``message.received``: one of your numbers received a message."""

    event: Literal["message.received"]
    timestamp: datetime | None
    data: InboundMessageData
    raw: _Raw = attrs.field(eq=False, repr=False)


@attrs.frozen(slots=True)
class MessageOutgoingEvent:
    """``message.outgoing``: someone sent a message from the phone, outside the API."""

    event: Literal["message.outgoing"]
    timestamp: datetime | None
    data: OutgoingMessageData
    raw: _Raw = attrs.field(eq=False, repr=False)


@attrs.frozen(slots=True)
class PhoneEvent:
    """A phone connected to or disconnected from WhatsApp."""

    event: PhoneEventName
    timestamp: datetime | None
    data: PhoneData
    raw: _Raw = attrs.field(eq=False, repr=False)


@attrs.frozen(slots=True)
class UnknownEvent:
    """An event name this SDK version does not know; ``data`` is the undecoded object.

    New events have been added over time, so an unknown name is never an error.
    """

    event: str
    timestamp: datetime | None
    data: _Raw = attrs.field(hash=False)
    raw: _Raw = attrs.field(eq=False, repr=False)


WebhookEvent: TypeAlias = (
    MessageStatusEvent | MessageReceivedEvent | MessageOutgoingEvent | PhoneEvent | UnknownEvent
)


def parse_event(payload: object) -> WebhookEvent:
    """Turn a decoded delivery body into a typed event.

    Raises :class:`WebhookVerificationError` (``invalid_payload``) when the body is not an
    object with a string ``event`` and an object ``data``, or a known field has the wrong type.
    """
    if not isinstance(payload, dict):
        raise _invalid("the body must be a JSON object")

    name = payload.get("event")
    data = payload.get("data")
    if not isinstance(name, str):
        raise _invalid("event must be a string")
    if not isinstance(data, dict):
        raise _invalid("data must be an object")

    # Older deliveries and test fixtures omit the envelope timestamp; it is informational.
    timestamp = _timestamp(payload, "timestamp", "timestamp")
    fields = _Fields(data)

    if name in _MESSAGE_STATUS_EVENTS:
        status_name = cast(MessageStatusEventName, name)
        return MessageStatusEvent(status_name, timestamp, _message_status(fields), payload)
    if name == "message.received":
        return MessageReceivedEvent("message.received", timestamp, _inbound(fields), payload)
    if name == "message.outgoing":
        return MessageOutgoingEvent("message.outgoing", timestamp, _outgoing(fields), payload)
    if name in _PHONE_EVENTS:
        return PhoneEvent(cast(PhoneEventName, name), timestamp, _phone(fields), payload)
    return UnknownEvent(name, timestamp, data, payload)


def _message_status(fields: _Fields) -> MessageStatusData:
    return MessageStatusData(
        # SDK 0.1.0 deliveries call the message ``id``.
        message_id=fields.text("messageId", "id"),
        from_number=fields.text("from"),
        to=fields.text("to"),
        status=fields.text("status"),
        is_group=fields.flag("isGroup"),
        group_id=fields.text("groupId"),
        source=fields.text("source"),
        environment=fields.text("environment"),
        content=fields.text("content"),
        sent_at=fields.when("sentAt"),
        delivered_at=fields.when("deliveredAt"),
        read_at=fields.when("readAt"),
        failed_at=fields.when("failedAt"),
        error_code=fields.text("errorCode"),
        error_message=fields.text("errorMessage"),
    )


def _inbound(fields: _Fields) -> InboundMessageData:
    return InboundMessageData(
        message_id=fields.text("messageId", "id"),
        from_number=fields.text("from"),
        to=fields.text("to"),
        content=fields.text("content"),
        type=fields.text("type"),
        is_group=fields.flag("isGroup"),
        group_id=fields.text("groupId"),
        received_at=fields.when("receivedAt"),
    )


def _outgoing(fields: _Fields) -> OutgoingMessageData:
    return OutgoingMessageData(
        from_number=fields.text("from"),
        to=fields.text("to"),
        content=fields.text("content"),
        type=fields.text("type"),
        is_group=fields.flag("isGroup"),
        group_id=fields.text("groupId"),
        source=fields.text("source"),
        sent_at=fields.when("sentAt"),
    )


def _phone(fields: _Fields) -> PhoneData:
    return PhoneData(
        # Older shapes: {id, phoneNumber, connectionStatus} and {id, phoneNumber, status}.
        phone_id=fields.text("phoneId", "id"),
        phone_number=fields.text("phoneNumber"),
        display_name=fields.text("displayName"),
        status=fields.text("status", "connectionStatus"),
        last_connected_at=fields.when("lastConnectedAt"),
        last_disconnected_at=fields.when("lastDisconnectedAt"),
    )


class _Fields:
    """Typed reads from one ``data`` object: absent or null is None, a wrong type an error."""

    __slots__ = ("_data",)

    def __init__(self, data: _Raw) -> None:
        self._data = data

    def text(self, *keys: str) -> str | None:
        """The first of ``keys`` that is present and not null, as a string."""
        for key in keys:
            value = self._data.get(key)
            if value is None:
                continue
            if not isinstance(value, str):
                raise _invalid(f"data.{key} must be a string or null")
            return value
        return None

    def flag(self, key: str) -> bool | None:
        value = self._data.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise _invalid(f"data.{key} must be a boolean or null")

    def when(self, key: str) -> datetime | None:
        return _timestamp(self._data, key, f"data.{key}")


def _timestamp(source: _Raw, key: str, label: str) -> datetime | None:
    value = source.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{label} must be an ISO 8601 string or null")
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError):
        raise _invalid(f"{label} is not an ISO 8601 date-time") from None


def _invalid(detail: str) -> WebhookVerificationError:
    # The detail names the field only: payload values can be message text or phone numbers.
    return WebhookVerificationError("invalid_payload", detail)
