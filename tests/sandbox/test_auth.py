"""401 for bad keys and the scope matrix of contract §5 (403)."""

from __future__ import annotations

import pytest

from chatmaid_async.sandbox import Sandbox

from ._support import PHONE_NUMBER, RECIPIENT, Api

UNAUTHORIZED = {
    "success": False,
    "error": "Unauthorized",
    "message": ["Invalid API key"],
    "statusCode": 401,
}


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic c2tfdGVzdF94",
        "sk_test_0123456789",
        "Bearer sk_test_0123456789abcdef0123456789abcdef01234567",
        "Bearer sk_live_unknown",
        "Bearer not-a-key",
    ],
)
async def test_missing_malformed_or_unknown_key_is_401(
    api: Api, sandbox: Sandbox, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    status, body, response_headers = await api.request("GET", "/v1/account", headers=headers)

    assert status == 401
    assert {name: body[name] for name in UNAUTHORIZED} == UNAUTHORIZED
    assert body["path"] == "/v1/account"
    assert "x-request-id" in response_headers
    assert sandbox.counters.requests_by_key == {}
    assert sandbox.counters.requests_total == 1


async def test_bearer_scheme_is_case_insensitive(api: Api, key: str) -> None:
    status, _, _ = await api.request(
        "GET", "/v1/account", headers={"Authorization": f"bearer {key}"}
    )

    assert status == 200


async def test_a_revoked_key_is_401(api: Api, sandbox: Sandbox, key: str) -> None:
    sandbox.revoke_key(key)

    status, _ = await api.get("/v1/account", key)

    assert status == 401


def test_revoking_an_unknown_key_does_not_echo_it(sandbox: Sandbox) -> None:
    secret = "sk_test_" + "9" * 40

    with pytest.raises(KeyError) as caught:
        sandbox.revoke_key(secret)

    assert secret not in str(caught.value)


# (route name, method, path template) for every endpoint; {phone} and {msg} are filled in.
ENDPOINTS = {
    "send": ("POST", "/v1/messages/send"),
    "list": ("GET", "/v1/messages"),
    "get": ("GET", "/v1/messages/{msg}"),
    "inbound": ("GET", "/v1/messages/inbound"),
    "inbound_get": ("GET", "/v1/messages/inbound/inmsg_x"),
    "groups": ("GET", "/v1/groups?fromPhoneId={phone}"),
    "phones": ("GET", "/v1/phone-numbers"),
    "phone": ("GET", "/v1/phone-numbers/{phone}"),
    "phone_status": ("GET", "/v1/phone-numbers/{phone}/status"),
    "account": ("GET", "/v1/account"),
    "usage": ("GET", "/v1/account/usage"),
}

MESSAGE_SCOPES = ("messages:read", "messages:send", "messages:write")

# The scopes that may call each endpoint; every other single scope gets 403.
ACCEPTED = {
    "send": {"messages:send", "messages:write"},
    "list": {"messages:read"},
    "get": {"messages:read"},
    "inbound": {"messages:read"},
    "inbound_get": {"messages:read"},
    "groups": set(MESSAGE_SCOPES),
    "phones": {"phone_numbers:read", "phone-numbers:read", *MESSAGE_SCOPES},
    "phone": {"phone_numbers:read", "phone-numbers:read", *MESSAGE_SCOPES},
    "phone_status": {"phone_numbers:read", "phone-numbers:read", *MESSAGE_SCOPES},
    "account": {"account:read", *MESSAGE_SCOPES},
    "usage": {"account:read", *MESSAGE_SCOPES},
}

ALL_SINGLE_SCOPES = (
    "messages:send",
    "messages:write",
    "messages:read",
    "phone_numbers:read",
    "phone-numbers:read",
    "account:read",
    "webhooks:read",
)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("scope", ALL_SINGLE_SCOPES)
async def test_scope_matrix(
    api: Api, sandbox: Sandbox, phone: str, endpoint: str, scope: str
) -> None:
    key = sandbox.create_key(scopes=(scope,))
    method, template = ENDPOINTS[endpoint]
    path = template.format(phone=phone, msg="msg_unknown")
    body = {"fromPhoneId": phone, "to": RECIPIENT, "content": "x"} if method == "POST" else None

    status, answer, _ = await api.request(method, path, key, json=body)

    if scope in ACCEPTED[endpoint]:
        # Allowed through the scope check: success, or the 404 of an unknown id.
        assert status in (200, 201, 404), answer
        assert status != 404 or "not found" in answer["message"][0]
    else:
        assert status == 403
        assert answer["error"] == "Forbidden"
        assert answer["message"][0].startswith("API key lacks the required scope")


async def test_a_key_with_no_scopes_gets_403_everywhere(
    api: Api, sandbox: Sandbox, phone: str
) -> None:
    key = sandbox.create_key(scopes=())

    for method, template in ENDPOINTS.values():
        status, _, _ = await api.request(method, template.format(phone=PHONE_NUMBER, msg="m"), key)
        assert status == 403


async def test_default_key_has_every_scope(api: Api, key: str, phone: str) -> None:
    for method, template in ENDPOINTS.values():
        body = (
            {"fromPhoneId": phone, "to": RECIPIENT, "content": "x"} if method == "POST" else None
        )
        status, _, _ = await api.request(
            method, template.format(phone=phone, msg="msg_x"), key, json=body
        )
        assert status in (200, 201, 404)
