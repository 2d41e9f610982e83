"""Argument checks run before anything is sent (contract §3.1 and §12, F06)."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from aioresponses import aioresponses
from conftest import envelope, sent_requests

from chatmaid_async import Chatmaid, ValidationError

Call = Callable[[Chatmaid], Any]

SENDER = "+15551234567"
RECIPIENT = "+15557654321"
MESSAGE = {"id": "msg_1", "status": "sent"}
EMOJI = "\U0001f600"  # one code point, two UTF-16 code units
LONE_SURROGATE = "\ud83d"  # one UTF-16 code unit that Python cannot encode strictly


def send(**overrides: Any) -> Call:
    arguments: dict[str, Any] = {"from_phone_id": SENDER, "to": RECIPIENT, "content": "hi"}
    arguments.update(overrides)
    return lambda client: client.messages.send(**arguments)


async def _invoke(call: Call, client: Chatmaid) -> Any:
    result = call(client)
    if inspect.isawaitable(result):
        return await result
    if hasattr(result, "__anext__"):
        return [item async for item in result]
    return result


def _mock_everything(mock: aioresponses) -> None:
    listing = {"data": [], "pagination": {"page": 1, "limit": 20, "total": 0, "totalPages": 0}}
    anything = re.compile(r".*")
    mock.post(anything, payload=envelope(MESSAGE), status=201, repeat=True)
    mock.get(re.compile(r".*/v1/messages(/inbound)?\?.*"), payload=envelope(listing), repeat=True)
    mock.get(re.compile(r".*/v1/messages/.*"), payload=envelope(MESSAGE), repeat=True)
    mock.get(re.compile(r".*/v1/(groups|phone-numbers)\?.*"), payload=envelope([]), repeat=True)
    mock.get(anything, payload=envelope({"id": "ph_1"}), repeat=True)


INVALID: list[Any] = [
    # send: sender and recipient
    pytest.param(send(from_phone_id=""), "from_phone_id", id="send-from-empty"),
    pytest.param(send(from_phone_id="   "), "from_phone_id", id="send-from-blank"),
    pytest.param(send(from_phone_id=None), "from_phone_id", id="send-from-none"),
    pytest.param(send(from_phone_id=15551234567), "from_phone_id", id="send-from-int"),
    pytest.param(send(from_phone_id="+1555"), "from_phone_id", id="send-from-short-e164"),
    pytest.param(send(from_phone_id="ph 1"), "from_phone_id", id="send-from-space"),
    pytest.param(send(to=""), "to", id="send-to-empty"),
    pytest.param(send(to=None), "to", id="send-to-none"),
    pytest.param(send(to=15557654321), "to", id="send-to-int"),
    pytest.param(send(to="15557654321"), "to", id="send-to-no-plus"),
    pytest.param(send(to="+1 555 765 4321"), "to", id="send-to-spaces"),
    pytest.param(send(to="group@g.us"), "to", id="send-to-bad-jid"),
    # send: content and media
    pytest.param(send(content=None), "content", id="send-nothing-to-send"),
    pytest.param(send(content="", media_urls=[]), "content", id="send-empty-content-and-media"),
    pytest.param(send(content="a" * 4097), "content", id="send-4097-ascii"),
    pytest.param(send(content=EMOJI * 2049), "content", id="send-2049-emoji"),
    pytest.param(send(content=EMOJI * 4096), "content", id="send-4096-emoji"),
    pytest.param(send(content="a" * 4095 + EMOJI), "content", id="send-4095-ascii-plus-emoji"),
    pytest.param(send(content=LONE_SURROGATE * 4097), "content", id="send-4097-lone-surrogates"),
    pytest.param(send(content=123), "content", id="send-content-int"),
    pytest.param(send(content=b"hi"), "content", id="send-content-bytes"),
    pytest.param(
        send(media_urls="https://cdn.example/a.jpg"), "media_urls", id="send-media-lone-string"
    ),
    pytest.param(
        send(media_urls=["http://cdn.example/a.jpg"]), "media_urls", id="send-media-http"
    ),
    pytest.param(send(media_urls=["/a.jpg"]), "media_urls", id="send-media-relative"),
    pytest.param(send(media_urls=["ftp://cdn.example/a.jpg"]), "media_urls", id="send-media-ftp"),
    pytest.param(send(media_urls=["https://"]), "media_urls", id="send-media-no-host"),
    pytest.param(
        send(media_urls=["https://cdn.example/a b.jpg"]), "media_urls", id="send-media-space"
    ),
    pytest.param(send(media_urls=[None]), "media_urls", id="send-media-none-item"),
    pytest.param(send(media_urls=["https://[::1"]), "media_urls", id="send-media-unparseable"),
    pytest.param(send(media_urls=42), "media_urls", id="send-media-int"),
    pytest.param(
        send(media_urls=b"https://cdn.example/a.jpg"), "media_urls", id="send-media-bytes"
    ),
    # send: idempotency key (F06)
    pytest.param(send(idempotency_key="k" * 65), "idempotency_key", id="send-key-65"),
    pytest.param(send(idempotency_key=""), "idempotency_key", id="send-key-empty"),
    pytest.param(send(idempotency_key=42), "idempotency_key", id="send-key-int"),
    # reading one message
    pytest.param(lambda c: c.messages.get(""), "message_id", id="get-empty"),
    pytest.param(lambda c: c.messages.get(None), "message_id", id="get-none"),
    pytest.param(lambda c: c.messages.get(7), "message_id", id="get-int"),
    pytest.param(lambda c: c.messages.get("msg 1"), "message_id", id="get-space"),
    pytest.param(lambda c: c.messages.get("a/b"), "message_id", id="get-slash"),
    pytest.param(lambda c: c.messages.get(".."), "message_id", id="get-dot-dot"),
    pytest.param(lambda c: c.messages.get("."), "message_id", id="get-dot"),
    pytest.param(lambda c: c.messages.get("inbound"), "message_id", id="get-route-inbound"),
    pytest.param(lambda c: c.messages.get("send"), "message_id", id="get-route-send"),
    pytest.param(lambda c: c.messages.get_inbound(""), "message_id", id="get-inbound-empty"),
    pytest.param(lambda c: c.messages.get_inbound(".."), "message_id", id="get-inbound-dot-dot"),
    # listing
    pytest.param(lambda c: c.messages.list(page=0), "page", id="list-page-0"),
    pytest.param(lambda c: c.messages.list(page=-1), "page", id="list-page-negative"),
    pytest.param(lambda c: c.messages.list(page=1.5), "page", id="list-page-float"),
    pytest.param(lambda c: c.messages.list(page="2"), "page", id="list-page-str"),
    pytest.param(lambda c: c.messages.list(page=True), "page", id="list-page-bool"),
    pytest.param(lambda c: c.messages.list(limit=0), "limit", id="list-limit-0"),
    pytest.param(lambda c: c.messages.list(limit=101), "limit", id="list-limit-101"),
    pytest.param(lambda c: c.messages.list(limit=None), "limit", id="list-limit-none"),
    pytest.param(lambda c: c.messages.list(status=""), "status", id="list-status-empty"),
    pytest.param(lambda c: c.messages.list(status=3), "status", id="list-status-int"),
    pytest.param(
        lambda c: c.messages.list(phone_number_id=""), "phone_number_id", id="list-phone-empty"
    ),
    pytest.param(lambda c: c.messages.list_inbound(page=0), "page", id="inbound-page-0"),
    pytest.param(lambda c: c.messages.list_inbound(limit=101), "limit", id="inbound-limit-101"),
    pytest.param(
        lambda c: c.messages.list_inbound(phone_number_id=" "),
        "phone_number_id",
        id="inbound-phone-blank",
    ),
    pytest.param(lambda c: c.messages.iterate(page=0), "page", id="iterate-page-0"),
    pytest.param(lambda c: c.messages.iterate(limit=101), "limit", id="iterate-limit-101"),
    pytest.param(lambda c: c.messages.iterate_inbound(limit=0), "limit", id="iterate-in-limit-0"),
    # groups, phones, usage
    pytest.param(lambda c: c.groups.list(""), "from_phone_id", id="groups-empty"),
    pytest.param(lambda c: c.groups.list(None), "from_phone_id", id="groups-none"),
    pytest.param(lambda c: c.phone_numbers.get(""), "id_or_e164", id="phone-get-empty"),
    pytest.param(lambda c: c.phone_numbers.get("+1"), "id_or_e164", id="phone-get-short-e164"),
    pytest.param(lambda c: c.phone_numbers.get(None), "id_or_e164", id="phone-get-none"),
    pytest.param(lambda c: c.phone_numbers.status(""), "id_or_e164", id="phone-status-empty"),
    pytest.param(lambda c: c.phone_numbers.status(".."), "id_or_e164", id="phone-status-dot-dot"),
    pytest.param(lambda c: c.account.usage("year"), "period", id="usage-year"),
    pytest.param(lambda c: c.account.usage("Week"), "period", id="usage-capitalised"),
    pytest.param(lambda c: c.account.usage(""), "period", id="usage-empty"),
    pytest.param(lambda c: c.account.usage(None), "period", id="usage-none"),
]


@pytest.mark.parametrize(("call", "field"), INVALID)
async def test_invalid_argument_raises_validation_error_and_sends_nothing(
    client: Chatmaid, mocked: aioresponses, call: Call, field: str
) -> None:
    _mock_everything(mocked)

    with pytest.raises(ValidationError) as caught:
        await _invoke(call, client)

    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(f"{field}: ")
    assert sent_requests(mocked) == []


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.messages.iterate(page=0), id="iterate"),
        pytest.param(lambda c: c.messages.iterate_inbound(limit=0), id="iterate-inbound"),
    ],
)
def test_iterate_checks_its_arguments_when_called_not_when_first_awaited(
    client: Chatmaid, call: Call
) -> None:
    with pytest.raises(ValidationError):
        call(client)


VALID: list[Any] = [
    pytest.param(send(content="a" * 4096), id="send-4096-ascii"),
    pytest.param(send(content=EMOJI * 2048), id="send-2048-emoji"),
    pytest.param(send(content="a" * 4094 + EMOJI), id="send-4094-ascii-plus-emoji"),
    pytest.param(send(content="é" * 4096), id="send-4096-accented"),
    pytest.param(send(content=LONE_SURROGATE * 3000), id="send-3000-lone-surrogates"),
    pytest.param(send(idempotency_key="k" * 64), id="send-key-64"),
    pytest.param(send(to="120363043211234567@g.us"), id="send-to-group-jid"),
    pytest.param(send(to="15551234567-1609459200@g.us"), id="send-to-legacy-group-jid"),
    pytest.param(send(from_phone_id="ph_test_1"), id="send-from-dashboard-id"),
    pytest.param(send(from_phone_id="507f1f77bcf86cd799439011"), id="send-from-hex-object-id"),
    pytest.param(
        send(content=None, media_urls=["https://cdn.example/a.jpg"]), id="send-media-only"
    ),
    pytest.param(
        send(media_urls=("https://cdn.example/a.jpg", "https://cdn.example/b.png?x=1")),
        id="send-media-tuple",
    ),
    pytest.param(
        send(media_urls=(u for u in ["https://cdn.example/a.jpg"])), id="send-media-generator"
    ),
    pytest.param(lambda c: c.messages.list(page=1, limit=1), id="list-limit-1"),
    pytest.param(lambda c: c.messages.list(page=9999, limit=100), id="list-limit-100"),
    pytest.param(lambda c: c.messages.get("msg_abc123"), id="get"),
    pytest.param(lambda c: c.groups.list("507f1f77bcf86cd799439011"), id="groups-hex-id"),
    pytest.param(lambda c: c.phone_numbers.get("507f1f77bcf86cd799439011"), id="phone-hex-id"),
    pytest.param(lambda c: c.phone_numbers.get("+15551234567"), id="phone-e164"),
    pytest.param(lambda c: c.account.usage("day"), id="usage-day"),
    pytest.param(lambda c: c.account.usage("week"), id="usage-week"),
    pytest.param(lambda c: c.account.usage("month"), id="usage-month"),
]


@pytest.mark.parametrize("call", VALID)
async def test_valid_argument_at_the_boundary_is_sent_once(
    client: Chatmaid, mocked: aioresponses, call: Call
) -> None:
    _mock_everything(mocked)

    await _invoke(call, client)

    assert len(sent_requests(mocked)) == 1


@pytest.mark.parametrize(
    ("content", "utf16_units"),
    [("a" * 4096, 4096), (EMOJI * 2048, 4096), ("é" * 4096, 4096)],
)
async def test_content_at_the_limit_is_sent_unchanged(
    client: Chatmaid, mocked: aioresponses, content: str, utf16_units: int
) -> None:
    _mock_everything(mocked)

    await client.messages.send(SENDER, RECIPIENT, content)

    [(_, _, kwargs)] = sent_requests(mocked)
    sent = json.loads(kwargs["data"])["content"]
    assert sent == content
    assert len(sent.encode("utf-16-le")) // 2 == utf16_units


async def test_media_urls_from_a_generator_are_all_sent(
    client: Chatmaid, mocked: aioresponses
) -> None:
    _mock_everything(mocked)
    urls = ["https://cdn.example/a.jpg", "https://cdn.example/b.jpg"]

    await client.messages.send(SENDER, RECIPIENT, media_urls=(u for u in urls))

    [(_, _, kwargs)] = sent_requests(mocked)
    assert json.loads(kwargs["data"])["mediaUrls"] == urls


def test_validation_error_names_the_rule_broken() -> None:
    error = ValidationError("limit", "must be from 1 to 100")

    assert (error.field, error.rule) == ("limit", "must be from 1 to 100")
    assert str(error) == "limit: must be from 1 to 100"
