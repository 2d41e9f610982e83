"""HTTP failures become typed SDK errors with the envelope's details (contract §6; F14, F15)."""

from __future__ import annotations

import asyncio
import re
import socket
from datetime import datetime, timedelta, timezone
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from conftest import BASE, KEY, error_body, sent_requests

from chatmaid_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    Chatmaid,
    ChatmaidError,
    DecodingError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    error_class_for_status,
)

UTC = timezone.utc
ACCOUNT_URL = f"{BASE}/v1/account"
SEND_URL = f"{BASE}/v1/messages/send"

F15_BODY = {
    "success": False,
    "error": "Bad Request",
    "message": [
        "to must be a valid E.164 number",
        "content must be shorter than or equal to 4096 characters",
    ],
    "statusCode": 400,
    "timestamp": "2026-01-01T00:00:00.000Z",
    "path": "/v1/messages/send",
}
DOCUMENTED_401 = {
    "success": False,
    "error": "Unauthorized",
    "message": ["Invalid API key"],
    "statusCode": 401,
    "timestamp": "2026-02-06T14:18:33.000Z",
    "path": "/v1/messages",
}

STATUS_CLASSES = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (409, APIStatusError),
    (413, APIStatusError),
    (418, APIStatusError),
    (422, BadRequestError),
    (429, RateLimitError),
    (500, InternalServerError),
    (502, InternalServerError),
    (503, InternalServerError),
    (504, InternalServerError),
    (520, InternalServerError),
    (529, InternalServerError),
]


def no_retries(client: Chatmaid) -> Chatmaid:
    return client.with_options(max_retries=0)


async def _account_error(client: Chatmaid) -> APIStatusError:
    with pytest.raises(APIStatusError) as caught:
        await client.account.get()
    return caught.value


# --- status to class ---------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "error_class"), STATUS_CLASSES)
def test_error_class_for_status_is_the_one_mapping(
    status: int, error_class: type[APIStatusError]
) -> None:
    assert error_class_for_status(status) is error_class


@pytest.mark.parametrize(("status", "error_class"), STATUS_CLASSES)
async def test_error_status_raises_its_class_with_the_envelope_fields(
    client: Chatmaid, mocked: aioresponses, status: int, error_class: type[APIStatusError]
) -> None:
    body = error_body(status, "Label", "first detail", "second detail", path="/v1/account")
    mocked.get(ACCOUNT_URL, status=status, payload=body, headers={"x-request-id": "req_123"})

    error = await _account_error(no_retries(client))

    assert type(error) is error_class
    assert error.status_code == status
    assert error.error == "Label"
    assert error.messages == ["first detail", "second detail"]
    assert error.path == "/v1/account"
    assert error.timestamp == datetime(2026, 1, 1, tzinfo=UTC)
    assert error.request_id == "req_123"
    assert error.headers["x-request-id"] == "req_123"
    assert error.body == body


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422])
async def test_4xx_is_not_retried(client: Chatmaid, mocked: aioresponses, status: int) -> None:
    mocked.get(ACCOUNT_URL, status=status, payload=error_body(status, "No"), repeat=True)

    await _account_error(client)

    assert len(sent_requests(mocked)) == 1


# --- F15: the envelope's details -------------------------------------------------------------


async def test_f15_bad_request_keeps_every_detail_of_the_envelope(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.post(SEND_URL, status=400, payload=F15_BODY, repeat=True)

    with pytest.raises(BadRequestError) as caught:
        await client.messages.send("+15551234567", "+15557654321", "hi", idempotency_key="k-1")

    error = caught.value
    assert error.status_code == 400
    assert error.error == "Bad Request"
    assert error.messages == F15_BODY["message"]
    assert error.path == "/v1/messages/send"
    assert error.timestamp == datetime(2026, 1, 1, tzinfo=UTC)
    assert error.body == F15_BODY
    assert error.idempotency_key == "k-1"
    assert "to must be a valid E.164 number" in str(error)
    assert "content must be shorter than or equal to 4096 characters" in str(error)
    assert len(sent_requests(mocked)) == 1


@pytest.mark.parametrize(
    ("method", "url", "status", "body", "error_class"),
    [
        pytest.param(
            "POST",
            SEND_URL,
            400,
            {**F15_BODY, "message": "to must be a valid E.164 number"},
            BadRequestError,
            id="400-string-message",
        ),
        pytest.param(
            "POST",
            SEND_URL,
            401,
            {**DOCUMENTED_401, "path": "/v1/messages/send"},
            AuthenticationError,
            id="401",
        ),
        pytest.param(
            "GET",
            f"{BASE}/v1/messages/msg_missing",
            404,
            error_body(404, "Not Found", "Message not found", path="/v1/messages/msg_missing"),
            NotFoundError,
            id="404",
        ),
        pytest.param(
            "POST",
            SEND_URL,
            422,
            {**F15_BODY, "statusCode": 422, "error": "Unprocessable Entity"},
            BadRequestError,
            id="422",
        ),
    ],
)
async def test_f15_variants_raise_typed_errors_with_messages_as_a_list(
    client: Chatmaid,
    mocked: aioresponses,
    method: str,
    url: str,
    status: int,
    body: dict[str, Any],
    error_class: type[APIStatusError],
) -> None:
    mocked.add(url, method, status=status, payload=body, repeat=True)

    if method == "POST":
        call = client.messages.send("+15551234567", "+15557654321", "hi")
    else:
        call = client.messages.get("msg_missing")
    with pytest.raises(APIStatusError) as caught:
        await call

    error = caught.value
    expected_messages = body["message"] if isinstance(body["message"], list) else [body["message"]]
    assert type(error) is error_class
    assert error.status_code == status
    assert error.error == body["error"]
    assert error.messages == expected_messages
    assert error.path == body["path"]
    assert error.timestamp is not None
    assert error.timestamp.tzinfo is not None
    assert all(message in str(error) for message in expected_messages)
    assert len(sent_requests(mocked)) == 1


async def test_documented_401_maps_to_authentication_error_with_its_values(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.get(re.compile(r".*/v1/messages\?.*"), status=401, payload=DOCUMENTED_401, repeat=True)

    with pytest.raises(AuthenticationError) as caught:
        await client.messages.list()

    error = caught.value
    assert (error.status_code, error.error, error.messages, error.path) == (
        401,
        "Unauthorized",
        ["Invalid API key"],
        "/v1/messages",
    )
    assert error.timestamp == datetime(2026, 2, 6, 14, 18, 33, tzinfo=UTC)
    assert str(error) == "401 Unauthorized on /v1/messages: Invalid API key"
    assert len(sent_requests(mocked)) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"success": False}, [], id="no-message"),
        pytest.param({"success": False, "message": []}, [], id="empty-list"),
        pytest.param({"success": False, "message": None}, [], id="null"),
        pytest.param({"success": False, "message": [1, "two"]}, ["1", "two"], id="non-strings"),
    ],
)
async def test_messages_is_always_a_list_of_strings(
    client: Chatmaid, mocked: aioresponses, body: dict[str, Any], expected: list[str]
) -> None:
    mocked.get(ACCOUNT_URL, status=403, payload=body)

    error = await _account_error(client)

    assert error.messages == expected
    assert error.error == "Forbidden"  # the reason phrase stands in for a missing label
    assert error.path == "/v1/account"  # the request's path stands in for a missing one


async def test_error_string_is_one_line_even_when_a_message_spans_lines(
    client: Chatmaid, mocked: aioresponses
) -> None:
    body = error_body(400, "Bad Request", "to is invalid\nsee the docs", "content\r\nis empty")
    mocked.get(ACCOUNT_URL, status=400, payload=body)

    error = await _account_error(client)

    assert "\n" not in str(error)
    assert "\r" not in str(error)
    assert "to is invalid" in str(error)
    assert "see the docs" in str(error)
    assert error.messages == ["to is invalid\nsee the docs", "content\r\nis empty"]


# --- request ids, retry hints, headers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "request_id"),
    [
        pytest.param({"x-request-id": "req_1"}, "req_1", id="x-request-id"),
        pytest.param({"X-Request-Id": "req_1"}, "req_1", id="x-request-id-any-case"),
        pytest.param({"x-amzn-requestid": "amzn_1"}, "amzn_1", id="amzn-fallback"),
        pytest.param({"X-Amzn-RequestId": "amzn_1"}, "amzn_1", id="amzn-any-case"),
        pytest.param({"x-amzn-requestid": "amzn_1", "x-request-id": "req_1"}, "req_1", id="both"),
        pytest.param({}, None, id="none"),
    ],
)
async def test_request_id_comes_from_x_request_id_then_x_amzn_requestid(
    client: Chatmaid, mocked: aioresponses, headers: dict[str, str], request_id: str | None
) -> None:
    mocked.get(ACCOUNT_URL, status=404, payload=error_body(404, "Not Found"), headers=headers)

    error = await _account_error(client)

    assert error.request_id == request_id


async def test_error_headers_are_looked_up_without_regard_to_case(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.get(
        ACCOUNT_URL,
        status=404,
        payload=error_body(404, "Not Found"),
        headers={"X-Request-Id": "req_1"},
    )

    error = await _account_error(client)

    assert error.headers["x-request-id"] == "req_1"
    assert error.headers.get("X-REQUEST-ID") == "req_1"


@pytest.mark.parametrize(
    ("body_extra", "headers", "retry_after"),
    [
        pytest.param({"retryAfter": 7}, {}, 7.0, id="body"),
        pytest.param({}, {"Retry-After": "3"}, 3.0, id="header"),
        pytest.param({"retryAfter": 7}, {"Retry-After": "3"}, 7.0, id="body-wins"),
        pytest.param({}, {}, None, id="absent"),
    ],
)
async def test_rate_limit_error_carries_retry_after_seconds(
    client: Chatmaid,
    mocked: aioresponses,
    body_extra: dict[str, Any],
    headers: dict[str, str],
    retry_after: float | None,
) -> None:
    body = {**error_body(429, "Too Many Requests", "Rate limit exceeded"), **body_extra}
    mocked.get(ACCOUNT_URL, status=429, payload=body, headers=headers)

    error = await _account_error(no_retries(client))

    assert isinstance(error, RateLimitError)
    assert error.retry_after == retry_after


# --- F14: bodies that are not the envelope -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "content_type", "body", "error_class", "attempts", "snippet"),
    [
        pytest.param(
            502,
            "text/html",
            "<html><body>Bad Gateway</body></html>",
            InternalServerError,
            3,
            "<html><body>Bad Gateway</body></html>",
            id="502-html",
        ),
        pytest.param(504, "text/html", "", InternalServerError, 3, "", id="504-empty"),
        pytest.param(
            500, "application/json", "{not json", InternalServerError, 3, "{not json", id="500"
        ),
        pytest.param(429, "text/plain", "slow down", RateLimitError, 3, "slow down", id="429"),
        pytest.param(
            404,
            "text/html",
            "<html>\n  <body><h1>404 Not Found</h1></body>\n</html>",
            NotFoundError,
            1,
            "<html> <body><h1>404 Not Found</h1></body> </html>",
            id="404-html",
        ),
    ],
)
async def test_f14_non_envelope_error_bodies_raise_only_sdk_errors(
    client: Chatmaid,
    mocked: aioresponses,
    status: int,
    content_type: str,
    body: str,
    error_class: type[APIStatusError],
    attempts: int,
    snippet: str,
) -> None:
    mocked.get(ACCOUNT_URL, status=status, body=body, content_type=content_type, repeat=True)

    with pytest.raises(ChatmaidError) as caught:
        await client.account.get()

    error = caught.value
    assert type(error) is error_class
    assert isinstance(error, APIStatusError)
    assert error.status_code == status
    assert error.messages == ([snippet] if snippet else [])
    assert error.body == snippet
    assert snippet in str(error)
    assert str(error).startswith(f"{status} ")
    assert "\n" not in str(error)
    assert len(sent_requests(mocked)) == attempts


async def test_f14_empty_200_says_the_body_was_empty(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.get(ACCOUNT_URL, status=200, body="", content_type="application/json", repeat=True)

    with pytest.raises(DecodingError, match="empty") as caught:
        await client.account.get()

    assert caught.value.endpoint == "/v1/account"
    assert len(sent_requests(mocked)) == 1


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param("{not json", "not JSON", id="invalid-json"),
        pytest.param("<html>ok</html>", "not JSON", id="html"),
        pytest.param("[1, 2]", "JSON object", id="array"),
        pytest.param('"data"', "JSON object", id="string"),
        pytest.param('{"success": true}', "no data", id="no-data"),
    ],
)
async def test_f14_unreadable_2xx_body_raises_decoding_error(
    client: Chatmaid, mocked: aioresponses, body: str, detail: str
) -> None:
    mocked.get(ACCOUNT_URL, status=200, body=body, content_type="application/json")

    with pytest.raises(DecodingError, match=detail):
        await client.account.get()


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32"], ids=str
)
async def test_a_json_answer_in_any_encoding_json_allows_decodes(
    client: Chatmaid, mocked: aioresponses, encoding: str
) -> None:
    text = '{"success": true, "data": {"name": "Acme \u00e9", "email": "a@example.com"}}'
    mocked.get(
        ACCOUNT_URL, status=200, body=text.encode(encoding), content_type="application/json"
    )

    account = await client.account.get()

    assert (account.name, account.email) == ("Acme \u00e9", "a@example.com")


async def test_f14_a_large_html_page_is_cut_to_about_one_kilobyte(
    client: Chatmaid, mocked: aioresponses
) -> None:
    page = "<html><body>" + "Bad Gateway. " * 4000 + "</body></html>"
    mocked.get(ACCOUNT_URL, status=502, body=page, content_type="text/html", repeat=True)

    error = await _account_error(client)

    assert isinstance(error.body, str)
    assert 0 < len(error.body) <= 1024
    assert len(str(error)) <= 1100
    assert str(error).startswith("502 Bad Gateway")


async def test_f14_a_body_that_is_not_utf8_still_gives_a_snippet(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.get(ACCOUNT_URL, status=404, body=b"\xff\xfeno\x80such", content_type="text/plain")

    error = await _account_error(client)

    assert isinstance(error, NotFoundError)
    assert "no" in str(error)
    assert "such" in str(error)


async def test_success_false_in_a_2xx_answer_raises_an_api_error(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.get(ACCOUNT_URL, status=200, payload=error_body(400, "Bad Request", "nope"))

    error = await _account_error(client)

    assert error.messages == ["nope"]
    assert error.error == "Bad Request"


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        pytest.param(aiohttp.ClientConnectionError("refused"), APIConnectionError, id="refused"),
        pytest.param(aiohttp.ServerDisconnectedError(), APIConnectionError, id="disconnected"),
        pytest.param(asyncio.TimeoutError(), APITimeoutError, id="timeout"),
    ],
)
async def test_transport_failures_surface_as_sdk_errors_after_the_retries(
    client: Chatmaid,
    mocked: aioresponses,
    failure: Exception,
    error_class: type[ChatmaidError],
) -> None:
    mocked.get(ACCOUNT_URL, exception=failure, repeat=True)

    with pytest.raises(ChatmaidError) as caught:
        await client.account.get()

    assert type(caught.value) is error_class
    assert not isinstance(caught.value, aiohttp.ClientError)
    assert "/v1/account" in str(caught.value)
    assert len(sent_requests(mocked)) == 3


async def test_connection_refused_surfaces_as_api_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = Chatmaid(KEY, base_url=f"http://127.0.0.1:{port}", rate_limit=None)

    with pytest.raises(APIConnectionError) as caught:
        await refused.with_options(max_retries=0).account.get()
    await refused.aclose()

    assert "/v1/account" in str(caught.value)
    assert KEY not in str(caught.value)


async def test_an_unknown_status_without_a_label_is_named_by_its_number(
    client: Chatmaid, mocked: aioresponses
) -> None:
    mocked.get(ACCOUNT_URL, status=499, body="")

    error = await _account_error(client)

    assert type(error) is APIStatusError
    assert error.error == "HTTP 499"
    assert str(error) == "499 HTTP 499 on /v1/account"


# --- the timestamp field (F21) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-03-20T19:26:08Z", datetime(2026, 3, 20, 19, 26, 8, tzinfo=UTC)),
        ("2026-03-20T19:26:08.123Z", datetime(2026, 3, 20, 19, 26, 8, 123000, tzinfo=UTC)),
        ("2026-03-20T19:26:08.123456Z", datetime(2026, 3, 20, 19, 26, 8, 123456, tzinfo=UTC)),
        ("2026-03-20T19:26:08+00:00", datetime(2026, 3, 20, 19, 26, 8, tzinfo=UTC)),
        ("2026-03-20T19:26:08.1234567Z", datetime(2026, 3, 20, 19, 26, 8, 123456, tzinfo=UTC)),
        (None, None),
        ("yesterday", None),
    ],
)
async def test_f21_error_timestamp_is_aware_utc_or_none(
    client: Chatmaid, mocked: aioresponses, timestamp: str | None, expected: datetime | None
) -> None:
    mocked.get(ACCOUNT_URL, status=404, payload={**error_body(404, "x"), "timestamp": timestamp})

    error = await _account_error(client)

    assert error.timestamp == expected
    if error.timestamp is not None:
        assert error.timestamp.utcoffset() == timedelta(0)


# --- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500])
async def test_no_error_shows_the_api_key(
    client: Chatmaid, mocked: aioresponses, status: int
) -> None:
    mocked.get(ACCOUNT_URL, status=status, payload=error_body(status, "x", "detail"))

    error = await _account_error(no_retries(client))

    shown = " ".join([str(error), repr(error), str(error.headers), str(error.body)])
    assert KEY not in shown
    assert KEY[len("sk_test_") :] not in shown


async def test_authentication_error_does_not_show_the_live_key(mocked: aioresponses) -> None:
    live_key = "sk_live_abcdefghijklmnop1234"
    mocked.get(ACCOUNT_URL, status=401, payload=DOCUMENTED_401)

    async with Chatmaid(live_key, rate_limit=None) as client:
        error = await _account_error(client)

    assert "abcdefghijklmnop" not in f"{error} {error!r} {client!r}"
