"""Signed webhook delivery (contract §10) with retries.

An event is scheduled for the moment its transition happens; a pool of workers POSTs it to the
registered URL. A failed attempt (non-2xx, connection error or timeout) is retried at the given
offsets after the first attempt, each attempt signed afresh so a receiver's timestamp tolerance
still accepts late retries. Nothing is scheduled while no webhook is registered, so the 100k
message benchmark pays nothing for this module.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence

import aiohttp
import attrs

from chatmaid_async._limits import redact_key
from chatmaid_async.sandbox._counters import Counters
from chatmaid_async.sandbox._records import JsonObject, iso
from chatmaid_async.webhooks import sign

__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "WEBHOOK_EVENTS",
    "WebhookConfig",
    "WebhookDispatcher",
    "retry_delay",
]

logger = logging.getLogger("chatmaid_async.sandbox")

# Seconds after the first attempt; the real service uses 1, 5 and 15 minutes.
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (0.1, 0.5, 1.5)
DEFAULT_TIMEOUT = 5.0
DEFAULT_CONCURRENCY = 8

WEBHOOK_EVENTS = frozenset(
    {
        "message.sent",
        "message.delivered",
        "message.read",
        "message.failed",
        "message.received",
        "phone.connected",
        "phone.disconnected",
    }
)


def retry_delay(
    offsets: Sequence[float], attempts_made: int, first_attempt_at: float, now: float
) -> float | None:
    """Seconds until the next attempt, or None when the retries are used up.

    ``offsets[i]`` is when retry ``i + 1`` is due, counted from the first attempt.
    """
    if attempts_made > len(offsets):
        return None
    return max(0.0, first_attempt_at + offsets[attempts_made - 1] - now)


@attrs.frozen(repr=False)
class WebhookConfig:
    """Where events go and the secret they are signed with; ``events=None`` means all."""

    url: str
    secret: str
    events: frozenset[str] | None = None

    def wants(self, event: str) -> bool:
        """Whether ``event`` is subscribed."""
        return self.events is None or event in self.events

    def __repr__(self) -> str:
        events = "all" if self.events is None else sorted(self.events)
        return f"<WebhookConfig url={self.url!r} secret={redact_key(self.secret)} events={events}>"


@attrs.define(slots=True)
class _Delivery:
    """One event on its way: the body is rendered once, at its first attempt."""

    event: str
    occurred_at: float
    render: Callable[[], JsonObject]
    body: bytes | None = None
    attempts: int = 0
    first_attempt_at: float = 0.0

    def encoded(self) -> bytes:
        if self.body is None:
            payload = {
                "event": self.event,
                "timestamp": iso(self.occurred_at),
                "data": self.render(),
            }
            self.body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return self.body


class WebhookDispatcher:
    """Schedules, signs, sends and retries webhook events on the sandbox's loop."""

    def __init__(
        self,
        counters: Counters,
        *,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout: float = DEFAULT_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self._counters = counters
        self._retry_delays = tuple(retry_delays)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._concurrency = concurrency
        self._config: WebhookConfig | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Delivery] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._next_timer = 0
        self._parked: list[tuple[float, _Delivery]] = []

    @property
    def config(self) -> WebhookConfig | None:
        """The registered webhook, if any."""
        return self._config

    def configure(self, config: WebhookConfig | None) -> None:
        """Register (or with None, remove) the webhook; events already due use the new one."""
        self._config = config

    def wants(self, event: str) -> bool:
        """Whether an ``event`` would be delivered now (cheap check before building one)."""
        return self._config is not None and self._config.wants(event)

    def emit(self, event: str, occurred_at: float, render: Callable[[], JsonObject]) -> None:
        """Deliver ``event`` at Unix time ``occurred_at``; ``render`` builds its ``data``."""
        if not self.wants(event):
            return
        delivery = _Delivery(event, occurred_at, render)
        self._schedule(occurred_at - time.time(), delivery)

    async def start(self) -> None:
        """Open the HTTP session and start the workers; events emitted earlier go out now."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._session = aiohttp.ClientSession()
        self._workers = [
            asyncio.create_task(self._work(), name=f"chatmaid-sandbox-webhooks-{n}")
            for n in range(self._concurrency)
        ]
        parked, self._parked = self._parked, []
        for at, delivery in parked:
            self._schedule(at - time.time(), delivery)

    async def aclose(self) -> None:
        """Drop pending events, stop the workers and close the session."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._parked.clear()

        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

        if self._session is not None:
            await self._session.close()
            self._session = None
        self._loop = None

    def _schedule(self, delay: float, delivery: _Delivery) -> None:
        # Before start() there is no loop to time against: park the event until there is.
        if self._loop is None or self._queue is None:
            self._parked.append((time.time() + delay, delivery))
            return
        if delay <= 0:
            self._queue.put_nowait(delivery)
            return
        ticket = self._next_timer
        self._next_timer += 1
        self._timers[ticket] = self._loop.call_later(delay, self._due, ticket, delivery)

    def _due(self, ticket: int, delivery: _Delivery) -> None:
        self._timers.pop(ticket, None)
        if self._queue is not None:
            self._queue.put_nowait(delivery)

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            delivery = await self._queue.get()
            try:
                await self._attempt(delivery)
            except Exception:
                logger.exception("webhook worker failed on %s", delivery.event)

    async def _attempt(self, delivery: _Delivery) -> None:
        # The webhook may have been removed or narrowed since the event was scheduled.
        config = self._config
        if config is None or not config.wants(delivery.event):
            return

        assert self._loop is not None
        if delivery.attempts == 0:
            delivery.first_attempt_at = self._loop.time()
        delivery.attempts += 1
        status = await self._post(config, delivery)
        logger.debug("webhook %s attempt %d: %s", delivery.event, delivery.attempts, status)
        if status is not None and 200 <= status < 300:
            self._counters.webhooks_delivered += 1
            return

        self._counters.webhook_attempts_failed += 1
        wait = retry_delay(
            self._retry_delays, delivery.attempts, delivery.first_attempt_at, self._loop.time()
        )
        if wait is None:
            self._counters.webhooks_given_up += 1
            logger.warning(
                "webhook %s given up after %d attempts", delivery.event, delivery.attempts
            )
            return
        self._schedule(wait, delivery)

    async def _post(self, config: WebhookConfig, delivery: _Delivery) -> int | None:
        """POST one attempt; the HTTP status, or None when no answer came."""
        assert self._session is not None
        body = delivery.encoded()
        headers = {
            "Content-Type": "application/json",
            "X-Chatmaid-Event": delivery.event,
            "X-Chatmaid-Signature": sign(body, config.secret, int(time.time())),
        }
        self._counters.webhook_attempts += 1
        try:
            async with self._session.post(
                config.url, data=body, headers=headers, timeout=self._timeout
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return None

    def __repr__(self) -> str:
        pending = len(self._timers) + (self._queue.qsize() if self._queue else 0)
        return f"<WebhookDispatcher {self._config!r} pending={pending}>"
