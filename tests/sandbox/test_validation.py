"""Validation rules of the send body, pagination and filters, and the 400 envelope."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chatmaid_async.sandbox import Sandbox
from chatmaid_async.sandbox._errors import ApiError
from chatmaid_async.sandbox._validation import (
    is_e164,
    is_group_jid,
    parse_page,
    parse_send_body,
)

from ._support import RECIPIENT, Api

VALID: dict[str, Any] = {"fromPhoneId": "+15550100000", "to": RECIPIENT, "content": "hi"}
TO_RULE = "to must be in E.164 format (e.g. +15557654321) or a group JID (…@g.us)"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+15557654321", True),
        ("+1234567", True),  # 7 digits: the shortest
        ("+123456789012345", True),  # 15 digits: the longest
        ("+123456", False),
        ("+1234567890123456", False),
        ("+05557654321", False),
        ("15557654321", False),
        ("+1555765432a", False),
        ("+15557654321\n", False),
        ("+١٢٣٤٥٦٧٨", False),  # Arabic-Indic digits are not E.164
    ],
)
def test_e164_rule(value: str, expected: bool) -> None:
    assert is_e164(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120363043211234567@g.us", True),
        ("15551234567-1600000000@g.us", True),
        ("120363043211234567@s.whatsapp.net", False),
        ("abc@g.us", False),
        ("@g.us", False),
        ("1203@g.us\n", False),
    ],
)
def test_group_jid_rule(value: str, expected: bool) -> None:
    assert is_group_jid(value) is expected


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"to": "5557654321"}, TO_RULE),
        ({"to": "+1 555 765 4321"}, TO_RULE),
        ({"to": None}, "to should not be empty"),
        ({"to": 15557654321}, "to must be a string"),
        ({"fromPhoneId": ""}, "fromPhoneId should not be empty"),
        ({"fromPhoneId": 7}, "fromPhoneId must be a string"),
        ({"content": "x" * 4097}, "content must be shorter than or equal to 4096 characters"),
        ({"content": "😀" * 2049}, "content must be shorter than or equal to 4096 characters"),
        ({"content": 5}, "content must be a string"),
        ({"content": ""}, "content or mediaUrls is required"),
        ({"content": None}, "content or mediaUrls is required"),
        ({"content": None, "mediaUrls": []}, "content or mediaUrls is required"),
        ({"mediaUrls": "https://x.example/a.png"}, "mediaUrls must be an array"),
        (
            {"mediaUrls": ["http://x.example/a.png"]},
            "each value in mediaUrls must be a public HTTPS URL",
        ),
        ({"mediaUrls": ["https://"]}, "each value in mediaUrls must be a public HTTPS URL"),
        ({"mediaUrls": [3]}, "each value in mediaUrls must be a public HTTPS URL"),
        (
            {"idempotencyKey": "k" * 65},
            "idempotencyKey must be shorter than or equal to 64 characters",
        ),
        ({"idempotencyKey": ""}, "idempotencyKey should not be empty"),
        ({"idempotencyKey": 42}, "idempotencyKey must be a string"),
        ({"environment": "test"}, "property environment should not exist"),
    ],
)
def test_send_body_rule(changes: dict[str, Any], problem: str) -> None:
    body = {**VALID, **changes}

    with pytest.raises(ApiError) as caught:
        parse_send_body(body)

    assert caught.value.status == 400
    assert problem in caught.value.messages


@pytest.mark.parametrize(
    "changes",
    [
        {"content": "x" * 4096},
        {"content": "😀" * 2048},  # UTF-16 code units, as in JavaScript: 4096 of them
        {"idempotencyKey": "k" * 64},
        {"mediaUrls": ["https://cdn.example/a.png"], "content": "caption"},
        {"mediaUrls": ["https://cdn.example/a.png"], "content": ""},
        {"to": "120363043211234567@g.us"},
    ],
)
def test_send_body_accepts_the_edges(changes: dict[str, Any]) -> None:
    command = parse_send_body({**VALID, **changes})

    assert command.to == changes.get("to", RECIPIENT)


def test_every_broken_rule_is_listed() -> None:
    with pytest.raises(ApiError) as caught:
        parse_send_body({"fromPhoneId": "", "to": "nope", "content": "x" * 5000})

    assert caught.value.messages == [
        "fromPhoneId should not be empty",
        TO_RULE,
        "content must be shorter than or equal to 4096 characters",
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [({}, (1, 20)), ({"page": "3", "limit": "100"}, (3, 100)), ({"limit": "1"}, (1, 1))],
)
def test_page_parsing(query: dict[str, str], expected: tuple[int, int]) -> None:
    assert parse_page(query) == expected


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"limit": "101"}, "limit must not be greater than 100"),
        ({"limit": "0"}, "limit must not be less than 1"),
        ({"page": "0"}, "page must not be less than 1"),
        ({"page": "-2"}, "page must not be less than 1"),
        ({"page": "two"}, "page must be an integer number"),
        ({"limit": "1.5"}, "limit must be an integer number"),
    ],
)
def test_page_rules(query: dict[str, str], problem: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_page(query)

    assert caught.value.messages == [problem]


async def test_400_has_the_exact_error_envelope(
    api: Api, sandbox: Sandbox, key: str, phone: str
) -> None:
    status, body, _ = await api.request(
        "POST", "/v1/messages/send", key, json={**VALID, "to": "5557654321"}
    )

    assert status == 400
    assert set(body) == {"success", "error", "message", "statusCode", "timestamp", "path"}
    assert body["success"] is False
    assert body["error"] == "Bad Request"
    assert body["message"] == [TO_RULE]
    assert body["statusCode"] == 400
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", body["timestamp"])
    assert body["path"] == "/v1/messages/send"
    assert sandbox.counters.validation_errors_by_key == {key: 1}


async def test_invalid_json_is_400(api: Api, http: Any, key: str) -> None:
    async with http.post(
        "/v1/messages/send",
        data=b"{not json",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    ) as response:
        body = await response.json()

    assert response.status == 400
    assert body["message"] == ["request body must be valid JSON"]


@pytest.mark.parametrize("payload", [None, [], "text"])
async def test_a_body_that_is_not_an_object_is_400(api: Api, key: str, payload: object) -> None:
    status, body, _ = await api.request("POST", "/v1/messages/send", key, json=payload)

    assert status == 400
    assert body["message"] == ["request body must be a JSON object"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/messages", {"limit": "101"}),
        ("/v1/messages", {"page": "0"}),
        ("/v1/messages", {"status": "queued"}),
        ("/v1/messages/inbound", {"limit": "0"}),
    ],
)
async def test_list_query_rules_answer_400(
    api: Api, key: str, path: str, params: dict[str, str]
) -> None:
    status, body = await api.get(path, key, **params)

    assert status == 400
    assert body["statusCode"] == 400


async def test_live_key_sending_from_a_disconnected_phone_is_400(
    api: Api, sandbox: Sandbox, live_key: str, key: str
) -> None:
    offline = sandbox.add_phone("+15550100009", connected=False)

    live_status, live_body = await api.send(live_key, **{**VALID, "fromPhoneId": offline})
    test_status, _ = await api.send(key, **{**VALID, "fromPhoneId": offline})

    assert live_status == 400
    assert live_body["message"] == ["Phone number is not connected"]
    assert test_status == 201


async def test_live_key_without_a_subscription_is_403(
    api: Api, sandbox: Sandbox, live_key: str, phone: str
) -> None:
    sandbox.set_account(subscription_status="past_due")

    status, body = await api.send(live_key, **VALID)

    assert status == 403
    assert body["message"] == ["An active subscription is required to send live messages"]
