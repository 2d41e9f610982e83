"""The sandbox's in-memory account: keys, phones, groups, messages and usage.

Every lookup a request makes is a dict access; lists keep insertion order so the newest-first
pages are slices from the end. Only the optional ``status`` filter and the usage report walk
messages, and the usage report stops at the start of its period.
"""

from __future__ import annotations

import random
import secrets
from collections import deque
from collections.abc import Sequence
from typing import TypeVar

import attrs

from chatmaid_async._limits import RateLimit, key_fingerprint, redact_key
from chatmaid_async.sandbox._lifecycle import Lifecycle
from chatmaid_async.sandbox._ratelimit import Window, WindowModel, make_window
from chatmaid_async.sandbox._records import (
    SANDBOX_GROUPS,
    AccountRecord,
    Environment,
    GroupRecord,
    InboundRecord,
    JsonObject,
    PhoneRecord,
    SandboxMessage,
    iso,
    new_id,
)
from chatmaid_async.sandbox._validation import SendCommand

__all__ = ["KeyRecord", "Store", "newest_first"]

T = TypeVar("T")

_PERIOD_SECONDS = {"day": 86_400.0, "week": 7 * 86_400.0, "month": 30 * 86_400.0}
_BUCKET_SECONDS = 60.0
_KEY_PREFIX: dict[Environment, str] = {"test": "sk_test_", "live": "sk_live_"}


@attrs.define(slots=True, repr=False)
class KeyRecord:
    """An API key: its environment, scopes and (optional) rate-limit window."""

    key: str
    fingerprint: str
    environment: Environment
    scopes: frozenset[str]
    window: Window | None
    revoked: bool = False

    def __repr__(self) -> str:
        return (
            f"<KeyRecord {redact_key(self.key)} {self.environment} scopes={sorted(self.scopes)}>"
        )


@attrs.define(slots=True)
class _Bucket:
    """Authenticated requests in one minute (``minute`` = Unix seconds // 60)."""

    minute: int
    successful: int = 0
    failed: int = 0


def newest_first(items: Sequence[T], page: int, limit: int) -> list[T]:
    """Page ``page`` (1-based) of ``items`` kept oldest first, returned newest first."""
    end = len(items) - (page - 1) * limit
    if end <= 0:
        return []
    return list(reversed(items[max(0, end - limit) : end]))


class Store:
    """All sandbox data. Not thread-safe: it lives on the sandbox's event loop."""

    def __init__(self, *, lifecycle: Lifecycle, id_rng: random.Random) -> None:
        self.lifecycle = lifecycle
        self._ids = id_rng
        self.account = AccountRecord(
            account_id=new_id(id_rng, "acc_"),
            name="Sandbox Account",
            email="sandbox@example.com",
            subscription_status="active",
        )
        self.keys: dict[str, KeyRecord] = {}
        self._phones: dict[str, PhoneRecord] = {}
        self._phones_by_number: dict[str, PhoneRecord] = {}
        self._groups: dict[str, list[GroupRecord]] = {}
        self.messages: dict[str, SandboxMessage] = {}
        self._messages_by_env: dict[Environment, list[SandboxMessage]] = {"test": [], "live": []}
        self._messages_by_phone: dict[tuple[Environment, str], list[SandboxMessage]] = {}
        self._idempotency: dict[tuple[Environment, str], SandboxMessage] = {}
        self.inbound: dict[str, InboundRecord] = {}
        self._inbound_list: list[InboundRecord] = []
        self._inbound_by_phone: dict[str, list[InboundRecord]] = {}
        self._api_requests: dict[Environment, deque[_Bucket]] = {"test": deque(), "live": deque()}

    def __repr__(self) -> str:
        return (
            f"<Store keys={len(self.keys)} phones={len(self._phones)} "
            f"messages={len(self.messages)} inbound={len(self.inbound)}>"
        )

    # -- keys ---------------------------------------------------------------------------------

    def add_key(
        self,
        scopes: frozenset[str],
        environment: Environment,
        rate_limit: RateLimit | None,
        window: WindowModel,
    ) -> KeyRecord:
        """Create a key; it is a real secret (``secrets``), unlike resource ids."""
        key = _KEY_PREFIX[environment] + secrets.token_hex(20)
        limiter = None if rate_limit is None else make_window(rate_limit, window)
        record = KeyRecord(key, key_fingerprint(key), environment, scopes, limiter)
        self.keys[key] = record
        return record

    def key_for_header(self, authorization: str | None) -> KeyRecord | None:
        """The key an ``Authorization: Bearer …`` header names, if it is one of ours."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.keys.get(token.strip())

    # -- phones and groups --------------------------------------------------------------------

    def add_phone(
        self,
        phone_number: str,
        *,
        connected: bool,
        display_name: str | None,
        environment: Environment | None,
        now: float,
    ) -> PhoneRecord:
        """Add a phone; raises ``ValueError`` if the number is already in the account."""
        if phone_number in self._phones_by_number:
            raise ValueError(f"phone {phone_number} is already in the sandbox account")
        phone = PhoneRecord(
            id=f"{self._ids.getrandbits(96):024x}",
            phone_number=phone_number,
            display_name=display_name,
            connection_status="connected" if connected else "disconnected",
            environment=environment,
            created_at=now,
            updated_at=now,
            last_connected_at=now if connected else None,
        )
        self._phones[phone.id] = phone
        self._phones_by_number[phone_number] = phone
        return phone

    def find_phone(self, ref: str, environment: Environment | None = None) -> PhoneRecord | None:
        """A phone by dashboard id or E.164 number, if a key of ``environment`` can see it."""
        phone = self._phones.get(ref) or self._phones_by_number.get(ref)
        if phone is None or (environment is not None and not phone.visible_to(environment)):
            return None
        return phone

    def phones_for(self, environment: Environment) -> list[PhoneRecord]:
        """The phones a key of ``environment`` lists, oldest first."""
        return [phone for phone in self._phones.values() if phone.visible_to(environment)]

    def set_connected(self, phone: PhoneRecord, connected: bool, now: float) -> bool:
        """Change a phone's connection; returns whether anything changed."""
        status = "connected" if connected else "disconnected"
        if phone.connection_status == status:
            return False
        phone.connection_status = status
        phone.updated_at = now
        if connected:
            phone.last_connected_at = now
        else:
            phone.last_disconnected_at = now
        return True

    def add_group(self, phone: PhoneRecord, group: GroupRecord) -> None:
        """Let ``phone`` post to ``group``."""
        self._groups.setdefault(phone.id, []).append(group)

    def groups_for(self, phone: PhoneRecord, environment: Environment) -> list[GroupRecord]:
        """Groups a phone lists: the static sandbox set for test keys, then added groups."""
        added = self._groups.get(phone.id, [])
        return [*SANDBOX_GROUPS, *added] if environment == "test" else list(added)

    # -- outbound messages --------------------------------------------------------------------

    def replay(
        self, environment: Environment, idempotency_key: str | None
    ) -> SandboxMessage | None:
        """The message an idempotency key already created in this environment, if any."""
        if idempotency_key is None:
            return None
        return self._idempotency.get((environment, idempotency_key))

    def create_message(
        self, key: KeyRecord, phone: PhoneRecord, command: SendCommand, now: float
    ) -> SandboxMessage:
        """Store a new message with its whole transition schedule."""
        schedule = self.lifecycle.schedule(key.environment, command.to, now)
        message = SandboxMessage(
            id=self._unused_message_id(),
            environment=key.environment,
            phone_id=phone.id,
            from_number=phone.phone_number,
            to=command.to,
            is_group=command.is_group,
            content=command.content,
            media_urls=command.media_urls,
            idempotency_key=command.idempotency_key,
            key_fingerprint=key.fingerprint,
            created_at=now,
            sent_at=schedule.sent_at,
            delivered_at=schedule.delivered_at,
            read_at=schedule.read_at,
            failed_at=schedule.failed_at,
            error_code=schedule.error_code,
            error_message=schedule.error_message,
        )
        self._index(message)
        return message

    def _unused_message_id(self) -> str:
        while True:
            message_id = new_id(self._ids, "msg_")
            if message_id not in self.messages:
                return message_id

    def _index(self, message: SandboxMessage) -> None:
        env = message.environment
        self.messages[message.id] = message
        self._messages_by_env[env].append(message)
        self._messages_by_phone.setdefault((env, message.phone_id), []).append(message)
        if message.idempotency_key is not None:
            self._idempotency[(env, message.idempotency_key)] = message

    def message(self, message_id: str, environment: Environment) -> SandboxMessage | None:
        """A message by id, if it belongs to ``environment``."""
        message = self.messages.get(message_id)
        return message if message is not None and message.environment == environment else None

    def message_page(
        self,
        environment: Environment,
        *,
        phone_id: str | None,
        status: str | None,
        page: int,
        limit: int,
        now: float,
    ) -> tuple[list[SandboxMessage], int]:
        """One newest-first page of messages and the total that match the filters."""
        if phone_id is None:
            source = self._messages_by_env[environment]
        else:
            source = self._messages_by_phone.get((environment, phone_id), [])

        # Status changes with the clock, so this filter has to look at each message.
        if status is not None:
            source = [message for message in source if message.status_at(now) == status]
        return newest_first(source, page, limit), len(source)

    def message_count(self, environment: Environment) -> int:
        """How many messages keys of ``environment`` have created."""
        return len(self._messages_by_env[environment])

    # -- inbound messages ---------------------------------------------------------------------

    def add_inbound(
        self,
        phone: PhoneRecord,
        *,
        from_number: str,
        content: str | None,
        type: str,
        group_id: str | None,
        now: float,
    ) -> InboundRecord:
        """Store a message ``phone`` received."""
        record = InboundRecord(
            id=new_id(self._ids, "inmsg_"),
            phone_id=phone.id,
            from_number=from_number,
            to=phone.phone_number,
            content=content,
            type=type,
            group_id=group_id,
            received_at=now,
        )
        self.inbound[record.id] = record
        self._inbound_list.append(record)
        self._inbound_by_phone.setdefault(phone.id, []).append(record)
        return record

    def inbound_page(
        self, phone_id: str | None, page: int, limit: int
    ) -> tuple[list[InboundRecord], int]:
        """One newest-first page of received messages (live keys only call this)."""
        source = (
            self._inbound_list if phone_id is None else self._inbound_by_phone.get(phone_id, [])
        )
        return newest_first(source, page, limit), len(source)

    # -- account and usage --------------------------------------------------------------------

    def account_json(self, environment: Environment) -> JsonObject:
        """``GET /v1/account`` in the documented shape (contract §4.6)."""
        account = self.account
        return {
            "accountId": account.account_id,
            "name": account.name,
            "email": account.email,
            "subscriptionStatus": account.subscription_status,
            "stats": {
                "apiKeys": sum(1 for key in self.keys.values() if not key.revoked),
                "phoneNumbers": len(self.phones_for(environment)),
                "messages": self.message_count(environment),
            },
        }

    def record_api_request(self, environment: Environment, ok: bool, now: float) -> None:
        """Count one authenticated request in per-minute buckets (for ``apiRequests``)."""
        buckets = self._api_requests[environment]
        minute = int(now // _BUCKET_SECONDS)
        if not buckets or buckets[-1].minute != minute:
            buckets.append(_Bucket(minute))
            horizon = minute - _PERIOD_SECONDS["month"] / _BUCKET_SECONDS
            while buckets[0].minute < horizon:
                buckets.popleft()
        if ok:
            buckets[-1].successful += 1
        else:
            buckets[-1].failed += 1

    def usage_json(self, environment: Environment, period: str, now: float) -> JsonObject:
        """``GET /v1/account/usage``: a rolling window ending now (contract §4.7).

        Each message count means "reached at least this status"; ``pending`` is the
        messages still pending now.
        """
        start = now - _PERIOD_SECONDS[period]
        return {
            "period": period,
            "startDate": iso(start),
            "endDate": iso(now),
            "messages": self._message_usage(environment, start, now),
            "apiRequests": self._request_usage(environment, start),
        }

    def _message_usage(self, environment: Environment, start: float, now: float) -> JsonObject:
        counts = dict.fromkeys(("total", "pending", "sent", "delivered", "read", "failed"), 0)

        # Messages are stored oldest first, so walk back from the newest to the period start.
        for message in reversed(self._messages_by_env[environment]):
            if message.created_at < start:
                break
            counts["total"] += 1
            counts["pending"] += message.status_at(now) == "pending"
            for status in ("sent", "delivered", "read", "failed"):
                counts[status] += message.reached(status, now)
        return dict(counts)

    def _request_usage(self, environment: Environment, start: float) -> JsonObject:
        first_minute = start // _BUCKET_SECONDS
        buckets = [b for b in self._api_requests[environment] if b.minute >= first_minute]
        ok = sum(bucket.successful for bucket in buckets)
        failed = sum(bucket.failed for bucket in buckets)
        return {"total": ok + failed, "successful": ok, "failed": failed}
