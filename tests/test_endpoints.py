"""Every endpoint's exact request and decoded result (contract §2, §3; field report F29).

aioresponses matches on the URL only and records a normalised copy of it (F29), so these tests
answer every request with a catch-all matcher and assert what was sent from the recording. A
second table runs the same calls against a real loopback server and checks the bytes on the
wire: the raw path and query, the headers aiohttp adds or leaves out, and the body.
"""

from __future__ import annotations

import json
import logging
import platform
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import attrs
import pytest
from aiohttp import web
from aioresponses import aioresponses
from aioresponses.core import normalize_url
from conftest import BASE, KEY, envelope, sent_requests
from yarl import URL

from chatmaid_async import (
    Account,
    APIConnectionError,
    Chatmaid,
    Group,
    InboundMessage,
    Message,
    MessageStatus,
    Page,
    Pagination,
    PhoneNumber,
    PhoneNumberStatus,
    Usage,
    __version__,
    _transport,
)
from chatmaid_async.models import AccountStats, ApiRequestCounts, MessageCounts
from chatmaid_async.resources import messages as messages_module

UTC = timezone.utc
ANYTHING = re.compile(r".*")


def at(text: str) -> datetime:
    """The aware datetime an ISO 8601 ``...Z`` string stands for."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


MESSAGE_JSON = {
    "id": "msg_abc123def456",
    "from": "+15551234567",
    "to": "+15557654321",
    "isGroup": False,
    "groupId": None,
    "content": "hello",
    "mediaUrls": [],
    "environment": "test",
    "status": "sent",
    "errorCode": None,
    "errorMessage": None,
    "createdAt": "2026-02-06T14:18:33.000Z",
    "sentAt": "2026-02-06T14:18:33.512Z",
    "deliveredAt": None,
    "readAt": None,
    "failedAt": None,
}
MESSAGE = Message(
    id="msg_abc123def456",
    status="sent",
    from_number="+15551234567",
    to="+15557654321",
    content="hello",
    environment="test",
    created_at=datetime(2026, 2, 6, 14, 18, 33, tzinfo=UTC),
    sent_at=datetime(2026, 2, 6, 14, 18, 33, 512000, tzinfo=UTC),
)
FAILED_JSON = {
    **MESSAGE_JSON,
    "id": "msg_failed1",
    "to": "120363043211234567@g.us",
    "isGroup": True,
    "groupId": "120363043211234567@g.us",
    "content": None,
    "mediaUrls": ["https://cdn.example/a.jpg"],
    "status": "failed",
    "errorCode": "NOT_GROUP_MEMBER",
    "errorMessage": "not a member",
    "failedAt": "2026-02-06T14:18:34.000Z",
}
FAILED = attrs.evolve(
    MESSAGE,
    id="msg_failed1",
    to="120363043211234567@g.us",
    is_group=True,
    group_id="120363043211234567@g.us",
    content=None,
    media_urls=["https://cdn.example/a.jpg"],
    status="failed",
    error_code="NOT_GROUP_MEMBER",
    error_message="not a member",
    failed_at=at("2026-02-06T14:18:34.000Z"),
)
INBOUND_JSON = {
    "id": "inmsg_1",
    "from": "+15557654321",
    "to": "+15551234567",
    "content": "hi back",
    "type": "image",
    "isGroup": True,
    "groupId": "120363043211234567@g.us",
    "receivedAt": "2026-02-06T15:00:00.000Z",
    "createdAt": "2026-02-06T15:00:01.000Z",
}
INBOUND = InboundMessage(
    id="inmsg_1",
    from_number="+15557654321",
    to="+15551234567",
    content="hi back",
    type="image",
    is_group=True,
    group_id="120363043211234567@g.us",
    received_at=at("2026-02-06T15:00:00.000Z"),
    created_at=at("2026-02-06T15:00:01.000Z"),
)
GROUP_JSON = {"id": "120363043211234567@g.us", "name": "Team", "isCommunityAnnounce": True}
GROUP = Group(id="120363043211234567@g.us", name="Team", is_community_announce=True)
PHONE_JSON = {
    "id": "507f1f77bcf86cd799439011",
    "phoneNumber": "+15551234567",
    "displayName": "Support",
    "connectionStatus": "connected",
    "environment": "test",
    "lastConnectedAt": "2026-02-01T08:00:00.000Z",
    "lastDisconnectedAt": None,
    "createdAt": "2026-01-01T00:00:00.000Z",
    "updatedAt": "2026-02-01T08:00:00.000Z",
}
PHONE = PhoneNumber(
    id="507f1f77bcf86cd799439011",
    phone_number="+15551234567",
    display_name="Support",
    connection_status="connected",
    environment="test",
    last_connected_at=at("2026-02-01T08:00:00.000Z"),
    created_at=at("2026-01-01T00:00:00.000Z"),
    updated_at=at("2026-02-01T08:00:00.000Z"),
)
STATUS_JSON = {
    "id": "507f1f77bcf86cd799439011",
    "phoneNumber": "+15551234567",
    "connectionStatus": "disconnected",
    "lastConnectedAt": "2026-02-01T08:00:00.000Z",
    "lastDisconnectedAt": "2026-02-02T09:00:00.000Z",
    "updatedAt": "2026-02-02T09:00:00.000Z",
}
STATUS = PhoneNumberStatus(
    id="507f1f77bcf86cd799439011",
    phone_number="+15551234567",
    connection_status="disconnected",
    last_connected_at=at("2026-02-01T08:00:00.000Z"),
    last_disconnected_at=at("2026-02-02T09:00:00.000Z"),
    updated_at=at("2026-02-02T09:00:00.000Z"),
)
ACCOUNT_JSON = {
    "accountId": "acc_1",
    "name": "Acme",
    "email": "ops@acme.example",
    "subscriptionStatus": "active",
    "stats": {"apiKeys": 2, "phoneNumbers": 1, "messages": 328},
}
ACCOUNT = Account(
    account_id="acc_1",
    name="Acme",
    email="ops@acme.example",
    subscription_status="active",
    stats=AccountStats(api_keys=2, phone_numbers=1, messages=328),
)
USAGE_JSON = {
    "period": "week",
    "startDate": "2026-01-25T00:00:00.000Z",
    "endDate": "2026-02-01T00:00:00.000Z",
    "messages": {
        "total": 328,
        "pending": 0,
        "sent": 314,
        "delivered": 306,
        "read": 298,
        "failed": 14,
    },
    "apiRequests": {"total": 1000, "successful": 990, "failed": 10},
}
USAGE = Usage(
    period="week",
    start_date=at("2026-01-25T00:00:00.000Z"),
    end_date=at("2026-02-01T00:00:00.000Z"),
    messages=MessageCounts(total=328, pending=0, sent=314, delivered=306, read=298, failed=14),
    api_requests=ApiRequestCounts(total=1000, successful=990, failed=10),
)


def listing(items: list[Any], page: int, limit: int, total: int) -> dict[str, Any]:
    total_pages = -(-total // limit)
    pagination = {"page": page, "limit": limit, "total": total, "totalPages": total_pages}
    return {"data": items, "pagination": pagination}


@attrs.frozen
class Case:
    """One call and everything it must send and return."""

    invoke: Callable[[Chatmaid], Awaitable[Any]]
    method: str
    path: str  # as sent: percent-encoded
    query: dict[str, str]  # decoded values
    body: dict[str, Any] | None
    data: Any  # the success envelope's data
    expected: Any
    status: int = 200


CASES = [
    pytest.param(
        Case(
            lambda c: c.messages.send(
                "+15551234567", "+15557654321", "hello", idempotency_key="order-42"
            ),
            "POST",
            "/v1/messages/send",
            {},
            {
                "fromPhoneId": "+15551234567",
                "to": "+15557654321",
                "content": "hello",
                "idempotencyKey": "order-42",
            },
            MESSAGE_JSON,
            attrs.evolve(MESSAGE, idempotency_key="order-42"),
            status=201,
        ),
        id="send-text",
    ),
    pytest.param(
        Case(
            lambda c: c.messages.send(
                "507f1f77bcf86cd799439011",
                "120363043211234567@g.us",
                media_urls=["https://cdn.example/a.jpg"],
                idempotency_key="k1",
            ),
            "POST",
            "/v1/messages/send",
            {},
            {
                "fromPhoneId": "507f1f77bcf86cd799439011",
                "to": "120363043211234567@g.us",
                "mediaUrls": ["https://cdn.example/a.jpg"],
                "idempotencyKey": "k1",
            },
            FAILED_JSON,
            attrs.evolve(FAILED, idempotency_key="k1"),
            status=201,
        ),
        id="send-media-to-group",
    ),
    pytest.param(
        Case(
            lambda c: c.messages.send(
                "ph_1",
                "+15557654321",
                "caption ✓ 😀",
                ["https://cdn.example/a.jpg"],
                idempotency_key="k2",
            ),
            "POST",
            "/v1/messages/send",
            {},
            {
                "fromPhoneId": "ph_1",
                "to": "+15557654321",
                "content": "caption ✓ 😀",
                "mediaUrls": ["https://cdn.example/a.jpg"],
                "idempotencyKey": "k2",
            },
            MESSAGE_JSON,
            attrs.evolve(MESSAGE, idempotency_key="k2"),
        ),
        id="send-caption-and-media",
    ),
    pytest.param(
        Case(
            lambda c: c.messages.get("msg_abc123def456"),
            "GET",
            "/v1/messages/msg_abc123def456",
            {},
            None,
            MESSAGE_JSON,
            MESSAGE,
        ),
        id="get",
    ),
    pytest.param(
        Case(
            lambda c: c.messages.get("msg:a%b+c"),
            "GET",
            "/v1/messages/msg%3Aa%25b%2Bc",
            {},
            None,
            MESSAGE_JSON,
            MESSAGE,
        ),
        id="get-encodes-reserved-characters",
    ),
    pytest.param(
        Case(
            lambda c: c.messages.list(),
            "GET",
            "/v1/messages",
            {"page": "1", "limit": "20"},
            None,
            listing([MESSAGE_JSON], 1, 20, 1),
            Page([MESSAGE], Pagination(page=1, limit=20, total=1, total_pages=1)),
        ),
        id="list-defaults",
    ),
    pytest.param(
        Case(
            lambda c: c.messages.list("failed", "+15551234567", page=2, limit=50),
            "GET",
            "/v1/messages",
            {"page": "2", "limit": "50", "status": "failed", "phoneNumberId": "+15551234567"},
            None,
            listing([FAILED_JSON], 2, 50, 51),
            Page([FAILED], Pagination(page=2, limit=50, total=51, total_pages=2)),
        ),
        id="list-filtered",
    ),
    pytest.param(
        Case(
            lambda c: c.messages.list_inbound(),
            "GET",
            "/v1/messages/inbound",
            {"page": "1", "limit": "20"},
            None,
            listing([], 1, 20, 0),
            Page([], Pagination(page=1, limit=20, total=0, total_pages=0)),
        ),
        id="list-inbound-defaults",
    ),
    pytest.param(
        Case(
            lambda c: c.messages.list_inbound("ph_1", page=3, limit=10),
            "GET",
            "/v1/messages/inbound",
            {"page": "3", "limit": "10", "phoneNumberId": "ph_1"},
            None,
            listing([INBOUND_JSON], 3, 10, 21),
            Page([INBOUND], Pagination(page=3, limit=10, total=21, total_pages=3)),
        ),
        id="list-inbound-filtered",
    ),
    pytest.param(
        Case(
            lambda c: c.messages.get_inbound("inmsg_1"),
            "GET",
            "/v1/messages/inbound/inmsg_1",
            {},
            None,
            INBOUND_JSON,
            INBOUND,
        ),
        id="get-inbound",
    ),
    pytest.param(
        Case(
            lambda c: c.groups.list("+15551234567"),
            "GET",
            "/v1/groups",
            {"fromPhoneId": "+15551234567"},
            None,
            [GROUP_JSON],
            [GROUP],
        ),
        id="groups",
    ),
    pytest.param(
        Case(
            lambda c: c.phone_numbers.list(),
            "GET",
            "/v1/phone-numbers",
            {},
            None,
            [PHONE_JSON],
            [PHONE],
        ),
        id="phones",
    ),
    pytest.param(
        Case(
            lambda c: c.phone_numbers.get("+15551234567"),
            "GET",
            "/v1/phone-numbers/%2B15551234567",
            {},
            None,
            PHONE_JSON,
            PHONE,
        ),
        id="phone-by-e164",
    ),
    pytest.param(
        Case(
            lambda c: c.phone_numbers.get("507f1f77bcf86cd799439011"),
            "GET",
            "/v1/phone-numbers/507f1f77bcf86cd799439011",
            {},
            None,
            PHONE_JSON,
            PHONE,
        ),
        id="phone-by-id",
    ),
    pytest.param(
        Case(
            lambda c: c.phone_numbers.status("+15551234567"),
            "GET",
            "/v1/phone-numbers/%2B15551234567/status",
            {},
            None,
            STATUS_JSON,
            STATUS,
        ),
        id="phone-status",
    ),
    pytest.param(
        Case(lambda c: c.account.get(), "GET", "/v1/account", {}, None, ACCOUNT_JSON, ACCOUNT),
        id="account",
    ),
    pytest.param(
        Case(
            lambda c: c.account.usage(),
            "GET",
            "/v1/account/usage",
            {"period": "month"},
            None,
            {**USAGE_JSON, "period": "month"},
            attrs.evolve(USAGE, period="month"),
        ),
        id="usage-default-month",
    ),
    pytest.param(
        Case(
            lambda c: c.account.usage("week"),
            "GET",
            "/v1/account/usage",
            {"period": "week"},
            None,
            USAGE_JSON,
            USAGE,
        ),
        id="usage-week",
    ),
]

USER_AGENT = re.compile(
    rf"chatmaid-async/{re.escape(__version__)} "
    rf"Python/{re.escape(platform.python_version())} "
    rf"aiohttp/{re.escape(aiohttp.__version__)}"
)


def assert_sent_once(
    mock: aioresponses, method: str, path: str, query: dict[str, str]
) -> dict[str, Any]:
    """Assert the one recorded request, query compared exactly; return its kwargs.

    aioresponses records the URL normalised (query sorted, some path escapes decoded), so the
    expected URL goes through the same normalisation; a ``+`` sent bare in a path or query
    still differs from ``%2B``.
    """
    [(sent_method, sent_url, kwargs)] = sent_requests(mock)
    assert sent_method == method
    assert sent_url == str(normalize_url(URL(BASE + path, encoded=True).with_query(query)))
    assert sorted(URL(sent_url).query.items()) == sorted(query.items())
    return kwargs


# --- through aioresponses --------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
async def test_endpoint_sends_the_exact_request(
    client: Chatmaid, mocked: aioresponses, case: Case
) -> None:
    mocked.add(ANYTHING, case.method, payload=envelope(case.data), status=case.status)

    await case.invoke(client)

    kwargs = assert_sent_once(mocked, case.method, case.path, case.query)
    sent_body = None if kwargs["data"] is None else json.loads(kwargs["data"])
    assert sent_body == case.body


@pytest.mark.parametrize("case", CASES)
async def test_endpoint_sends_auth_accept_and_user_agent_and_json_type_only_with_a_body(
    client: Chatmaid, mocked: aioresponses, case: Case
) -> None:
    mocked.add(ANYTHING, case.method, payload=envelope(case.data), status=case.status)

    await case.invoke(client)

    [(_, _, kwargs)] = sent_requests(mocked)
    headers = dict(kwargs["headers"])
    assert USER_AGENT.fullmatch(headers.pop("User-Agent"))
    expected = {"Authorization": f"Bearer {KEY}", "Accept": "application/json"}
    if case.body is not None:
        expected["Content-Type"] = "application/json"
    assert headers == expected


@pytest.mark.parametrize("case", CASES)
async def test_endpoint_decodes_the_documented_answer(
    client: Chatmaid, mocked: aioresponses, case: Case
) -> None:
    mocked.add(ANYTHING, case.method, payload=envelope(case.data), status=case.status)

    result = await case.invoke(client)

    assert result == case.expected


async def test_decoded_model_keeps_the_server_object_in_raw(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.get(ANYTHING, payload=envelope(PHONE_JSON))

    phone = await client.phone_numbers.get("+15551234567")

    assert phone.raw == PHONE_JSON


async def test_send_without_a_key_sends_a_fresh_uuid4_and_returns_it(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.post(ANYTHING, payload=envelope(MESSAGE_JSON), status=201, repeat=True)

    first = await client.messages.send("+15551234567", "+15557654321", "hello")
    second = await client.messages.send("+15551234567", "+15557654321", "hello")

    keys = [json.loads(kwargs["data"])["idempotencyKey"] for _, _, kwargs in sent_requests(mocked)]
    assert keys == [first.idempotency_key, second.idempotency_key]
    assert keys[0] != keys[1]
    assert all(uuid.UUID(key).version == 4 for key in keys)


def test_generated_keys_are_canonical_random_uuid4_text() -> None:
    keys = [messages_module.new_idempotency_key() for _ in range(20_000)]

    parsed = [uuid.UUID(key) for key in keys]
    # The canonical form (lower-case, hyphenated), the version and variant of a random UUID.
    assert [str(u) for u in parsed] == keys
    assert {u.version for u in parsed} == {4}
    assert {u.variant for u in parsed} == {uuid.RFC_4122}
    assert len(set(keys)) == len(keys)
    # Every one of the 122 random bits varies across keys.
    fixed = (0xF << 76) | (0xC << 60)
    bits_set = set()
    for u in parsed:
        bits_set.update(b for b in range(128) if not fixed >> b & 1 and u.int >> b & 1)
    assert len(bits_set) == 122


async def test_send_omits_content_when_none_rather_than_sending_null(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.post(ANYTHING, payload=envelope(MESSAGE_JSON), status=201)

    await client.messages.send("+15551234567", "+15557654321", media_urls=["https://x.example/a"])

    [(_, _, kwargs)] = sent_requests(mocked)
    assert b"null" not in kwargs["data"]
    assert "content" not in json.loads(kwargs["data"])


@pytest.mark.parametrize(
    ("invoke", "path", "query"),
    [
        pytest.param(
            lambda c: c.messages.iterate("delivered", "ph_1", limit=2),
            "/v1/messages",
            {"limit": "2", "status": "delivered", "phoneNumberId": "ph_1"},
            id="iterate",
        ),
        pytest.param(
            lambda c: c.messages.iterate_inbound("ph_1", limit=2),
            "/v1/messages/inbound",
            {"limit": "2", "phoneNumberId": "ph_1"},
            id="iterate-inbound",
        ),
    ],
)
async def test_iterate_requests_each_page_in_turn_with_the_same_filters(
    client: Chatmaid,
    mocked: aioresponses,
    invoke: Callable[[Chatmaid], AsyncIterator[Any]],
    path: str,
    query: dict[str, str],
) -> None:
    item = INBOUND_JSON if "inbound" in path else MESSAGE_JSON
    items = [{**item, "id": f"id_{n}"} for n in range(3)]
    mocked.get(ANYTHING, payload=envelope(listing(items[:2], 1, 2, 3)))
    mocked.get(ANYTHING, payload=envelope(listing(items[2:], 2, 2, 3)))

    ids = [found.id async for found in invoke(client)]

    assert ids == ["id_0", "id_1", "id_2"]
    urls = [URL(url) for _, url, _ in sent_requests(mocked)]
    assert [url.raw_path for url in urls] == [path, path]
    assert [sorted(url.query.items()) for url in urls] == [
        sorted({**query, "page": str(n)}.items()) for n in (1, 2)
    ]


async def test_debug_log_names_the_call_but_never_the_key_content_or_numbers(
    client: Chatmaid, mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(ANYTHING, payload=envelope(MESSAGE_JSON), status=201)
    mocked.get(ANYTHING, payload=envelope(PHONE_JSON))

    with caplog.at_level(logging.DEBUG, logger="chatmaid_async"):
        await client.messages.send("+15551234567", "+15557654321", "secret words")
        await client.phone_numbers.get("+15551234567")

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "POST /v1/messages/send" in logged
    assert "GET /v1/phone-numbers/{}" in logged
    for secret in (KEY, KEY[len("sk_test_") :], "secret words", "5551234567", "5557654321"):
        assert secret not in logged


# --- F29: the query is asserted from what was sent --------------------------------------------


async def test_f29_list_sends_exactly_the_page_limit_and_filters(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.get(
        f"{BASE}/v1/messages?page=2&limit=50&status=failed&phoneNumberId=ph_1",
        payload=envelope(listing([], 2, 50, 0)),
    )

    await client.messages.list(page=2, limit=50, status="failed", phone_number_id="ph_1")

    assert_sent_once(
        mocked,
        "GET",
        "/v1/messages",
        {"page": "2", "limit": "50", "status": "failed", "phoneNumberId": "ph_1"},
    )


async def test_f29_query_assertion_catches_a_resource_that_drops_page(
    client: Chatmaid, mocked: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_page_query = messages_module.page_query

    def without_page(**values: Any) -> dict[str, Any]:
        return {k: v for k, v in real_page_query(**values).items() if k != "page"}

    monkeypatch.setattr(messages_module, "page_query", without_page)
    mocked.get(ANYTHING, payload=envelope(listing([], 2, 50, 0)))

    await client.messages.list(page=2, limit=50, status="failed", phone_number_id="ph_1")

    with pytest.raises(AssertionError):
        assert_sent_once(
            mocked,
            "GET",
            "/v1/messages",
            {"page": "2", "limit": "50", "status": "failed", "phoneNumberId": "ph_1"},
        )


async def test_f29_mock_on_the_full_url_does_not_answer_a_request_that_drops_page(
    client: Chatmaid, mocked: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_page_query = messages_module.page_query
    monkeypatch.setattr(
        messages_module,
        "page_query",
        lambda **values: {k: v for k, v in real_page_query(**values).items() if k != "page"},
    )
    mocked.get(
        f"{BASE}/v1/messages?page=2&limit=50&status=failed&phoneNumberId=ph_1",
        payload=envelope(listing([], 2, 50, 0)),
        repeat=True,
    )

    with pytest.raises(APIConnectionError):
        await client.with_options(max_retries=0).messages.list(
            page=2, limit=50, status="failed", phone_number_id="ph_1"
        )


async def test_f29_url_assertion_catches_a_plus_sign_sent_unencoded(
    client: Chatmaid, mocked: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_transport, "quote", lambda value, safe="": value)
    mocked.get(ANYTHING, payload=envelope(PHONE_JSON))
    mocked.get(ANYTHING, payload=envelope([GROUP_JSON]))

    await client.phone_numbers.get("+15551234567")
    with pytest.raises(AssertionError):
        assert_sent_once(mocked, "GET", "/v1/phone-numbers/%2B15551234567", {})

    mocked.requests.clear()
    await client.groups.list("+15551234567")
    with pytest.raises(AssertionError):
        assert_sent_once(mocked, "GET", "/v1/groups", {"fromPhoneId": "+15551234567"})


async def test_f29_usage_sends_the_period(client: Chatmaid, mocked: aioresponses) -> None:
    mocked.get(ANYTHING, payload=envelope(USAGE_JSON))

    await client.account.usage(period="week")

    assert_sent_once(mocked, "GET", "/v1/account/usage", {"period": "week"})


@pytest.mark.parametrize(
    "invoke",
    [
        pytest.param(lambda c: c.messages.list(status=None, phone_number_id=None), id="list"),
        pytest.param(lambda c: c.messages.list_inbound(phone_number_id=None), id="inbound"),
    ],
)
async def test_f29_filters_left_as_none_are_omitted_not_sent_as_none(
    client: Chatmaid, mocked: aioresponses, invoke: Callable[[Chatmaid], Awaitable[Any]]
) -> None:
    mocked.get(ANYTHING, payload=envelope(listing([], 1, 20, 0)))

    await invoke(client)

    [(_, url, _)] = sent_requests(mocked)
    assert sorted(URL(url).query) == ["limit", "page"]
    assert "None" not in url


async def test_f29_a_status_enum_is_sent_as_its_value(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.get(ANYTHING, payload=envelope(listing([], 1, 20, 0)))

    await client.messages.list(status=MessageStatus.FAILED)

    assert_sent_once(
        mocked, "GET", "/v1/messages", {"page": "1", "limit": "20", "status": "failed"}
    )


# --- on the wire -------------------------------------------------------------------------------


@attrs.define
class WireServer:
    """A loopback HTTP server that records each request and answers with ``answer``."""

    base_url: str = ""
    seen: list[tuple[str, str, dict[str, str], bytes]] = attrs.Factory(list)
    answer: tuple[int, Any] = (200, None)


@pytest.fixture
async def wire() -> AsyncIterator[WireServer]:
    server = WireServer()

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        server.seen.append((request.method, request.raw_path, dict(request.headers), body))
        status, data = server.answer
        return web.json_response(envelope(data), status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    await runner.cleanup()


@pytest.mark.parametrize("case", CASES)
async def test_endpoint_request_on_the_wire(wire: WireServer, case: Case) -> None:
    wire.answer = (case.status, case.data)
    async with Chatmaid(KEY, base_url=wire.base_url, rate_limit=None) as client:
        result = await case.invoke(client)

    [(method, raw_path, headers, body)] = wire.seen
    path, _, raw_query = raw_path.partition("?")
    assert method == case.method
    assert path == case.path
    # A literal "+" in a query decodes to a space on the server: it must travel as %2B.
    assert "+" not in raw_query
    pairs = parse_qsl(raw_query, keep_blank_values=True, strict_parsing=bool(raw_query))
    assert sorted(pairs) == sorted(case.query.items())
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["Accept"] == "application/json"
    assert USER_AGENT.fullmatch(headers["User-Agent"])
    if case.body is None:
        assert "Content-Type" not in headers
        assert body == b""
    else:
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body) == case.body
    assert result == case.expected


async def test_groups_query_sends_the_plus_sign_as_percent_2b(wire: WireServer) -> None:
    wire.answer = (200, [GROUP_JSON])
    async with Chatmaid(KEY, base_url=wire.base_url, rate_limit=None) as client:
        await client.groups.list("+15551234567")

    [(_, raw_path, _, _)] = wire.seen
    assert raw_path == "/v1/groups?fromPhoneId=%2B15551234567"


@pytest.mark.parametrize(
    ("invoke", "raw_path"),
    [
        pytest.param(
            lambda c: c.phone_numbers.get("+15551234567"),
            "/v1/phone-numbers/%2B15551234567",
            id="get",
        ),
        pytest.param(
            lambda c: c.phone_numbers.status("+15551234567"),
            "/v1/phone-numbers/%2B15551234567/status",
            id="status",
        ),
    ],
)
async def test_get_phone_number_percent_encodes_the_plus_sign(
    wire: WireServer, invoke: Callable[[Chatmaid], Awaitable[Any]], raw_path: str
) -> None:
    wire.answer = (200, STATUS_JSON)
    async with Chatmaid(KEY, base_url=wire.base_url, rate_limit=None) as client:
        await invoke(client)

    assert [seen[1] for seen in wire.seen] == [raw_path]


async def test_send_body_is_compact_utf8_json(wire: WireServer) -> None:
    wire.answer = (201, MESSAGE_JSON)
    async with Chatmaid(KEY, base_url=wire.base_url, rate_limit=None) as client:
        await client.messages.send("+15551234567", "+15557654321", "café", idempotency_key="k")

    [(_, _, headers, body)] = wire.seen
    assert body == (
        b'{"fromPhoneId":"+15551234567","to":"+15557654321",'
        b'"content":"caf\\u00e9","idempotencyKey":"k"}'
    )
    assert headers["Content-Length"] == str(len(body))
