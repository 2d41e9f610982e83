"""The :class:`Sandbox`: an in-memory Chatmaid API on a local port.

Everything a test arranges (keys, phones, groups, inbound messages, webhook, faults) goes
through plain methods that work before or after :meth:`Sandbox.start`; everything it observes
(counters, messages) is read straight from memory.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType, TracebackType

from aiohttp import web

from chatmaid_async._limits import RateLimit, redact_key
from chatmaid_async.sandbox._app import build_app
from chatmaid_async.sandbox._context import Context
from chatmaid_async.sandbox._counters import Counters
from chatmaid_async.sandbox._faults import FaultInjector, Faults
from chatmaid_async.sandbox._lifecycle import DEFAULT_PENDING_FOR, DEFAULT_STATUS_DELAYS, Lifecycle
from chatmaid_async.sandbox._ratelimit import WindowModel
from chatmaid_async.sandbox._records import (
    ALL_SCOPES,
    Environment,
    GroupRecord,
    InboundRecord,
    PhoneRecord,
    SandboxMessage,
)
from chatmaid_async.sandbox._store import Store
from chatmaid_async.sandbox._validation import is_e164, is_group_jid
from chatmaid_async.sandbox._webhooks import (
    DEFAULT_CONCURRENCY,
    DEFAULT_RETRY_DELAYS,
    DEFAULT_TIMEOUT,
    WEBHOOK_EVENTS,
    WebhookConfig,
    WebhookDispatcher,
)

__all__ = ["Sandbox"]

logger = logging.getLogger("chatmaid_async.sandbox")

INBOUND_TYPES = frozenset(
    {"text", "image", "video", "audio", "document", "sticker", "location", "contact", "other"}
)
# How long a graceful stop waits for requests in flight before cancelling them.
SHUTDOWN_TIMEOUT = 1.0


class Sandbox:
    """An in-memory Chatmaid API server for tests, demos and benchmarks.

    ``async with Sandbox() as sandbox:`` serves on ``sandbox.base_url`` (no ``/v1``) until the
    block ends. ``status_delays=(delivered_after, read_after)`` are seconds after ``sent``
    (None: never); ``pending_for`` is how long a live-key message stays ``pending``. ``seed``
    makes fault draws and resource ids repeatable (API keys stay random: they are secrets).
    ``webhook_retry_delays`` are seconds after the first attempt at which a failed delivery is
    retried.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        status_delays: tuple[float | None, float | None] = DEFAULT_STATUS_DELAYS,
        pending_for: float = DEFAULT_PENDING_FOR,
        seed: int | None = None,
        faults: Faults | None = None,
        webhook_retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        webhook_timeout: float = DEFAULT_TIMEOUT,
        webhook_concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._closed = False

        counters = Counters()
        store = Store(
            lifecycle=Lifecycle(status_delays, pending_for),
            id_rng=random.Random(None if seed is None else f"ids-{seed}"),
        )
        self._ctx = Context(
            store=store,
            counters=counters,
            faults=FaultInjector(faults, seed=seed),
            webhooks=WebhookDispatcher(
                counters,
                retry_delays=webhook_retry_delays,
                timeout=webhook_timeout,
                concurrency=webhook_concurrency,
            ),
        )

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the port and start serving; raises ``RuntimeError`` if started before."""
        if self._runner is not None or self._closed:
            raise RuntimeError("a Sandbox can be started only once")

        runner = web.AppRunner(
            build_app(self._ctx), access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        self._runner = runner
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
            self._port = int(runner.addresses[0][1])
            await self._ctx.webhooks.start()
        except BaseException:
            await self.aclose()
            raise
        logger.info("sandbox listening on %s", self.base_url)

    async def aclose(self) -> None:
        """Stop serving, cancel pending webhook work and close every connection. Idempotent."""
        self._closed = True
        await self._ctx.webhooks.aclose()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            logger.info("sandbox stopped")

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def host(self) -> str:
        """The interface the sandbox listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the real one when started with port 0)."""
        if self._port is None:
            raise RuntimeError("the sandbox is not started; use 'async with Sandbox()'")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://host:port``, without ``/v1``: the API lives under ``/v1`` below it."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    # -- arranging ----------------------------------------------------------------------------

    def create_key(
        self,
        scopes: Iterable[str] = ALL_SCOPES,
        *,
        live: bool = False,
        rate_limit: RateLimit | None = None,
        window: WindowModel = "sliding",
    ) -> str:
        """Create an API key and return it (``sk_test_…`` or, with ``live=True``, ``sk_live_…``).

        ``rate_limit=None`` means unlimited. ``window="sliding"`` allows at most
        ``rate_limit.requests`` in any ``per`` seconds; ``"fixed"`` counts in windows of
        ``per`` seconds starting at the key's first request.
        """
        if window not in ("sliding", "fixed"):
            raise ValueError(f"window must be 'sliding' or 'fixed', got {window!r}")
        environment: Environment = "live" if live else "test"
        return self._ctx.store.add_key(frozenset(scopes), environment, rate_limit, window).key

    def revoke_key(self, key: str) -> None:
        """Make ``key`` answer 401 from now on, like an expired key."""
        record = self._ctx.store.keys.get(key)
        if record is None:
            raise KeyError(f"no key {redact_key(key)} in the sandbox")
        record.revoked = True

    def add_phone(
        self,
        phone_number: str,
        connected: bool = True,
        *,
        display_name: str | None = None,
        environment: Environment | None = None,
    ) -> str:
        """Add a phone to the account and return its dashboard id (24 hex characters).

        ``environment=None`` makes it visible to test and live keys alike.
        """
        if not is_e164(phone_number):
            raise ValueError(
                f"phone_number must be E.164 (e.g. +15550100000), got {phone_number!r}"
            )
        phone = self._ctx.store.add_phone(
            phone_number,
            connected=connected,
            display_name=display_name,
            environment=environment,
            now=time.time(),
        )
        return phone.id

    def set_phone_connected(self, phone: str, connected: bool) -> None:
        """Connect or disconnect a phone (by id or E.164); emits ``phone.*`` webhooks."""
        record = self._phone(phone)
        now = time.time()
        if self._ctx.store.set_connected(record, connected, now):
            self._ctx.emit_phone_event(record, now)

    def add_group(
        self, phone: str, jid: str, name: str, is_community_announce: bool = False
    ) -> None:
        """Let ``phone`` (id or E.164) post to the group ``jid`` (``…@g.us``)."""
        if not is_group_jid(jid):
            raise ValueError(f"jid must be a group JID like 120363043211234567@g.us, got {jid!r}")
        self._ctx.store.add_group(
            self._phone(phone), GroupRecord(jid, name, is_community_announce)
        )

    def add_inbound(
        self,
        phone: str,
        from_: str,
        content: str | None,
        type: str = "text",
        *,
        group_id: str | None = None,
    ) -> str:
        """Record a message ``phone`` received and return its ``inmsg_…`` id.

        Only live keys list inbound messages; emits ``message.received``.
        """
        record = self._phone(phone)
        if record.environment == "test":
            raise ValueError("inbound messages are live-only; add the phone for live keys too")
        if type not in INBOUND_TYPES:
            raise ValueError(f"type must be one of {sorted(INBOUND_TYPES)}, got {type!r}")
        inbound = self._ctx.store.add_inbound(
            record,
            from_number=from_,
            content=content,
            type=type,
            group_id=group_id,
            now=time.time(),
        )
        self._ctx.emit_inbound_event(inbound)
        return inbound.id

    def set_account(
        self,
        *,
        name: str | None = None,
        email: str | None = None,
        subscription_status: str | None = None,
    ) -> None:
        """Change the account profile; a status other than ``active`` blocks live sends (403)."""
        account = self._ctx.store.account
        account.name = account.name if name is None else name
        account.email = account.email if email is None else email
        if subscription_status is not None:
            account.subscription_status = subscription_status

    def set_webhook(self, url: str, secret: str, events: Iterable[str] | None = None) -> None:
        """Deliver events to ``url`` signed with ``secret``; ``events=None`` means all of them.

        Only events of transitions scheduled from now on are delivered.
        """
        chosen = None if events is None else frozenset(events)
        unknown = set() if chosen is None else chosen - WEBHOOK_EVENTS
        if unknown:
            raise ValueError(f"unknown webhook events {sorted(unknown)}")
        self._ctx.webhooks.configure(WebhookConfig(url, secret, chosen))

    def clear_webhook(self) -> None:
        """Stop delivering webhooks; pending deliveries are dropped when they come due."""
        self._ctx.webhooks.configure(None)

    @property
    def faults(self) -> Faults:
        """The fault configuration in force."""
        return self._ctx.faults.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._ctx.faults.configure(faults)

    def set_faults(
        self,
        *,
        latency: float | tuple[float, float] = 0.0,
        error_503: float = 0.0,
        html_502: float = 0.0,
        drop_before: float = 0.0,
        drop_after: float = 0.0,
        slow_body: float = 0.0,
        slow_body_seconds: float = 0.5,
        paths: Iterable[str] | None = None,
        times: int | None = None,
        seed: int | None = None,
    ) -> Faults:
        """Replace the fault configuration (unnamed knobs go back to off); see :class:`Faults`.

        ``seed`` restarts the fault RNG so a run can be repeated. Returns the new configuration.
        """
        faults = Faults(
            latency=latency,
            error_503=error_503,
            html_502=html_502,
            drop_before=drop_before,
            drop_after=drop_after,
            slow_body=slow_body,
            slow_body_seconds=slow_body_seconds,
            paths=None if paths is None else frozenset(paths),
            times=times,
        )
        self._ctx.faults.configure(faults, seed=seed)
        return faults

    def clear_faults(self) -> None:
        """Turn every fault off."""
        self._ctx.faults.configure(Faults())

    # -- observing ----------------------------------------------------------------------------

    @property
    def counters(self) -> Counters:
        """The live counters (see :class:`Counters` for what each one means)."""
        return self._ctx.counters

    def reset_counters(self) -> None:
        """Zero every counter; keys, messages and rate-limit windows stay as they are."""
        self._ctx.counters.reset()

    @property
    def messages(self) -> Mapping[str, SandboxMessage]:
        """Every outbound message by id, oldest first (a read-only live view)."""
        return MappingProxyType(self._ctx.store.messages)

    @property
    def inbound(self) -> Mapping[str, InboundRecord]:
        """Every inbound message by id, oldest first (a read-only live view)."""
        return MappingProxyType(self._ctx.store.inbound)

    def _phone(self, ref: str) -> PhoneRecord:
        phone = self._ctx.store.find_phone(ref)
        if phone is None:
            raise KeyError(f"no phone {ref!r} in the sandbox account")
        return phone

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        store = self._ctx.store
        return (
            f"<Sandbox {where} keys={len(store.keys)} messages={len(store.messages)} "
            f"faults={self._ctx.faults.faults.total_share:.2f}>"
        )
