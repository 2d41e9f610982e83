"""Decoding API objects into models: names, timestamps, tolerance, clear failures (F20, F21)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import cattrs
import pytest
from aioresponses import aioresponses
from conftest import BASE, envelope
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmaid_async import (
    Account,
    Chatmaid,
    ConnectionStatus,
    DecodingError,
    Group,
    InboundMessage,
    Message,
    MessageErrorCode,
    MessageStatus,
    Page,
    Pagination,
    PhoneNumber,
    PhoneNumberStatus,
    Usage,
    _timestamps,
)
from chatmaid_async.models import (
    AccountStats,
    InboundMessageType,
    _sent_message_as_is,
    decode,
    decode_sent,
)

UTC = timezone.utc
ANYTHING = re.compile(r".*")

F21_FORMS = [
    ("2026-03-20T19:26:08Z", datetime(2026, 3, 20, 19, 26, 8, tzinfo=UTC)),
    ("2026-03-20T19:26:08.123Z", datetime(2026, 3, 20, 19, 26, 8, 123000, tzinfo=UTC)),
    ("2026-03-20T19:26:08.123456Z", datetime(2026, 3, 20, 19, 26, 8, 123456, tzinfo=UTC)),
    ("2026-03-20T19:26:08+00:00", datetime(2026, 3, 20, 19, 26, 8, tzinfo=UTC)),
    ("2026-03-20T19:26:08.1234567Z", datetime(2026, 3, 20, 19, 26, 8, 123456, tzinfo=UTC)),
    (None, None),
]

MESSAGE_JSON: dict[str, Any] = {
    "id": "msg_1",
    "from": "+15551234567",
    "to": "120363043211234567@g.us",
    "isGroup": True,
    "groupId": "120363043211234567@g.us",
    "content": "hi",
    "mediaUrls": ["https://cdn.example/a.jpg"],
    "environment": "live",
    "status": "failed",
    "errorCode": "MEDIA_ERROR",
    "errorMessage": "could not fetch media",
    "createdAt": "2026-02-06T14:18:33.000Z",
    "sentAt": "2026-02-06T14:18:34.000Z",
    "deliveredAt": "2026-02-06T14:18:35.000Z",
    "readAt": "2026-02-06T14:18:36.000Z",
    "failedAt": "2026-02-06T14:18:37.000Z",
}


def second(n: int) -> datetime:
    return datetime(2026, 2, 6, 14, 18, n, tzinfo=UTC)


# --- names ----------------------------------------------------------------------------------


def test_message_fields_are_the_camel_case_fields_in_snake_case() -> None:
    message = decode(MESSAGE_JSON, Message, "/v1/messages/{}")

    assert message == Message(
        id="msg_1",
        from_number="+15551234567",
        to="120363043211234567@g.us",
        is_group=True,
        group_id="120363043211234567@g.us",
        content="hi",
        media_urls=["https://cdn.example/a.jpg"],
        environment="live",
        status="failed",
        error_code="MEDIA_ERROR",
        error_message="could not fetch media",
        created_at=second(33),
        sent_at=second(34),
        delivered_at=second(35),
        read_at=second(36),
        failed_at=second(37),
    )
    assert message.is_terminal
    assert message.error_code == MessageErrorCode.MEDIA_ERROR


@pytest.mark.parametrize(
    ("status", "terminal"),
    [("pending", False), ("sent", False), ("delivered", True), ("read", True), ("failed", True)],
)
def test_delivered_read_and_failed_are_terminal(status: str, terminal: bool) -> None:
    message = decode({"id": "msg_1", "status": status}, Message, "/v1/messages/{}")
    assert message.is_terminal is terminal
    assert message.status == MessageStatus(status)


def test_inbound_message_and_group_and_phone_status_fields_map_from_camel_case() -> None:
    inbound = decode(
        {
            "id": "inmsg_1",
            "from": "+1555",
            "type": "sticker",
            "receivedAt": "2026-02-06T14:18:33Z",
        },
        InboundMessage,
        "/v1/messages/inbound/{}",
    )
    group = decode(
        {"id": "1@g.us", "name": "Team", "isCommunityAnnounce": True}, Group, "/v1/groups"
    )
    status = decode(
        {"id": "ph_1", "connectionStatus": "connecting", "lastDisconnectedAt": None},
        PhoneNumberStatus,
        "/v1/phone-numbers/{}/status",
    )

    assert (inbound.from_number, inbound.type, inbound.received_at) == (
        "+1555",
        InboundMessageType.STICKER,
        second(33),
    )
    assert (group.name, group.is_community_announce) == ("Team", True)
    assert (status.connection_status, status.last_disconnected_at) == ("connecting", None)


# --- F20: tolerance --------------------------------------------------------------------------


async def test_f20_account_with_extra_fields_decodes_and_keeps_them_in_raw(
    client: Chatmaid, mocked: aioresponses
) -> None:
    data = {
        "accountId": "acc_1",
        "name": "Acme",
        "email": "ops@acme.example",
        "subscriptionStatus": "active",
        "stats": {"apiKeys": 2, "phoneNumbers": 1, "messages": 328, "webhooks": 4},
        "plan": {"tier": "pro", "limits": {"x": 1}},
        "featureFlags": ["a"],
    }
    mocked.get(f"{BASE}/v1/account", payload=envelope(data))

    account = await client.account.get()

    assert account.account_id == "acc_1"
    assert account.stats == AccountStats(api_keys=2, phone_numbers=1, messages=328)
    assert account.raw["plan"] == {"tier": "pro", "limits": {"x": 1}}
    assert account.raw["featureFlags"] == ["a"]


async def test_f20_message_without_media_urls_and_with_null_error_code(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.get(
        f"{BASE}/v1/messages/msg_1",
        payload=envelope({"id": "msg_1", "status": "sent", "errorCode": None}),
    )

    message = await client.messages.get("msg_1")

    assert message.media_urls == []
    assert message.error_code is None
    assert message.error_message is None
    assert message.is_group is False
    assert (message.from_number, message.to, message.created_at) == (None, None, None)


async def test_f20_usage_with_an_extra_breakdown_decodes(
    client: Chatmaid, mocked: aioresponses
) -> None:
    data = {
        "period": "week",
        "messages": {"total": 3, "sent": 2, "failed": 1, "queued": 9},
        "apiRequests": {"total": 10, "successful": 9, "failed": 1},
        "breakdown": [{"day": "2026-01-01", "total": 3}],
    }
    mocked.get(f"{BASE}/v1/account/usage?period=week", payload=envelope(data))

    usage = await client.account.usage(period="week")

    assert usage.period == "week"
    assert (usage.messages.total, usage.messages.sent, usage.messages.failed) == (3, 2, 1)
    assert usage.messages.delivered == 0  # absent counters read as zero
    assert usage.api_requests.successful == 9
    assert usage.raw["breakdown"] == [{"day": "2026-01-01", "total": 3}]
    assert usage.start_date is None


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (Message, {"id": "msg_1", "status": "sent"}),
        (InboundMessage, {"id": "inmsg_1"}),
        (Group, {"id": "1@g.us"}),
        (PhoneNumber, {"id": "ph_1"}),
        (PhoneNumberStatus, {"id": "ph_1"}),
        (Account, {}),
        (Usage, {}),
    ],
)
def test_f20_extra_fields_never_break_decoding_and_stay_in_raw(
    model: type[Any], data: dict[str, Any]
) -> None:
    extra = {"futureField": {"nested": [1, 2]}, "anotherOne": None, "id_2": 3}

    decoded = decode({**data, **extra}, model, "/v1/x")

    assert decoded.raw == {**data, **extra}


@pytest.mark.parametrize(
    ("model", "data", "field", "endpoint"),
    [
        (Message, {"status": "sent"}, "id", "/v1/messages/{}"),
        (Message, {"id": "msg_1"}, "status", "/v1/messages/{}"),
        (Message, {"id": None, "status": "sent"}, "id", "/v1/messages/send"),
        (InboundMessage, {"from": "+1555"}, "id", "/v1/messages/inbound/{}"),
        (Group, {"name": "Team"}, "id", "/v1/groups"),
        (PhoneNumber, {"phoneNumber": "+1555"}, "id", "/v1/phone-numbers/{}"),
        (PhoneNumberStatus, {"connectionStatus": "connected"}, "id", "/v1/phone-numbers/{}"),
    ],
)
def test_f20_missing_required_field_raises_decoding_error_naming_field_and_endpoint(
    model: type[Any], data: dict[str, Any], field: str, endpoint: str
) -> None:
    with pytest.raises(DecodingError) as caught:
        decode(data, model, endpoint)

    error = caught.value
    assert error.endpoint == endpoint
    assert re.search(rf"\b{field}\b", error.detail)
    assert endpoint in str(error)
    assert error.__cause__ is None
    assert not isinstance(error, (KeyError, cattrs.BaseValidationError))


async def test_f20_missing_id_from_an_endpoint_names_the_endpoint(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.get(ANYTHING, payload=envelope([{"id": "ph_1"}, {"phoneNumber": "+15551234567"}]))

    with pytest.raises(DecodingError) as caught:
        await client.phone_numbers.list()

    assert caught.value.endpoint == "/v1/phone-numbers"
    assert "data[1].id" in str(caught.value)


@pytest.mark.parametrize(
    ("model", "data", "where"),
    [
        pytest.param(Message, {"id": 123, "status": "sent"}, "id", id="id-int"),
        pytest.param(Message, {"id": "m", "status": 1}, "status", id="status-int"),
        pytest.param(Message, {"id": "m", "status": "s", "isGroup": "yes"}, "group", id="bool"),
        pytest.param(
            Message,
            {"id": "m", "status": "s", "mediaUrls": "https://cdn.example/a.jpg"},
            "media",
            id="media-urls-string",
        ),
        pytest.param(
            Message, {"id": "m", "status": "s", "mediaUrls": [1]}, "media", id="media-url-int"
        ),
        pytest.param(
            Message, {"id": "m", "status": "s", "mediaUrls": {"a": 1}}, "media", id="media-dict"
        ),
        pytest.param(
            Message, {"id": "m", "status": "s", "createdAt": "soon"}, "created", id="bad-date"
        ),
        pytest.param(
            Message,
            {"id": "m", "status": "s", "createdAt": 1767225600},
            "created",
            id="epoch-date",
        ),
        pytest.param(
            Message,
            {"id": "m", "status": "s", "sentAt": "2026-02-30T00:00:00Z"},
            "sent",
            id="impossible-date",
        ),
        pytest.param(Account, {"stats": "many"}, "stats", id="stats-string"),
        pytest.param(Account, {"stats": {"apiKeys": "2"}}, "stats", id="count-string"),
        pytest.param(Account, {"stats": {"apiKeys": True}}, "stats", id="count-bool"),
        pytest.param(Usage, {"messages": {"total": 1.5}}, "messages", id="count-float"),
        pytest.param(Message, None, "object", id="null-object"),
        pytest.param(Message, ["msg_1"], "object", id="list-for-object"),
        pytest.param(Group, "1@g.us", "object", id="string-for-object"),
        pytest.param(list[Group], [{"id": "1@g.us"}, "2@g.us"], "1", id="string-in-list"),
    ],
)
def test_wrong_types_raise_decoding_error(model: Any, data: Any, where: str) -> None:
    with pytest.raises(DecodingError) as caught:
        decode(data, model, "/v1/x")

    assert where in caught.value.detail


@pytest.mark.parametrize(
    ("model", "data", "attribute", "value"),
    [
        (Message, {"id": "m", "status": "queued"}, "status", "queued"),
        (PhoneNumber, {"id": "p", "connectionStatus": "banned"}, "connection_status", "banned"),
        (PhoneNumberStatus, {"id": "p", "connectionStatus": "qr_pending"}, "connection_status",
         "qr_pending"),
        (InboundMessage, {"id": "i", "type": "poll"}, "type", "poll"),
        (Message, {"id": "m", "status": "failed", "errorCode": "NEW_CODE"}, "error_code",
         "NEW_CODE"),
        (Account, {"subscriptionStatus": "past_due"}, "subscription_status", "past_due"),
    ],
)  # fmt: skip
def test_a_value_the_server_adds_later_is_kept_as_its_string(
    model: type[Any], data: dict[str, Any], attribute: str, value: str
) -> None:
    assert getattr(decode(data, model, "/v1/x"), attribute) == value


def test_connection_status_enum_lists_the_documented_and_sdk_values() -> None:
    assert {s.value for s in ConnectionStatus} == {
        "connected",
        "disconnected",
        "connecting",
        "qr_pending",
        "error",
    }
    assert ConnectionStatus.CONNECTED == "connected"


# --- Account: both shapes of contract §4.6 ------------------------------------------------------


def test_account_decodes_the_documented_shape() -> None:
    account = decode(
        {
            "accountId": "acc_1",
            "name": "Acme",
            "email": "ops@acme.example",
            "subscriptionStatus": "active",
            "stats": {"apiKeys": 2, "phoneNumbers": 1, "messages": 328},
        },
        Account,
        "/v1/account",
    )

    assert account == Account(
        account_id="acc_1",
        name="Acme",
        email="ops@acme.example",
        subscription_status="active",
        stats=AccountStats(api_keys=2, phone_numbers=1, messages=328),
    )


def test_account_decodes_the_js_sdk_shape() -> None:
    account = decode(
        {
            "email": "ops@acme.example",
            "name": None,
            "environment": "live",
            "subscriptionStatus": None,
            "phoneNumbersCount": 3,
            "messagesCount": 1200,
            "createdAt": "2025-12-01T10:00:00.000Z",
        },
        Account,
        "/v1/account",
    )

    assert account == Account(
        email="ops@acme.example",
        environment="live",
        phone_numbers_count=3,
        messages_count=1200,
        created_at=datetime(2025, 12, 1, 10, tzinfo=UTC),
    )


# --- F21: timestamps ------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), F21_FORMS)
@pytest.mark.parametrize("field", ["createdAt", "sentAt"])
def test_f21_timestamps_decode_to_aware_utc(
    text: str | None, expected: datetime | None, field: str
) -> None:
    message = decode({"id": "m", "status": "sent", field: text}, Message, "/v1/messages/{}")

    value = message.created_at if field == "createdAt" else message.sent_at
    assert value == expected
    if value is not None:
        assert value.utcoffset() == timedelta(0)


class _Python310Datetime(datetime):
    """``datetime`` whose ``fromisoformat`` accepts only what Python 3.10's does."""

    _GRAMMAR = re.compile(
        r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{3}|\.\d{6})?)?)?([+-]\d{2}:\d{2})?"
    )

    @classmethod
    def fromisoformat(cls, text: str) -> datetime:
        if not cls._GRAMMAR.fullmatch(text):
            raise ValueError(f"Invalid isoformat string: {text!r}")
        return datetime.fromisoformat(text)


@pytest.mark.parametrize(("text", "expected"), [f for f in F21_FORMS if f[0] is not None])
def test_f21_timestamps_parse_with_the_python_3_10_fromisoformat(
    monkeypatch: pytest.MonkeyPatch, text: str, expected: datetime
) -> None:
    monkeypatch.setattr(_timestamps, "datetime", _Python310Datetime)

    assert _timestamps.parse_timestamp(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-20T19:26:08", datetime(2026, 3, 20, 19, 26, 8, tzinfo=UTC)),
        ("2026-03-20T19:26:08.5z", datetime(2026, 3, 20, 19, 26, 8, 500000, tzinfo=UTC)),
        (
            "2026-03-20T21:26:08+02:00",
            datetime(2026, 3, 20, 21, 26, 8, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_timestamps_without_offset_are_utc_and_offsets_are_kept(
    text: str, expected: datetime
) -> None:
    parsed = _timestamps.parse_timestamp(text)

    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-20T19:26:08.123Z",
        "2026-03-20T19:26:08Z",
        "2026-03-20T19:26:08.123456789Z",
        "2026-03-20T19:26:08",
        "2026-03-20",
        " 2026-03-20T19:26:08.123Z ",
        "2026-03-20T21:26:08.5+02:00",
        "2026-03-20T19:26:08.123z",
    ],
)
def test_model_timestamps_decode_as_parse_timestamp_reads_them(text: str) -> None:
    # Models take a shortcut for the API's own shape; it must agree with the long way.
    message = decode({"id": "m", "status": "sent", "createdAt": text}, Message, "/v1/x")

    expected = _timestamps.parse_timestamp(text)
    assert message.created_at == expected
    assert message.created_at is not None
    assert message.created_at.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("value", ["", "soon", "2026-13-01T00:00:00Z", 1767225600, None])
def test_unparseable_timestamps_raise_value_error(value: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError is the documented contract
        _timestamps.parse_timestamp(value)


# --- pages ------------------------------------------------------------------------------------


def test_a_page_iterates_and_counts_its_items() -> None:
    items = [Group(id="1@g.us"), Group(id="2@g.us")]
    page = Page(data=items, pagination=Pagination(page=1, limit=20, total=2, total_pages=1))

    assert list(page) == items
    assert len(page) == 2


def test_null_usage_counts_read_as_zero() -> None:
    usage = decode(
        {"period": "day", "messages": {"total": None, "sent": 3}, "apiRequests": None},
        Usage,
        "/v1/account/usage",
    )

    assert usage.messages.total == 0
    assert usage.messages.sent == 3
    assert usage.api_requests.total == 0


# -- a send's answer: the usual shape decodes without cattrs, to the same message -------------

SEND_ENDPOINT = "/v1/messages/send"
SENT_KEY = "order-42"
# The contract's send answer (§4.1), every field filled.
SEND_ANSWER = {
    "id": "msg_abc123",
    "status": "sent",
    "from": "+15550100000",
    "to": "+15557654321",
    "content": "hello",
    "mediaUrls": ["https://cdn.example.com/a.png"],
    "isGroup": False,
    "groupId": None,
    "environment": "test",
    "errorCode": None,
    "errorMessage": None,
    "createdAt": "2026-01-01T00:00:00.000Z",
    "sentAt": "2026-01-01T00:00:01.000Z",
    "deliveredAt": None,
    "readAt": None,
    "failedAt": None,
}


class _Str(str):
    pass


_json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
_odd_values = _json_scalars | st.lists(_json_scalars, max_size=3) | st.builds(_Str, st.text())
_times = st.sampled_from(
    ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00", "2026-01-01 00:00:00+02:00", "x", ""]
)
_odd_values_by_field = {
    name: _odd_values | (_times if name.endswith("At") else st.nothing())
    for name in [*SEND_ANSWER, "idempotencyKey", "somethingNew"]
}
_odd_values_by_field["mediaUrls"] |= st.lists(
    st.text(max_size=3) | st.builds(_Str) | _json_scalars, min_size=1, max_size=3
)


@st.composite
def _send_answers(draw: st.DrawFn) -> dict[str, Any]:
    # The usual answer with a few fields dropped or changed: an answer far from it never takes
    # the path without cattrs, and would test nothing.
    answer = dict(SEND_ANSWER)
    for name in draw(st.lists(st.sampled_from(sorted(SEND_ANSWER)), max_size=2, unique=True)):
        del answer[name]
    changed = draw(st.lists(st.sampled_from(sorted(_odd_values_by_field)), max_size=3))
    for name in changed:
        answer[name] = draw(_odd_values_by_field[name])
    extra = draw(st.dictionaries(st.text(max_size=6), _odd_values, max_size=2))
    return {**extra, **answer}


@settings(max_examples=500, deadline=None)
@given(answer=_send_answers())
def test_a_send_answer_of_any_shape_decodes_as_the_general_pass_would(
    answer: dict[str, Any],
) -> None:
    try:
        expected: Any = attrs.evolve(
            decode(answer, Message, SEND_ENDPOINT), idempotency_key=SENT_KEY
        )
    except DecodingError as exc:
        expected = exc
    try:
        got: Any = decode_sent(dict(answer), SEND_ENDPOINT, SENT_KEY)
    except DecodingError as exc:
        got = exc

    if isinstance(expected, DecodingError):
        assert isinstance(got, DecodingError)
        assert (got.detail, got.idempotency_key) == (expected.detail, SENT_KEY)
        return
    assert got == expected
    assert dict(got.raw) == dict(expected.raw) == answer
    assert got.media_urls is not answer.get("mediaUrls")


def test_the_usual_send_answer_takes_the_path_without_cattrs() -> None:
    # The send path's speed rests on this; the general pass is several microseconds more.
    message = _sent_message_as_is(dict(SEND_ANSWER), SENT_KEY)

    assert message is not None
    assert message == attrs.evolve(
        decode(SEND_ANSWER, Message, SEND_ENDPOINT), idempotency_key=SENT_KEY
    )
    assert message.created_at == datetime(2026, 1, 1, tzinfo=UTC)
