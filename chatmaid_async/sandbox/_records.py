"""What the sandbox stores, and how each stored object renders as the API's JSON.

Records never import the SDK's models: the sandbox writes the wire format of the contract
directly, so a mistake in the client cannot leak into the server it is tested against.
Times are Unix seconds (``time.time()``); a message keeps the times of its future transitions
and its status is computed from them on every read.
"""

from __future__ import annotations

import functools
import random
import string
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

import attrs

__all__ = [
    "ALL_SCOPES",
    "FAILURE_RECIPIENTS",
    "SANDBOX_GROUPS",
    "AccountRecord",
    "Environment",
    "GroupRecord",
    "InboundRecord",
    "PhoneRecord",
    "SandboxMessage",
    "iso",
    "new_id",
]

Environment = Literal["test", "live"]
JsonObject = dict[str, object]

# Every scope a dashboard key can hold; keys get all of them unless told otherwise.
ALL_SCOPES: tuple[str, ...] = (
    "messages:send",
    "messages:read",
    "phone_numbers:read",
    "account:read",
)

# Sandbox-only recipients whose messages fail with one errorCode each (contract §6.4).
FAILURE_RECIPIENTS: Mapping[str, str] = MappingProxyType(
    {
        "+15550009001": "NOT_CONNECTED",
        "+15550009002": "INVALID_RECIPIENT",
        "+15550009003": "RECIPIENT_NOT_REACHABLE",
        "+15550009004": "NOT_GROUP_MEMBER",
        "+15550009005": "RATE_LIMITED",
        "+15550009006": "NOT_AUTHORIZED",
        "+15550009007": "MEDIA_ERROR",
        "+15550009008": "TIMEOUT",
        "+15550009009": "SERVICE_UNAVAILABLE",
        "+15550009010": "INTERNAL_ERROR",
    }
)

_FAILURE_TEXT: Mapping[str, str] = MappingProxyType(
    {
        "NOT_CONNECTED": "The sender phone is not connected to WhatsApp",
        "INVALID_RECIPIENT": "The recipient is not a valid WhatsApp account",
        "RECIPIENT_NOT_REACHABLE": "The recipient could not be reached",
        "NOT_GROUP_MEMBER": "The sender is not a member of the group",
        "RATE_LIMITED": "WhatsApp throttled the sender",
        "NOT_AUTHORIZED": "The sender is not allowed to post to this chat",
        "MEDIA_ERROR": "A media URL could not be fetched",
        "TIMEOUT": "Sending timed out",
        "SERVICE_UNAVAILABLE": "WhatsApp is temporarily unavailable",
        "INTERNAL_ERROR": "Unexpected internal failure",
    }
)

_ID_ALPHABET = string.ascii_letters + string.digits


def iso(seconds: float) -> str:
    """Format Unix seconds the way the API does: UTC, milliseconds, ``Z``."""
    return _iso_millis(int(seconds * 1000))


# Under load many timestamps fall in the same millisecond, and formatting is the costliest
# part of rendering a message, so recent results are kept.
@functools.lru_cache(maxsize=4096)
def _iso_millis(millis: int) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000))
    return f"{whole}.{millis % 1000:03d}Z"


def _iso_or_none(seconds: float | None, now: float) -> str | None:
    # A transition scheduled for later has not happened yet, so its timestamp is still null.
    if seconds is None or seconds > now:
        return None
    return iso(seconds)


def new_id(rng: random.Random, prefix: str, length: int = 24) -> str:
    """A resource id: ``prefix`` plus ``length`` random alphanumerics (not a secret)."""
    return prefix + "".join(rng.choices(_ID_ALPHABET, k=length))


def failure_text(error_code: str) -> str:
    """The human-readable ``errorMessage`` that goes with a failure ``errorCode``."""
    return _FAILURE_TEXT.get(error_code, "Message could not be delivered")


@attrs.frozen(slots=True)
class GroupRecord:
    """A WhatsApp group a phone can post to."""

    jid: str
    name: str
    is_community_announce: bool = False

    def to_json(self) -> JsonObject:
        """The group as ``GET /v1/groups`` lists it."""
        return {
            "id": self.jid,
            "name": self.name,
            "isCommunityAnnounce": self.is_community_announce,
        }


# What a test key sees on GET /v1/groups for any of its phones, before added groups.
SANDBOX_GROUPS: tuple[GroupRecord, ...] = (
    GroupRecord("120363000000000001@g.us", "Sandbox Team"),
    GroupRecord("120363000000000002@g.us", "Sandbox Customers"),
    GroupRecord("120363000000000003@g.us", "Sandbox Announcements", is_community_announce=True),
)


@attrs.define(slots=True)
class PhoneRecord:
    """A phone number of the account. ``environment=None``: visible to test and live keys."""

    id: str
    phone_number: str
    display_name: str | None
    connection_status: str
    environment: Environment | None
    created_at: float
    updated_at: float
    last_connected_at: float | None = None
    last_disconnected_at: float | None = None

    def visible_to(self, environment: Environment) -> bool:
        """Whether keys of ``environment`` see this phone."""
        return self.environment is None or self.environment == environment

    def status_json(self) -> JsonObject:
        """The phone as ``GET /v1/phone-numbers/{id}/status`` returns it."""
        return {
            "id": self.id,
            "phoneNumber": self.phone_number,
            "connectionStatus": self.connection_status,
            "lastConnectedAt": _maybe_iso(self.last_connected_at),
            "lastDisconnectedAt": _maybe_iso(self.last_disconnected_at),
            "updatedAt": iso(self.updated_at),
        }

    def to_json(self, environment: Environment) -> JsonObject:
        """The phone as the phone-number endpoints return it to a key of ``environment``."""
        return {
            "id": self.id,
            "phoneNumber": self.phone_number,
            "displayName": self.display_name,
            "connectionStatus": self.connection_status,
            "environment": self.environment or environment,
            "lastConnectedAt": _maybe_iso(self.last_connected_at),
            "lastDisconnectedAt": _maybe_iso(self.last_disconnected_at),
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
        }

    def event_json(self) -> JsonObject:
        """The ``data`` of a ``phone.connected`` / ``phone.disconnected`` webhook."""
        return {
            "phoneId": self.id,
            "phoneNumber": self.phone_number,
            "displayName": self.display_name,
            "status": self.connection_status,
            "lastConnectedAt": _maybe_iso(self.last_connected_at),
            "lastDisconnectedAt": _maybe_iso(self.last_disconnected_at),
        }


def _maybe_iso(seconds: float | None) -> str | None:
    return None if seconds is None else iso(seconds)


@attrs.frozen(slots=True)
class SandboxMessage:
    """An outbound message, with the times of every transition it will go through.

    ``status`` is computed from the clock, so reading a message never needs a timer.
    ``key_fingerprint`` names the API key that created it (see ``key_fingerprint``).
    """

    id: str
    environment: Environment
    phone_id: str
    from_number: str
    to: str
    is_group: bool
    content: str | None
    media_urls: tuple[str, ...]
    idempotency_key: str | None
    key_fingerprint: str
    created_at: float
    sent_at: float | None
    delivered_at: float | None
    read_at: float | None
    failed_at: float | None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def group_id(self) -> str | None:
        """The group JID when the message went to a group."""
        return self.to if self.is_group else None

    @property
    def status(self) -> str:
        """The status right now."""
        return self.status_at(time.time())

    def status_at(self, now: float) -> str:
        """The status the message has at Unix time ``now``."""
        if self.failed_at is not None and self.failed_at <= now:
            return "failed"
        for status, at in (
            ("read", self.read_at),
            ("delivered", self.delivered_at),
            ("sent", self.sent_at),
        ):
            if at is not None and at <= now:
                return status
        return "pending"

    def reached(self, status: str, now: float) -> bool:
        """Whether the message had reached ``status`` by ``now`` (the usage counters' sense)."""
        at = {
            "pending": self.created_at,
            "sent": self.sent_at,
            "delivered": self.delivered_at,
            "read": self.read_at,
            "failed": self.failed_at,
        }[status]
        return at is not None and at <= now

    def transitions(self) -> tuple[tuple[str, float], ...]:
        """The webhook events this message will emit and when, in order."""
        events = (
            ("message.sent", self.sent_at),
            ("message.delivered", self.delivered_at),
            ("message.read", self.read_at),
            ("message.failed", self.failed_at),
        )
        return tuple((event, at) for event, at in events if at is not None)

    def to_json(self, now: float) -> JsonObject:
        """The message as the API returns it at Unix time ``now`` (contract §4.1)."""
        failed = self.failed_at is not None and self.failed_at <= now
        return {
            "id": self.id,
            "from": self.from_number,
            "to": self.to,
            "isGroup": self.is_group,
            "groupId": self.group_id,
            "content": self.content,
            "mediaUrls": list(self.media_urls),
            "environment": self.environment,
            "status": self.status_at(now),
            "errorCode": self.error_code if failed else None,
            "errorMessage": self.error_message if failed else None,
            "createdAt": iso(self.created_at),
            "sentAt": _iso_or_none(self.sent_at, now),
            "deliveredAt": _iso_or_none(self.delivered_at, now),
            "readAt": _iso_or_none(self.read_at, now),
            "failedAt": _iso_or_none(self.failed_at, now),
        }

    def event_json(self, now: float) -> JsonObject:
        """The ``data`` of a ``message.*`` status webhook, as of Unix time ``now``."""
        full = self.to_json(now)
        return {
            "messageId": self.id,
            "from": self.from_number,
            "to": self.to,
            "isGroup": self.is_group,
            "groupId": self.group_id,
            "status": full["status"],
            "source": "api",
            "environment": self.environment,
            "sentAt": full["sentAt"],
            "deliveredAt": full["deliveredAt"],
            "readAt": full["readAt"],
            "failedAt": full["failedAt"],
            "errorCode": full["errorCode"],
            "errorMessage": full["errorMessage"],
        }


@attrs.frozen(slots=True)
class InboundRecord:
    """A message one of the account's phones received (visible to live keys only)."""

    id: str
    phone_id: str
    from_number: str
    to: str
    content: str | None
    type: str
    group_id: str | None
    received_at: float

    def to_json(self) -> JsonObject:
        """The message as the inbound endpoints return it (contract §4.2)."""
        return {
            "id": self.id,
            "from": self.from_number,
            "to": self.to,
            "content": self.content,
            "type": self.type,
            "isGroup": self.group_id is not None,
            "groupId": self.group_id,
            "receivedAt": iso(self.received_at),
            "createdAt": iso(self.received_at),
        }

    def event_json(self) -> JsonObject:
        """The ``data`` of a ``message.received`` webhook."""
        return {
            "messageId": self.id,
            "from": self.from_number,
            "to": self.to,
            "content": self.content,
            "type": self.type,
            "isGroup": self.group_id is not None,
            "groupId": self.group_id,
            "receivedAt": iso(self.received_at),
        }


@attrs.define(slots=True)
class AccountRecord:
    """The one account every sandbox key belongs to."""

    account_id: str
    name: str
    email: str
    subscription_status: str
