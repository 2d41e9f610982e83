"""Signed webhook delivery to a local receiver, with retries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from chatmaid_async.sandbox import Sandbox
from chatmaid_async.sandbox._webhooks import WebhookConfig, retry_delay
from chatmaid_async.webhooks import sign

from ._support import RECIPIENT, Api

SECRET = "whsec_test_secret_0123456789"


@attrs.define
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A local webhook endpoint that records deliveries and answers scripted statuses."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.statuses: list[int] = []  # answered in order; 200 once used up
        self.arrived = asyncio.Event()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.deliveries.append(Delivery(dict(request.headers), await request.read()))
        self.arrived.set()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status)

    async def wait_for(self, count: int, timeout: float = 3.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < count:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), deadline - time.monotonic())
        return self.deliveries

    def events(self) -> list[str]:
        return [delivery.json["event"] for delivery in self.deliveries]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/hooks"
    yield receiver
    await runner.cleanup()


def expected_signature(body: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def test_deliveries_are_signed_like_an_independent_hmac() -> None:
    body = b'{"event":"message.sent","data":{"content":"caf\\u00e9"}}\n'

    header = sign(body, SECRET, 1767225600)

    independent = hmac.new(SECRET.encode(), b"1767225600." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1767225600,v1={independent}"


@pytest.mark.parametrize(
    ("attempts", "first", "now", "expected"),
    [(1, 10.0, 10.0, 0.1), (2, 10.0, 10.2, 0.3), (3, 10.0, 10.5, 1.0), (3, 10.0, 12.0, 0.0)],
)
def test_retry_offsets_count_from_the_first_attempt(
    attempts: int, first: float, now: float, expected: float
) -> None:
    assert retry_delay((0.1, 0.5, 1.5), attempts, first, now) == pytest.approx(expected)


def test_no_retry_after_the_last_offset() -> None:
    assert retry_delay((0.1, 0.5, 1.5), 4, 0.0, 0.0) is None
    assert retry_delay((), 1, 0.0, 0.0) is None


def test_webhook_config_repr_hides_the_secret() -> None:
    config = WebhookConfig("https://example.com/hook", SECRET)

    assert SECRET not in repr(config)
    assert "whsec_" in repr(config)


def verify(delivery: Delivery) -> None:
    """Check a delivery the way a receiver must: over the raw bytes."""
    fields = dict(
        part.split("=", 1) for part in delivery.headers["X-Chatmaid-Signature"].split(",")
    )
    assert fields["v1"] == expected_signature(delivery.body, SECRET, int(fields["t"]))
    assert abs(int(fields["t"]) - time.time()) < 5
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers["X-Chatmaid-Event"] == delivery.json["event"]


async def test_every_transition_is_delivered_signed(
    api: Api, sandbox: Sandbox, receiver: Receiver, key: str, phone: str
) -> None:
    sandbox.set_webhook(receiver.url, SECRET)

    _, sent = await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="x")
    deliveries = await receiver.wait_for(3)

    assert receiver.events() == ["message.sent", "message.delivered", "message.read"]
    for delivery in deliveries:
        verify(delivery)
        payload = delivery.json
        assert set(payload) == {"event", "timestamp", "data"}
        assert payload["data"]["messageId"] == sent["data"]["id"]
        assert payload["data"]["source"] == "api"
        assert payload["data"]["environment"] == "test"
    # The SDK's own verifier accepts what the sandbox sends.
    from chatmaid_async import webhooks

    for delivery in deliveries:
        signature = delivery.headers["X-Chatmaid-Signature"]
        assert webhooks.verify(delivery.body, signature, SECRET) is not None
    read = deliveries[2].json["data"]
    assert read["status"] == "read"
    assert read["deliveredAt"] is not None
    assert deliveries[1].json["data"]["readAt"] is None
    assert sandbox.counters.webhooks_delivered == 3


async def test_failed_message_delivers_message_failed(
    api: Api, sandbox: Sandbox, receiver: Receiver, key: str, phone: str
) -> None:
    sandbox.set_webhook(receiver.url, SECRET)

    await api.send(key, fromPhoneId=phone, to="+15550009007", content="x")
    [delivery] = await receiver.wait_for(1)

    assert delivery.json["event"] == "message.failed"
    assert delivery.json["data"]["errorCode"] == "MEDIA_ERROR"
    assert delivery.json["data"]["status"] == "failed"


async def test_a_500_is_retried_and_signed_again(
    api: Api, sandbox: Sandbox, receiver: Receiver, key: str, phone: str
) -> None:
    sandbox.set_webhook(receiver.url, SECRET, events=["message.sent"])
    receiver.statuses = [500, 503]

    await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="x")
    deliveries = await receiver.wait_for(3)
    await asyncio.sleep(0.15)

    assert len(receiver.deliveries) == 3
    assert len({delivery.body for delivery in deliveries}) == 1  # the same event each time
    for delivery in deliveries:
        verify(delivery)
    counters = sandbox.counters
    assert (counters.webhook_attempts, counters.webhook_attempts_failed) == (3, 2)
    assert counters.webhooks_delivered == 1


async def test_delivery_is_given_up_after_the_last_retry(
    api: Api, sandbox: Sandbox, receiver: Receiver, key: str, phone: str
) -> None:
    sandbox.set_webhook(receiver.url, SECRET, events=["message.sent"])
    receiver.statuses = [500] * 10

    await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="x")
    await receiver.wait_for(4)
    await asyncio.sleep(0.3)

    assert len(receiver.deliveries) == 4  # the first attempt and three retries
    assert sandbox.counters.webhooks_given_up == 1


async def test_a_connection_error_is_retried(
    api: Api, sandbox: Sandbox, receiver: Receiver, key: str, phone: str
) -> None:
    # Nothing listens on the first URL; switching the webhook lets the retry succeed.
    sandbox.set_webhook("http://127.0.0.1:9/hooks", SECRET, events=["message.sent"])
    await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="x")
    await asyncio.sleep(0.02)
    sandbox.set_webhook(receiver.url, SECRET, events=["message.sent"])

    [delivery] = await receiver.wait_for(1)

    verify(delivery)
    assert sandbox.counters.webhook_attempts_failed >= 1


async def test_live_lifecycle_events_and_inbound_received(
    api: Api, sandbox: Sandbox, receiver: Receiver, live_key: str, phone: str
) -> None:
    sandbox.set_webhook(receiver.url, SECRET, events=["message.sent", "message.received"])

    await api.send(live_key, fromPhoneId=phone, to=RECIPIENT, content="x")
    inbound_id = sandbox.add_inbound(phone, "+15557654321", "hello back")
    deliveries = await receiver.wait_for(2)

    by_event = {delivery.json["event"]: delivery.json["data"] for delivery in deliveries}
    assert by_event["message.received"]["messageId"] == inbound_id
    assert by_event["message.received"]["content"] == "hello back"
    assert by_event["message.sent"]["environment"] == "live"
    assert by_event["message.sent"]["sentAt"] is not None


async def test_phone_connection_changes_are_delivered(
    sandbox: Sandbox, receiver: Receiver, phone: str
) -> None:
    sandbox.set_webhook(receiver.url, SECRET)

    sandbox.set_phone_connected(phone, False)
    sandbox.set_phone_connected(phone, False)  # no change, no event
    sandbox.set_phone_connected(phone, True)
    deliveries = await receiver.wait_for(2)

    assert receiver.events() == ["phone.disconnected", "phone.connected"]
    assert deliveries[0].json["data"]["phoneId"] == phone
    assert deliveries[0].json["data"]["status"] == "disconnected"


async def test_events_filter_and_clear_webhook(
    api: Api, sandbox: Sandbox, receiver: Receiver, key: str, phone: str
) -> None:
    sandbox.set_webhook(receiver.url, SECRET, events=["message.read"])
    await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="x")
    await receiver.wait_for(1)

    sandbox.clear_webhook()
    await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="y")
    await asyncio.sleep(0.15)

    assert receiver.events() == ["message.read"]


def test_unknown_event_names_are_rejected(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match=r"message\.bounced"):
        sandbox.set_webhook("http://127.0.0.1/x", SECRET, events=["message.bounced"])


async def test_no_webhook_means_nothing_is_scheduled(api: Api, key: str, phone: str) -> None:
    await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="x")


async def test_closing_with_deliveries_pending_leaves_nothing_behind(receiver: Receiver) -> None:
    sandbox = Sandbox(status_delays=(5.0, 10.0), webhook_retry_delays=(5.0,))
    await sandbox.start()
    sandbox.set_webhook(receiver.url, SECRET)
    receiver.statuses = [500]
    key = sandbox.create_key()
    phone = sandbox.add_phone("+15550100000")
    async with aiohttp.ClientSession(base_url=sandbox.base_url) as http:
        await Api(http).send(key, fromPhoneId=phone, to=RECIPIENT, content="x")
    await receiver.wait_for(1)

    await sandbox.aclose()
    await sandbox.aclose()  # idempotent

    assert len(receiver.deliveries) == 1
