"""Base URL conventions, trailing slashes, route order and the headers on every answer."""

from __future__ import annotations

import aiohttp
import pytest

from chatmaid_async.sandbox import Sandbox

from ._support import PHONE_NUMBER, Api


async def test_both_base_url_conventions_reach_the_same_endpoint(
    sandbox: Sandbox, key: str
) -> None:
    headers = {"Authorization": f"Bearer {key}"}

    # JS SDK style: the base includes /v1 and paths are relative to it.
    async with (
        aiohttp.ClientSession(base_url=f"{sandbox.base_url}/v1/", headers=headers) as js,
        js.get("account") as response,
    ):
        js_status = response.status
    # MCP style: the base has no /v1 and paths start with it.
    async with (
        aiohttp.ClientSession(base_url=sandbox.base_url, headers=headers) as mcp,
        mcp.get("/v1/account") as response,
    ):
        mcp_status = response.status

    assert js_status == mcp_status == 200


@pytest.mark.parametrize(
    "path", ["/v1/v1/account", "/v1/v1/messages/send", "/account", "/messages", "/", "/v2/account"]
)
async def test_a_doubled_or_missing_prefix_is_404(api: Api, key: str, path: str) -> None:
    status, body, _ = await api.request("GET", path, key)

    assert status == 404
    assert body["success"] is False
    assert body["message"] == [f"Cannot GET {path}"]
    assert body["path"] == path


@pytest.mark.parametrize(
    "path", ["/v1/account/", "/v1/messages/", "/v1/phone-numbers/", "/v1/account/usage/"]
)
async def test_a_trailing_slash_is_served_like_the_bare_path(
    api: Api, key: str, path: str
) -> None:
    status, body = await api.get(path, key)

    assert status == 200
    assert body["success"] is True


async def test_send_with_a_trailing_slash_is_served(api: Api, key: str, phone: str) -> None:
    status, _, _ = await api.request(
        "POST",
        "/v1/messages/send/",
        key,
        json={"fromPhoneId": phone, "to": "+15557654321", "content": "x"},
    )

    assert status == 201


async def test_the_inbound_segment_is_not_read_as_a_message_id(
    api: Api, sandbox: Sandbox, live_key: str, key: str
) -> None:
    inbound_status, inbound = await api.get("/v1/messages/inbound", key)
    missing_status, missing = await api.get("/v1/messages/inbound/msg_x", key)

    assert inbound_status == 200
    assert "pagination" in inbound["data"]
    assert missing_status == 404
    assert missing["message"] == ["Inbound message not found"]


@pytest.mark.parametrize("encoded", ["%2B15550100000", "+15550100000"])
async def test_phone_path_accepts_encoded_and_raw_plus(
    api: Api, key: str, phone: str, encoded: str
) -> None:
    status, body = await api.get(f"/v1/phone-numbers/{encoded}/status", key)

    assert status == 200
    assert body["data"]["phoneNumber"] == PHONE_NUMBER


async def test_wrong_method_is_a_404_envelope(api: Api, key: str) -> None:
    status, body, _ = await api.request("POST", "/v1/messages", key, json={})

    assert status == 404
    assert body["message"] == ["Cannot POST /v1/messages"]


async def test_get_on_the_send_path_is_an_unknown_message(api: Api, key: str) -> None:
    status, body = await api.get("/v1/messages/send", key)

    assert status == 404
    assert body["message"] == ["Message not found"]


@pytest.mark.parametrize(
    ("method", "path", "auth"),
    [
        ("GET", "/v1/account", True),
        ("GET", "/v1/account", False),
        ("GET", "/nowhere", True),
        ("POST", "/v1/messages/send", True),
    ],
)
async def test_every_answer_has_a_request_id(
    http: aiohttp.ClientSession, key: str, method: str, path: str, auth: bool
) -> None:
    headers = {"Authorization": f"Bearer {key}"} if auth else {}

    async with http.request(method, path, headers=headers, json={}) as response:
        request_id = response.headers.get("x-request-id")

    assert request_id is not None
    assert request_id.startswith("req_")


async def test_request_ids_are_unique(api: Api, key: str) -> None:
    ids = set()
    for _ in range(5):
        _, _, headers = await api.request("GET", "/v1/account", key)
        ids.add(headers["x-request-id"])

    assert len(ids) == 5
