"""Status progression for test and live keys, and the failure recipients."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from chatmaid_async.sandbox import FAILURE_RECIPIENTS, Sandbox
from chatmaid_async.sandbox._lifecycle import Lifecycle

from ._support import RECIPIENT, Api

ERROR_CODES = {
    "NOT_CONNECTED",
    "INVALID_RECIPIENT",
    "RECIPIENT_NOT_REACHABLE",
    "NOT_GROUP_MEMBER",
    "RATE_LIMITED",
    "NOT_AUTHORIZED",
    "MEDIA_ERROR",
    "TIMEOUT",
    "SERVICE_UNAVAILABLE",
    "INTERNAL_ERROR",
}


def test_failure_recipients_cover_every_error_code_once() -> None:
    assert sorted(FAILURE_RECIPIENTS.values()) == sorted(ERROR_CODES)
    assert all(number.startswith("+1555000") for number in FAILURE_RECIPIENTS)


def test_test_key_schedule_is_sent_at_once_then_delivered_then_read() -> None:
    schedule = Lifecycle((0.5, 2.0), pending_for=1.0).schedule("test", RECIPIENT, 100.0)

    assert (schedule.sent_at, schedule.delivered_at, schedule.read_at) == (100.0, 100.5, 102.0)
    assert schedule.failed_at is None


def test_live_key_schedule_stays_pending_first() -> None:
    schedule = Lifecycle((0.5, 2.0), pending_for=1.0).schedule("live", RECIPIENT, 100.0)

    assert (schedule.sent_at, schedule.delivered_at, schedule.read_at) == (101.0, 101.5, 103.0)


@pytest.mark.parametrize(
    ("delays", "expected"),
    [((None, None), (None, None)), ((1.0, None), (101.0, None)), ((None, 2.0), (None, 102.0))],
)
def test_a_none_delay_means_the_status_never_comes(
    delays: tuple[float | None, float | None], expected: tuple[float | None, float | None]
) -> None:
    schedule = Lifecycle(delays).schedule("test", RECIPIENT, 100.0)

    assert (schedule.delivered_at, schedule.read_at) == expected


@pytest.mark.parametrize("delays", [(-1.0, 1.0), (2.0, 1.0)])
def test_bad_delays_are_rejected(delays: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match=r"read_after|>= 0"):
        Lifecycle(delays)


def test_failure_schedule_for_test_and_live() -> None:
    lifecycle = Lifecycle((0.5, 2.0), pending_for=1.0)

    test = lifecycle.schedule("test", "+15550009001", 100.0)
    live = lifecycle.schedule("live", "+15550009001", 100.0)

    assert (test.sent_at, test.failed_at, test.error_code) == (None, 100.0, "NOT_CONNECTED")
    assert (live.sent_at, live.failed_at) == (None, 101.0)
    assert test.error_message


async def _status(api: Api, key: str, message_id: str) -> dict[str, object]:
    _, body = await api.get(f"/v1/messages/{message_id}", key)
    return body["data"]  # type: ignore[no-any-return]


async def test_test_key_message_goes_sent_delivered_read(api: Api, key: str, phone: str) -> None:
    _, sent = await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="x")
    message_id = sent["data"]["id"]
    assert sent["data"]["status"] == "sent"
    assert sent["data"]["deliveredAt"] is None

    await asyncio.sleep(0.07)
    delivered = await _status(api, key, message_id)
    await asyncio.sleep(0.06)
    read = await _status(api, key, message_id)

    assert delivered["status"] == "delivered"
    assert delivered["deliveredAt"] is not None
    assert delivered["readAt"] is None
    assert read["status"] == "read"
    assert read["readAt"] is not None
    assert read["sentAt"] == sent["data"]["sentAt"]


async def test_live_key_message_goes_pending_sent_delivered_read(
    api: Api, live_key: str, phone: str
) -> None:
    _, created = await api.send(live_key, fromPhoneId=phone, to=RECIPIENT, content="x")
    message_id = created["data"]["id"]
    seen = [created["data"]["status"]]

    for _ in range(40):
        await asyncio.sleep(0.01)
        status = (await _status(api, live_key, message_id))["status"]
        if status != seen[-1]:
            seen.append(status)

    assert created["data"]["environment"] == "live"
    assert created["data"]["sentAt"] is None
    assert seen == ["pending", "sent", "delivered", "read"]


@pytest.mark.parametrize(("number", "code"), sorted(FAILURE_RECIPIENTS.items()))
async def test_failure_recipient_fails_with_its_error_code(
    api: Api, key: str, phone: str, number: str, code: str
) -> None:
    status, body = await api.send(key, fromPhoneId=phone, to=number, content="x")

    assert status == 201
    message = body["data"]
    assert message["status"] == "failed"
    assert message["errorCode"] == code
    assert message["errorMessage"]
    assert message["failedAt"] is not None
    assert message["sentAt"] is None


async def test_live_failure_comes_after_pending(api: Api, live_key: str, phone: str) -> None:
    _, created = await api.send(live_key, fromPhoneId=phone, to="+15550009008", content="x")

    await asyncio.sleep(0.05)
    later = await _status(api, live_key, created["data"]["id"])

    assert created["data"]["status"] == "pending"
    assert created["data"]["errorCode"] is None
    assert later["status"] == "failed"
    assert later["errorCode"] == "TIMEOUT"


async def test_sandbox_message_status_is_computed_from_the_clock(
    api: Api, sandbox: Sandbox, key: str, phone: str
) -> None:
    _, created = await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="x")
    stored = sandbox.messages[created["data"]["id"]]

    assert stored.status_at(stored.created_at) == "sent"
    assert stored.status_at(stored.created_at + 0.06) == "delivered"
    assert stored.status_at(stored.created_at + 1) == "read"


async def test_skipped_delivered_goes_straight_to_read() -> None:
    async with Sandbox(status_delays=(None, 0.0)) as sandbox:
        key = sandbox.create_key()
        phone = sandbox.add_phone("+15550100000")
        async with aiohttp.ClientSession(base_url=sandbox.base_url) as http:
            _, body = await Api(http).send(key, fromPhoneId=phone, to=RECIPIENT, content="x")

    assert body["data"]["status"] == "read"
    assert body["data"]["deliveredAt"] is None
