"""Every endpoint of contract §3 answers in the documented shape."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chatmaid_async._limits import key_fingerprint
from chatmaid_async.sandbox import SANDBOX_GROUPS, Sandbox

from ._support import PHONE_NUMBER, RECIPIENT, Api

ISO_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
MESSAGE_FIELDS = {
    "id",
    "from",
    "to",
    "isGroup",
    "groupId",
    "content",
    "mediaUrls",
    "environment",
    "status",
    "errorCode",
    "errorMessage",
    "createdAt",
    "sentAt",
    "deliveredAt",
    "readAt",
    "failedAt",
}
PHONE_FIELDS = {
    "id",
    "phoneNumber",
    "displayName",
    "connectionStatus",
    "environment",
    "lastConnectedAt",
    "lastDisconnectedAt",
    "createdAt",
    "updatedAt",
}


async def test_send_answers_201_with_every_message_field(api: Api, key: str, phone: str) -> None:
    status, body = await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="hello")

    assert status == 201
    assert body["success"] is True
    message = body["data"]
    assert set(message) == MESSAGE_FIELDS
    assert re.fullmatch(r"msg_[A-Za-z0-9]{24}", message["id"])
    assert message["from"] == PHONE_NUMBER
    assert message["to"] == RECIPIENT
    assert message["isGroup"] is False
    assert message["groupId"] is None
    assert message["content"] == "hello"
    assert message["mediaUrls"] == []
    assert message["environment"] == "test"
    assert message["status"] == "sent"
    assert ISO_MS.fullmatch(message["createdAt"])
    assert ISO_MS.fullmatch(message["sentAt"])


async def test_send_accepts_the_phone_number_instead_of_the_id(
    api: Api, key: str, phone: str
) -> None:
    status, body = await api.send(key, fromPhoneId=PHONE_NUMBER, to=RECIPIENT, content="hi")

    assert status == 201
    assert body["data"]["from"] == PHONE_NUMBER


async def test_send_to_a_group_sets_is_group_and_group_id(api: Api, key: str, phone: str) -> None:
    group = "120363043211234567@g.us"
    status, body = await api.send(key, fromPhoneId=phone, to=group, content="team")

    assert status == 201
    assert body["data"]["isGroup"] is True
    assert body["data"]["groupId"] == group


async def test_send_with_media_only_is_accepted(api: Api, key: str, phone: str) -> None:
    urls = ["https://example.com/a.png"]
    status, body = await api.send(key, fromPhoneId=phone, to=RECIPIENT, mediaUrls=urls)

    assert status == 201
    assert body["data"]["mediaUrls"] == urls
    assert body["data"]["content"] is None


async def test_send_from_an_unknown_phone_is_404(api: Api, key: str, phone: str) -> None:
    status, body = await api.send(key, fromPhoneId="0" * 24, to=RECIPIENT, content="x")

    assert status == 404
    assert body["message"] == ["Phone number not found"]


async def test_reused_idempotency_key_returns_the_original_and_creates_nothing(
    api: Api, sandbox: Sandbox, key: str, phone: str
) -> None:
    first_status, first = await api.send(
        key, fromPhoneId=phone, to=RECIPIENT, content="once", idempotencyKey="order-42"
    )
    second_status, second = await api.send(
        key, fromPhoneId=phone, to=RECIPIENT, content="once", idempotencyKey="order-42"
    )

    assert (first_status, second_status) == (201, 200)
    assert second["data"]["id"] == first["data"]["id"]
    assert len(sandbox.messages) == 1
    assert sandbox.counters.duplicates_prevented == 1
    assert sandbox.counters.messages_created == 1


async def test_sandbox_messages_record_the_idempotency_key_and_key_fingerprint(
    api: Api, sandbox: Sandbox, key: str, phone: str
) -> None:
    _, body = await api.send(
        key, fromPhoneId=phone, to=RECIPIENT, content="x", idempotencyKey="abc"
    )

    stored = sandbox.messages[body["data"]["id"]]
    assert stored.idempotency_key == "abc"
    assert stored.key_fingerprint == key_fingerprint(key)
    assert key not in repr(stored)


async def test_get_message_returns_it(api: Api, key: str, phone: str) -> None:
    _, sent = await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="x")
    message_id = sent["data"]["id"]

    status, body = await api.get(f"/v1/messages/{message_id}", key)

    assert status == 200
    assert body["data"]["id"] == message_id
    assert set(body["data"]) == MESSAGE_FIELDS


async def test_get_unknown_message_is_404(api: Api, key: str) -> None:
    status, body = await api.get("/v1/messages/msg_missing", key)

    assert status == 404
    assert body["message"] == ["Message not found"]


async def test_a_test_key_cannot_see_live_messages(
    api: Api, key: str, live_key: str, phone: str
) -> None:
    _, sent = await api.send(live_key, fromPhoneId=phone, to=RECIPIENT, content="x")

    status, _ = await api.get(f"/v1/messages/{sent['data']['id']}", key)

    assert status == 404


async def test_list_messages_is_newest_first_with_nested_pagination(
    api: Api, key: str, phone: str
) -> None:
    ids = [
        (await api.send(key, fromPhoneId=phone, to=RECIPIENT, content=str(n)))[1]["data"]["id"]
        for n in range(5)
    ]

    status, body = await api.get("/v1/messages", key, limit="2", page="2")

    assert status == 200
    assert body["success"] is True
    assert [m["id"] for m in body["data"]["data"]] == [ids[2], ids[1]]
    assert body["data"]["pagination"] == {"page": 2, "limit": 2, "total": 5, "totalPages": 3}


async def test_list_messages_defaults_to_page_1_of_20(api: Api, key: str, phone: str) -> None:
    for n in range(21):
        await api.send(key, fromPhoneId=phone, to=RECIPIENT, content=str(n))

    _, body = await api.get("/v1/messages", key)

    assert len(body["data"]["data"]) == 20
    assert body["data"]["pagination"] == {"page": 1, "limit": 20, "total": 21, "totalPages": 2}


async def test_list_messages_past_the_end_is_an_empty_page(api: Api, key: str, phone: str) -> None:
    await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="x")

    _, body = await api.get("/v1/messages", key, page="9")

    assert body["data"]["data"] == []
    assert body["data"]["pagination"]["total"] == 1


async def test_empty_list_has_zero_total_pages(api: Api, key: str) -> None:
    _, body = await api.get("/v1/messages", key)

    assert body["data"] == {
        "data": [],
        "pagination": {"page": 1, "limit": 20, "total": 0, "totalPages": 0},
    }


async def test_list_messages_filters_by_phone_and_status(
    api: Api, sandbox: Sandbox, key: str, phone: str
) -> None:
    other = sandbox.add_phone("+15550100001")
    await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="a")
    await api.send(key, fromPhoneId=other, to=RECIPIENT, content="b")
    await api.send(key, fromPhoneId=other, to="+15550009002", content="fails")

    _, by_phone = await api.get("/v1/messages", key, phoneNumberId=other)
    _, by_number = await api.get("/v1/messages", key, phoneNumberId="+15550100001")
    _, failed = await api.get("/v1/messages", key, status="failed")
    _, unknown = await api.get("/v1/messages", key, phoneNumberId="f" * 24)

    assert by_phone["data"]["pagination"]["total"] == 2
    assert by_number["data"]["pagination"]["total"] == 2
    assert [m["to"] for m in failed["data"]["data"]] == ["+15550009002"]
    assert unknown["data"]["pagination"]["total"] == 0


async def test_inbound_list_is_always_empty_for_test_keys(
    api: Api, sandbox: Sandbox, key: str, phone: str
) -> None:
    sandbox.add_inbound(phone, "+15557654321", "hello")

    status, body = await api.get("/v1/messages/inbound", key)

    assert status == 200
    assert body["data"] == {
        "data": [],
        "pagination": {"page": 1, "limit": 20, "total": 0, "totalPages": 0},
    }


async def test_inbound_messages_are_listed_and_fetched_with_a_live_key(
    api: Api, sandbox: Sandbox, key: str, live_key: str, phone: str
) -> None:
    first = sandbox.add_inbound(phone, "+15557654321", "hello")
    second = sandbox.add_inbound(phone, "+15557654322", None, "image", group_id="1203@g.us")

    _, listed = await api.get("/v1/messages/inbound", live_key, phoneNumberId=phone)
    status, one = await api.get(f"/v1/messages/inbound/{second}", live_key)
    test_status, _ = await api.get(f"/v1/messages/inbound/{first}", key)

    assert [m["id"] for m in listed["data"]["data"]] == [second, first]
    assert status == 200
    assert set(one["data"]) == {
        "id",
        "from",
        "to",
        "content",
        "type",
        "isGroup",
        "groupId",
        "receivedAt",
        "createdAt",
    }
    assert one["data"]["type"] == "image"
    assert one["data"]["isGroup"] is True
    assert one["data"]["to"] == PHONE_NUMBER
    assert test_status == 404


async def test_unknown_inbound_message_is_404(api: Api, live_key: str) -> None:
    status, body = await api.get("/v1/messages/inbound/inmsg_missing", live_key)

    assert status == 404
    assert body["message"] == ["Inbound message not found"]


async def test_groups_for_a_test_key_are_the_static_list_plus_added(
    api: Api, sandbox: Sandbox, key: str, phone: str
) -> None:
    sandbox.add_group(phone, "120363111111111111@g.us", "Added", is_community_announce=False)

    status, body = await api.get("/v1/groups", key, fromPhoneId=PHONE_NUMBER)

    assert status == 200
    ids = [group["id"] for group in body["data"]]
    assert ids == [*(g.jid for g in SANDBOX_GROUPS), "120363111111111111@g.us"]
    assert set(body["data"][0]) == {"id", "name", "isCommunityAnnounce"}


async def test_groups_for_a_live_key_are_only_the_added_ones(
    api: Api, sandbox: Sandbox, live_key: str, phone: str
) -> None:
    sandbox.add_group(phone, "120363111111111111@g.us", "Added")

    _, body = await api.get("/v1/groups", live_key, fromPhoneId=phone)

    assert [group["id"] for group in body["data"]] == ["120363111111111111@g.us"]


@pytest.mark.parametrize(
    ("params", "expected_status"),
    [({}, 400), ({"fromPhoneId": ""}, 400), ({"fromPhoneId": "+15559999999"}, 404)],
)
async def test_groups_needs_a_known_from_phone(
    api: Api, key: str, phone: str, params: dict[str, str], expected_status: int
) -> None:
    status, _ = await api.get("/v1/groups", key, **params)

    assert status == expected_status


async def test_groups_with_an_unencoded_plus_is_not_found(api: Api, key: str, phone: str) -> None:
    # A literal "+" in a query string means a space; clients must send %2B.
    status, _, _ = await api.request("GET", f"/v1/groups?fromPhoneId={PHONE_NUMBER}", key)

    assert status == 404


async def test_phone_numbers_list_get_and_status(api: Api, key: str, phone: str) -> None:
    _, listed = await api.get("/v1/phone-numbers", key)
    _, by_id = await api.get(f"/v1/phone-numbers/{phone}", key)
    _, by_number = await api.get("/v1/phone-numbers/%2B15550100000", key)
    _, status = await api.get(f"/v1/phone-numbers/{phone}/status", key)

    assert [p["id"] for p in listed["data"]] == [phone]
    assert set(listed["data"][0]) == PHONE_FIELDS
    assert re.fullmatch(r"[0-9a-f]{24}", phone)
    assert by_id["data"] == listed["data"][0]
    assert by_number["data"]["id"] == phone
    assert set(status["data"]) == {
        "id",
        "phoneNumber",
        "connectionStatus",
        "lastConnectedAt",
        "lastDisconnectedAt",
        "updatedAt",
    }
    assert status["data"]["connectionStatus"] == "connected"


async def test_unknown_phone_is_404(api: Api, key: str) -> None:
    for path in ("/v1/phone-numbers/nope", "/v1/phone-numbers/%2B15559999999/status"):
        status, body = await api.get(path, key)
        assert status == 404
        assert body["message"] == ["Phone number not found"]


async def test_phones_are_scoped_to_the_key_environment(
    api: Api, sandbox: Sandbox, key: str, live_key: str
) -> None:
    test_only = sandbox.add_phone("+15550100001", environment="test")
    live_only = sandbox.add_phone("+15550100002", environment="live")

    _, for_test = await api.get("/v1/phone-numbers", key)
    _, for_live = await api.get("/v1/phone-numbers", live_key)
    hidden, _ = await api.get(f"/v1/phone-numbers/{live_only}", key)

    assert [p["id"] for p in for_test["data"]] == [test_only]
    assert [p["id"] for p in for_live["data"]] == [live_only]
    assert for_live["data"][0]["environment"] == "live"
    assert hidden == 404


async def test_account_has_the_documented_shape(
    api: Api, sandbox: Sandbox, key: str, phone: str
) -> None:
    sandbox.set_account(name="Acme", email="ops@acme.example")
    await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="x")

    status, body = await api.get("/v1/account", key)

    assert status == 200
    account = body["data"]
    assert re.fullmatch(r"acc_[A-Za-z0-9]{24}", account["accountId"])
    assert account["name"] == "Acme"
    assert account["email"] == "ops@acme.example"
    assert account["subscriptionStatus"] == "active"
    assert account["stats"] == {"apiKeys": 1, "phoneNumbers": 1, "messages": 1}


@pytest.mark.parametrize("period", ["day", "week", "month"])
async def test_usage_counts_messages_and_requests(
    api: Api, key: str, phone: str, period: str
) -> None:
    await api.send(key, fromPhoneId=phone, to=RECIPIENT, content="ok")
    await api.send(key, fromPhoneId=phone, to="+15550009003", content="fails")
    await api.send(key, fromPhoneId=phone, to="bad", content="400")

    status, body = await api.get("/v1/account/usage", key, period=period)

    assert status == 200
    usage: dict[str, Any] = body["data"]
    assert usage["period"] == period
    assert ISO_MS.fullmatch(usage["startDate"])
    assert ISO_MS.fullmatch(usage["endDate"])
    messages = usage["messages"]
    assert (messages["total"], messages["pending"], messages["sent"]) == (2, 0, 1)
    assert messages["failed"] == 1
    # Counts mean "reached at least": read never exceeds delivered, delivered never sent.
    assert messages["read"] <= messages["delivered"] <= messages["sent"]
    # Three sends so far; the usage request itself is counted once it has been answered.
    assert usage["apiRequests"] == {"total": 3, "successful": 2, "failed": 1}


async def test_usage_defaults_to_month(api: Api, key: str) -> None:
    _, body = await api.get("/v1/account/usage", key)

    assert body["data"]["period"] == "month"


async def test_usage_rejects_an_unknown_period(api: Api, key: str) -> None:
    status, body = await api.get("/v1/account/usage", key, period="year")

    assert status == 400
    assert body["message"] == ["period must be one of the following values: day, week, month"]
