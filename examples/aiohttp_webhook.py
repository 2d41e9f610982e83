"""Receive Chatmaid webhooks with aiohttp.web.

Run it (the secret comes from the dashboard, one per endpoint, test and live differ)::

    export CHATMAID_WEBHOOK_SECRET=whsec_...
    python examples/aiohttp_webhook.py

The handler verifies the raw body, queues the event and answers at once (400 for a delivery
that fails verification, 200 otherwise); a worker task handles the queue. Chatmaid repeats
deliveries, so events already seen are acknowledged and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from chatmaid_async.errors import ConfigurationError, WebhookVerificationError
from chatmaid_async.webhooks import (
    SIGNATURE_HEADER,
    MessageReceivedEvent,
    MessageStatusEvent,
    WebhookEvent,
    verify,
)

SECRET_ENV = "CHATMAID_WEBHOOK_SECRET"
PATH = "/webhooks/chatmaid"

logger = logging.getLogger("chatmaid_webhook_example")

Handler = Callable[[WebhookEvent], Awaitable[None]]

EVENTS: web.AppKey[asyncio.Queue[WebhookEvent]] = web.AppKey("chatmaid_events")


class RecentDeliveries:
    """Keys of the last ``size`` events handled, in memory.

    Enough for one process; with several workers use a shared store instead, e.g. Redis
    ``SET key 1 NX EX 86400``. Retries come up to about 20 minutes after the first attempt.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._keys: OrderedDict[str, None] = OrderedDict()

    def first_time(self, key: str) -> bool:
        """Record ``key``; True unless it was recorded already."""
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)
        return True


def dedupe_key(event: WebhookEvent, body: bytes) -> str:
    """The same key for every repeat of one event.

    A status event happens once per message and status; other events fall back to a hash of
    the body, which repeats unchanged as long as the envelope does.
    """
    if isinstance(event, (MessageStatusEvent, MessageReceivedEvent)) and event.data.message_id:
        return f"{event.event}:{event.data.message_id}"
    return hashlib.sha256(body).hexdigest()


async def log_event(event: WebhookEvent) -> None:
    """Default handler: replace with your own (update a database, notify someone...)."""
    # Event names only: message text and phone numbers stay out of logs.
    logger.info("chatmaid event %s", event.event)


def create_app(secret: str | None = None, handle: Handler = log_event) -> web.Application:
    """Build the receiver; ``secret`` defaults to ``$CHATMAID_WEBHOOK_SECRET``."""
    secret = secret or os.environ.get(SECRET_ENV)
    if not secret:
        # Fail at start-up, not with a 400 on every delivery.
        raise ConfigurationError(f"set {SECRET_ENV} to the endpoint's webhook secret")
    seen = RecentDeliveries()

    async def receive(request: web.Request) -> web.Response:
        # The raw bytes: parsed and re-dumped JSON would not match the signature.
        body = await request.read()
        try:
            event = verify(body, request.headers.get(SIGNATURE_HEADER), secret)
        except WebhookVerificationError as exc:
            return web.json_response({"error": exc.code}, status=400)

        if seen.first_time(dedupe_key(event, body)):
            request.app[EVENTS].put_nowait(event)
        return web.json_response({"received": True})

    async def run_worker(app: web.Application) -> AsyncIterator[None]:
        worker = asyncio.create_task(_work(app[EVENTS], handle))
        yield
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker

    app = web.Application()
    app[EVENTS] = asyncio.Queue()
    app.router.add_post(PATH, receive)
    app.cleanup_ctx.append(run_worker)
    return app


async def _work(events: asyncio.Queue[WebhookEvent], handle: Handler) -> None:
    # One failing event must not stop the worker; the delivery was acknowledged already.
    while True:
        event = await events.get()
        try:
            await handle(event)
        except Exception:
            logger.exception("handling chatmaid event %s failed", event.event)
        finally:
            events.task_done()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    web.run_app(create_app(), port=8000)
