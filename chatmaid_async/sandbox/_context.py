"""What every handler and middleware shares: the store, counters, faults and webhooks."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

import attrs

from chatmaid_async.sandbox._counters import Counters
from chatmaid_async.sandbox._faults import FaultInjector
from chatmaid_async.sandbox._records import InboundRecord, PhoneRecord, SandboxMessage
from chatmaid_async.sandbox._store import Store
from chatmaid_async.sandbox._webhooks import WebhookDispatcher

__all__ = ["Context"]


@attrs.define(eq=False)
class Context:
    """The sandbox's moving parts. ``monotonic`` times rate-limit windows."""

    store: Store
    counters: Counters
    faults: FaultInjector
    webhooks: WebhookDispatcher
    monotonic: Callable[[], float] = time.monotonic

    def emit_message_events(self, message: SandboxMessage) -> None:
        """Schedule a webhook for each transition the new message will go through."""
        if self.webhooks.config is None:
            return
        for event, at in message.transitions():
            self.webhooks.emit(event, at, partial(message.event_json, at))

    def emit_inbound_event(self, record: InboundRecord) -> None:
        """Schedule the ``message.received`` webhook for an inbound message."""
        self.webhooks.emit("message.received", record.received_at, record.event_json)

    def emit_phone_event(self, phone: PhoneRecord, now: float) -> None:
        """Schedule ``phone.connected`` or ``phone.disconnected`` for a phone that changed."""
        # The phone record changes later, so the event carries a copy taken now.
        snapshot = phone.event_json()
        self.webhooks.emit(f"phone.{phone.connection_status}", now, lambda: snapshot)
