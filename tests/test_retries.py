"""Client-level retries: what is retried, how long the client waits, what it tells the limiter.

Sleeps between attempts are recorded through the transport's injectable ``_sleep`` instead of
slept, so the default policy (0.5 s base, 8 s cap, 60 s max wait) is tested as it ships.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import tenacity
from aiohttp import web
from aioresponses import CallbackResult, aioresponses
from conftest import BASE, KEY, envelope, error_body, sent_requests

from chatmaid_async import Chatmaid, RateLimit, RetryPolicy
from chatmaid_async.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ChatmaidError,
    DecodingError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RateLimiterUnavailableError,
    ValidationError,
)

SEND_URL = f"{BASE}/v1/messages/send"
ACCOUNT_URL = f"{BASE}/v1/account"
PHONES_URL = f"{BASE}/v1/phone-numbers"
MESSAGE = {"id": "msg_abc123", "status": "sent", "to": "+15550100001"}
ACCOUNT = {"accountId": "acc_1", "name": "Test account"}
RETRYABLE_STATUSES = [408, 429, 500, 502, 503, 504, 520, 522, 529]
NEVER_RETRIED = [
    (400, BadRequestError),
    (401, AuthenticationError),
    (403, PermissionDeniedError),
    (404, NotFoundError),
    (409, APIStatusError),
    (413, APIStatusError),
    (422, BadRequestError),
]


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
async def default_client() -> AsyncIterator[Chatmaid]:
    """A client with the shipped retry policy and pacing off; its sleeps are recorded."""
    async with Chatmaid(KEY, rate_limit=None) as c:
        yield c


def record_sleeps(client: Chatmaid) -> list[float]:
    """Capture every wait the transport asks for, without waiting."""
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client._transport._sleep = sleep
    return sleeps


@pytest.fixture
def jitter_at_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make full jitter deterministic: every backoff draw is the top of its range."""
    monkeypatch.setattr(random, "uniform", lambda a, b: b)


async def send(client: Chatmaid, **kwargs: Any) -> Any:
    return await client.messages.send("ph_test_1", "+15550100001", "hi", **kwargs)


async def get_account(client: Chatmaid) -> Any:
    return await client.account.get()


OPERATIONS: dict[str, tuple[str, str, Callable[[Chatmaid], Any], int, dict[str, Any]]] = {
    "read": ("GET", ACCOUNT_URL, get_account, 200, ACCOUNT),
    "send": ("POST", SEND_URL, send, 201, MESSAGE),
}


def register(
    mock: aioresponses, operation: str, status: int, **kwargs: Any
) -> Callable[[Chatmaid], Any]:
    """Queue one answer for the operation's route; returns the call that hits it."""
    method, url, call, _, data = OPERATIONS[operation]
    if status < 300:
        kwargs.setdefault("payload", envelope(data))
    else:
        kwargs.setdefault("payload", error_body(status, "Failure", path=url[len(BASE) :]))
    mock.add(url, method, status=status, **kwargs)
    return call


def succeed(mock: aioresponses, operation: str) -> None:
    _, _, _, ok_status, _ = OPERATIONS[operation]
    register(mock, operation, ok_status)


def posted_bodies(mock: aioresponses) -> list[bytes]:
    return [kwargs["data"] for method, _, kwargs in sent_requests(mock) if method == "POST"]


def rate_limited(retry_after: str | None = None, **headers: str) -> dict[str, Any]:
    """A 429 answer with the envelope and, optionally, a Retry-After header."""
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return {
        "status": 429,
        "payload": error_body(429, "Too Many Requests", path="/v1/messages/send"),
        "headers": headers,
    }


class FakePermit:
    def __init__(self, limiter: FakeLimiter) -> None:
        self._limiter = limiter

    async def release(self, *, sent: bool) -> None:
        self._limiter.calls.append(("release", sent))


class FakeLimiter:
    """Implements the ``Limiter`` protocol and records what the transport asks of it."""

    rate_limit = RateLimit()

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def acquire(self) -> FakePermit:
        self.calls.append(("acquire", None))
        return FakePermit(self)

    async def hold(self, seconds: float) -> None:
        self.calls.append(("hold", seconds))


def with_fake_limiter(client: Chatmaid) -> FakeLimiter:
    limiter = FakeLimiter()
    client._transport._limiter = limiter
    return limiter


def closed_port() -> int:
    """A loopback port nobody listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- which failures are retried (F30) --------------------------------------------------------


@pytest.mark.parametrize("operation", ["read", "send"])
@pytest.mark.parametrize("status", RETRYABLE_STATUSES)
async def test_f30_retryable_status_is_retried_then_succeeds(
    mocked: aioresponses, client: Chatmaid, status: int, operation: str
):
    call = register(mocked, operation, status)
    succeed(mocked, operation)

    result = await call(client)

    assert result is not None
    assert len(sent_requests(mocked)) == 2


@pytest.mark.parametrize("operation", ["read", "send"])
@pytest.mark.parametrize(("status", "error_class"), NEVER_RETRIED)
async def test_f30_client_error_fails_after_exactly_one_request_with_its_typed_error(
    mocked: aioresponses,
    client: Chatmaid,
    status: int,
    error_class: type[APIStatusError],
    operation: str,
):
    call = register(mocked, operation, status)
    succeed(mocked, operation)  # a retry would reach this and succeed
    sleeps = record_sleeps(client)

    with pytest.raises(error_class) as raised:
        await call(client)

    assert type(raised.value) is error_class
    assert raised.value.status_code == status
    assert len(sent_requests(mocked)) == 1
    assert sleeps == []


async def test_f30_a_401_never_shows_the_key(mocked: aioresponses, client: Chatmaid):
    mocked.get(ACCOUNT_URL, status=401, payload=error_body(401, "Unauthorized", "Invalid API key"))

    with pytest.raises(AuthenticationError) as raised:
        await client.account.get()

    shown = [str(raised.value), repr(raised.value), repr(vars(raised.value))]
    assert not any(KEY.removeprefix("sk_test_") in text for text in shown)
    assert len(sent_requests(mocked)) == 1


@pytest.mark.parametrize("operation", ["read", "send"])
@pytest.mark.parametrize(
    "failure",
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientOSError(104, "Connection reset by peer"),
        aiohttp.ClientPayloadError("truncated body"),
        asyncio.TimeoutError(),
    ],
    ids=["disconnected", "reset", "payload", "timeout"],
)
async def test_connection_errors_and_timeouts_are_retried(
    mocked: aioresponses, client: Chatmaid, failure: Exception, operation: str
):
    method, url, call, _, _ = OPERATIONS[operation]
    mocked.add(url, method, exception=failure)
    succeed(mocked, operation)

    assert await call(client) is not None
    assert len(sent_requests(mocked)) == 2


@pytest.mark.parametrize("max_retries", [0, 1, 2, 3, 5])
async def test_attempts_never_exceed_max_retries_plus_one(mocked: aioresponses, max_retries: int):
    for _ in range(max_retries + 3):
        register(mocked, "read", 503)
    async with Chatmaid(KEY, rate_limit=None, max_retries=max_retries) as client:
        sleeps = record_sleeps(client)

        with pytest.raises(InternalServerError) as raised:
            await client.account.get()

    assert raised.value.status_code == 503
    assert len(sent_requests(mocked)) == max_retries + 1
    assert len(sleeps) == max_retries


async def test_the_last_failure_is_raised_as_the_sdks_own_error_not_a_retry_error(
    mocked: aioresponses, client: Chatmaid
):
    register(mocked, "read", 503)
    register(mocked, "read", 502)
    register(mocked, "read", 500)

    with pytest.raises(InternalServerError) as raised:
        await client.account.get()

    assert not isinstance(raised.value, tenacity.RetryError)
    assert raised.value.status_code == 500


async def test_a_retry_that_meets_a_client_error_stops_there(
    mocked: aioresponses, client: Chatmaid
):
    register(mocked, "read", 503)
    register(mocked, "read", 404)
    succeed(mocked, "read")

    with pytest.raises(NotFoundError):
        await client.account.get()

    assert len(sent_requests(mocked)) == 2


async def test_each_call_gets_the_full_retry_budget(mocked: aioresponses, client: Chatmaid):
    # A retrier shared between calls would carry the first call's attempts into the second.
    for _ in range(2):
        register(mocked, "read", 503)
        register(mocked, "read", 503)
        succeed(mocked, "read")

    await client.account.get()
    await client.account.get()

    assert len(sent_requests(mocked)) == 6


async def test_concurrent_calls_retry_independently(mocked: aioresponses, client: Chatmaid):
    for url in (ACCOUNT_URL, PHONES_URL):
        mocked.get(url, status=503, payload=error_body(503, "Service Unavailable"))
        mocked.get(url, status=503, payload=error_body(503, "Service Unavailable"))
    mocked.get(ACCOUNT_URL, payload=envelope(ACCOUNT))
    mocked.get(PHONES_URL, payload=envelope([{"id": "507f1f77bcf86cd799439011"}]))

    account, phones = await asyncio.gather(client.account.get(), client.phone_numbers.list())

    assert account.account_id == "acc_1"
    assert [phone.id for phone in phones] == ["507f1f77bcf86cd799439011"]
    assert len(sent_requests(mocked)) == 6


# --- backoff ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("jitter_at_ceiling")
async def test_default_backoff_waits_up_to_half_a_second_then_a_second(
    mocked: aioresponses, default_client: Chatmaid
):
    for _ in range(3):
        register(mocked, "read", 503)
    sleeps = record_sleeps(default_client)

    with pytest.raises(InternalServerError):
        await default_client.account.get()

    assert sleeps == [0.5, 1.0]


async def test_default_backoff_is_jittered_within_its_ceiling(
    mocked: aioresponses, default_client: Chatmaid
):
    for _ in range(3):
        register(mocked, "read", 503)
    sleeps = record_sleeps(default_client)

    with pytest.raises(InternalServerError):
        await default_client.account.get()

    assert len(sleeps) == 2
    assert 0.0 <= sleeps[0] <= 0.5
    assert 0.0 <= sleeps[1] <= 1.0


@pytest.mark.usefixtures("jitter_at_ceiling")
async def test_backoff_doubles_up_to_the_configured_cap(mocked: aioresponses):
    for _ in range(7):
        register(mocked, "read", 503)
    policy = RetryPolicy(max_retries=6, base_delay=0.25, max_delay=2.0)
    async with Chatmaid(KEY, rate_limit=None, retry=policy) as client:
        sleeps = record_sleeps(client)
        with pytest.raises(InternalServerError):
            await client.account.get()

    assert sleeps == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]


# --- idempotency across retries (F06) --------------------------------------------------------


async def test_f06_send_retries_on_503_with_the_same_idempotency_key(
    mocked: aioresponses, client: Chatmaid
):
    register(mocked, "send", 503)
    register(mocked, "send", 503)
    succeed(mocked, "send")

    message = await client.messages.send(
        "ph_test_1", "+15550100001", "hi", idempotency_key="order-42"
    )

    bodies = posted_bodies(mocked)
    assert len(bodies) == 3
    assert bodies[0] == bodies[1] == bodies[2]
    assert json.loads(bodies[0]) == {
        "fromPhoneId": "ph_test_1",
        "to": "+15550100001",
        "content": "hi",
        "idempotencyKey": "order-42",
    }
    assert message.idempotency_key == "order-42"


async def test_f06_generated_key_is_reused_on_every_attempt_and_new_for_every_call(
    mocked: aioresponses, client: Chatmaid
):
    for _ in range(2):
        register(mocked, "send", 503)
        register(mocked, "send", 502)
        succeed(mocked, "send")

    first = await send(client)
    second = await send(client)

    keys = [json.loads(body)["idempotencyKey"] for body in posted_bodies(mocked)]
    assert keys[0] == keys[1] == keys[2] == first.idempotency_key
    assert keys[3] == keys[4] == keys[5] == second.idempotency_key
    assert first.idempotency_key != second.idempotency_key


async def test_f06_a_65_character_key_is_rejected_before_any_request(
    mocked: aioresponses, client: Chatmaid
):
    succeed(mocked, "send")

    with pytest.raises(ValidationError) as raised:
        await send(client, idempotency_key="k" * 65)

    assert raised.value.field == "idempotency_key"
    assert sent_requests(mocked) == []


async def test_f06_a_64_character_key_is_sent(mocked: aioresponses, client: Chatmaid):
    succeed(mocked, "send")

    message = await send(client, idempotency_key="k" * 64)

    assert message.idempotency_key == "k" * 64
    assert json.loads(posted_bodies(mocked)[0])["idempotencyKey"] == "k" * 64


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        ({"status": 503, "payload": error_body(503, "Service Unavailable")}, InternalServerError),
        ({"exception": aiohttp.ServerDisconnectedError()}, APIConnectionError),
        ({"exception": asyncio.TimeoutError()}, APITimeoutError),
    ],
    ids=["status", "connection", "timeout"],
)
@pytest.mark.parametrize("key", ["order-42", None], ids=["callers-key", "generated-key"])
async def test_f06_the_idempotency_key_is_on_the_error_when_every_attempt_fails(
    mocked: aioresponses,
    client: Chatmaid,
    failure: dict[str, Any],
    error_class: type[Exception],
    key: str | None,
):
    for _ in range(3):
        mocked.post(SEND_URL, **failure)

    with pytest.raises(error_class) as raised:
        await send(client, idempotency_key=key)

    sent_key = json.loads(posted_bodies(mocked)[0])["idempotencyKey"]
    assert raised.value.idempotency_key == sent_key  # type: ignore[attr-defined]
    assert key is None or sent_key == key
    assert len(posted_bodies(mocked)) == 3


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"success": true, "data": {"id": "msg_1"', id="cut-off-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"success": true}', id="no-data"),
        pytest.param(b'{"success": true, "data": {"id": 5, "status": []}}', id="wrong-fields"),
    ],
)
@pytest.mark.parametrize("key", ["order-42", None], ids=["callers-key", "generated-key"])
async def test_a_send_answered_2xx_but_undecodable_hands_back_its_idempotency_key(
    mocked: aioresponses, client: Chatmaid, body: bytes, key: str | None
) -> None:
    # The message exists at the API: only its key lets the caller check or resend safely.
    mocked.post(SEND_URL, status=201, body=body, content_type="application/json")

    with pytest.raises(DecodingError) as raised:
        await send(client, idempotency_key=key)

    sent_key = json.loads(posted_bodies(mocked)[0])["idempotencyKey"]
    assert raised.value.idempotency_key == sent_key
    assert key is None or sent_key == key


async def test_a_read_that_cannot_be_decoded_has_no_idempotency_key(
    mocked: aioresponses, client: Chatmaid
) -> None:
    mocked.get(f"{BASE}/v1/account", status=200, body=b"{", content_type="application/json")

    with pytest.raises(DecodingError) as raised:
        await client.account.get()

    assert raised.value.idempotency_key is None


class LimiterDownAfterFirstSlot:
    """A shared limiter that grants one slot, then fails (Redis gone, or the limiter closed)."""

    rate_limit = RateLimit(100, per=60)

    def __init__(self, failure: ChatmaidError) -> None:
        self.failure = failure
        self.slots_asked = 0

    def limiter_for(self, fingerprint: str, rate_limit: RateLimit, *, name: str) -> Any:
        return self

    async def acquire(self) -> Any:
        self.slots_asked += 1
        if self.slots_asked > 1:
            raise self.failure
        return self

    async def release(self, *, sent: bool) -> None:
        pass

    async def hold(self, seconds: float) -> None:
        pass


@pytest.mark.parametrize(
    "first_answer",
    [
        pytest.param({"status": 503, "payload": error_body(503, "Unavailable")}, id="503"),
        pytest.param({"exception": aiohttp.ServerDisconnectedError()}, id="dropped"),
    ],
)
@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(RateLimiterUnavailableError("the limiter did not answer"), id="unavailable"),
        pytest.param(ChatmaidError("this RedisRateLimiter is closed"), id="closed"),
    ],
)
async def test_a_limiter_failing_before_a_retry_hands_back_the_sends_idempotency_key(
    mocked: aioresponses,
    fast_retry: RetryPolicy,
    first_answer: dict[str, Any],
    failure: ChatmaidError,
) -> None:
    # The first attempt may have created the message; only its key makes a resend safe.
    mocked.post(SEND_URL, **first_answer)
    limiter = LimiterDownAfterFirstSlot(failure)
    client = Chatmaid(KEY, base_url=BASE, rate_limiter=limiter, retry=fast_retry)

    with pytest.raises(type(failure)) as raised:
        await send(client)
    await client.aclose()

    assert limiter.slots_asked == 2
    [sent_key] = [json.loads(body)["idempotencyKey"] for body in posted_bodies(mocked)]
    assert raised.value.idempotency_key == sent_key


async def test_a_callers_session_closed_before_a_retry_hands_back_the_sends_idempotency_key(
    mocked: aioresponses, fast_retry: RetryPolicy
) -> None:
    session = aiohttp.ClientSession()

    async def answer_503_as_the_app_shuts_down(url: Any, **kwargs: Any) -> CallbackResult:
        await session.close()
        return CallbackResult(status=503, payload=error_body(503, "Unavailable"))

    mocked.post(SEND_URL, callback=answer_503_as_the_app_shuts_down)
    client = Chatmaid(KEY, base_url=BASE, session=session, rate_limit=None, retry=fast_retry)

    with pytest.raises(ChatmaidError, match="session= is closed") as raised:
        await send(client)
    await client.aclose()

    [sent_key] = [json.loads(body)["idempotencyKey"] for body in posted_bodies(mocked)]
    assert raised.value.idempotency_key == sent_key


class DedupingServer:
    """A send endpoint that stores messages by idempotency key, failing the first attempt.

    ``commit_before_failing`` plays the worst case: the message is created, then the answer
    is lost in a 503, so only the key stops the retry from sending it twice.
    """

    def __init__(self, *, commit_before_failing: bool) -> None:
        self.commit_before_failing = commit_before_failing
        self.messages: dict[str, dict[str, Any]] = {}
        self.keys_seen: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        key = body["idempotencyKey"]
        self.keys_seen.append(key)
        first_attempt = len(self.keys_seen) == 1
        if first_attempt and not self.commit_before_failing:
            return web.json_response(error_body(503, "Service Unavailable"), status=503)
        if key not in self.messages:
            self.messages[key] = {
                "id": f"msg_{len(self.messages) + 1}",
                "status": "sent",
                "to": body["to"],
            }
        if first_attempt:
            return web.json_response(error_body(503, "Service Unavailable"), status=503)
        return web.json_response(envelope(self.messages[key]), status=201)


@contextlib.asynccontextmanager
async def serving(handler: Callable[[web.Request], Any]) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/v1/messages/send", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("commit_before_failing", [False, True], ids=["lost", "committed"])
@pytest.mark.parametrize("key", ["order-42", None], ids=["callers-key", "generated-key"])
async def test_f06_a_503_then_201_creates_exactly_one_message(
    fast_retry: RetryPolicy, commit_before_failing: bool, key: str | None
):
    server = DedupingServer(commit_before_failing=commit_before_failing)
    async with (
        serving(server.handle) as url,
        Chatmaid(KEY, base_url=url, rate_limit=None, retry=fast_retry) as client,
    ):
        message = await send(client, idempotency_key=key)

    assert len(server.messages) == 1
    assert len(server.keys_seen) == 2
    assert server.keys_seen[0] == server.keys_seen[1] == message.idempotency_key
    assert message.id == server.messages[message.idempotency_key]["id"]


# --- Retry-After as a date (F02) -------------------------------------------------------------

SERVER_DATE = "Wed, 21 Oct 2026 07:27:30 GMT"


@pytest.mark.parametrize(
    "retry_at",
    [
        "Wed, 21 Oct 2026 07:28:00 GMT",
        "Wednesday, 21-Oct-26 07:28:00 GMT",
        "Wed Oct 21 07:28:00 2026",
    ],
    ids=["imf-fixdate", "rfc850", "asctime"],
)
async def test_f02_retry_after_http_date_waits_until_that_moment(
    mocked: aioresponses, default_client: Chatmaid, retry_at: str
):
    mocked.post(SEND_URL, **rate_limited(retry_at, Date=SERVER_DATE))
    succeed(mocked, "send")
    sleeps = record_sleeps(default_client)

    message = await send(default_client)

    assert message.id == "msg_abc123"
    assert len(sleeps) == 1
    assert sleeps[0] == pytest.approx(30.0, abs=1.0)
    assert len(sent_requests(mocked)) == 2


@pytest.mark.usefixtures("jitter_at_ceiling")
async def test_f02_a_retry_after_date_in_the_past_retries_after_the_normal_backoff(
    mocked: aioresponses, default_client: Chatmaid
):
    mocked.post(SEND_URL, **rate_limited("Wed, 21 Oct 2026 07:17:30 GMT", Date=SERVER_DATE))
    succeed(mocked, "send")
    sleeps = record_sleeps(default_client)

    await send(default_client)

    assert sleeps == [0.5]
    assert len(sent_requests(mocked)) == 2


# --- malformed Retry-After (F03) -------------------------------------------------------------

BACKOFF = 0.5  # the first retry's ceiling under the default policy, with jitter at its top


@pytest.mark.usefixtures("jitter_at_ceiling")
@pytest.mark.parametrize(
    ("retry_after", "expected_sleep"),
    [
        ("-1", BACKOFF),
        ("-3", BACKOFF),
        ("+3", 3.0),
        ("1.5", 1.5),
        (" 7 ", 7.0),
        ("abc", BACKOFF),
        ("", BACKOFF),
        ("Thu, 01 Jan 1970 00:00:00 GMT", BACKOFF),
    ],
)
async def test_f03_negative_or_malformed_retry_after_still_retries_once(
    mocked: aioresponses, default_client: Chatmaid, retry_after: str, expected_sleep: float
):
    mocked.post(SEND_URL, **rate_limited(retry_after))
    succeed(mocked, "send")
    sleeps = record_sleeps(default_client)

    await send(default_client)

    assert sleeps == [expected_sleep]
    assert len(sent_requests(mocked)) == 2


@pytest.mark.parametrize("retry_after", ["-1", "-3", "Thu, 01 Jan 1970 00:00:00 GMT"])
async def test_f03_a_negative_hint_never_reaches_a_real_sleep(
    mocked: aioresponses, client: Chatmaid, retry_after: str
):
    # The real asyncio.sleep here: a negative or past hint must not become its argument.
    mocked.post(SEND_URL, **rate_limited(retry_after))
    succeed(mocked, "send")

    await send(client)

    assert len(sent_requests(mocked)) == 2


async def test_f02_an_out_of_range_retry_after_date_falls_back_to_backoff(
    mocked: aioresponses, default_client: Chatmaid
):
    mocked.post(SEND_URL, **rate_limited("Wed, 21 Oct 2026 07:28:00 +99999999999999999999"))
    succeed(mocked, "send")
    sleeps = record_sleeps(default_client)

    await send(default_client)

    assert len(sleeps) == 1
    assert 0.0 <= sleeps[0] <= 0.5


async def test_the_body_retry_after_wins_over_the_header(
    mocked: aioresponses, default_client: Chatmaid
):
    answer = rate_limited("20")
    answer["payload"]["retryAfter"] = 2
    mocked.post(SEND_URL, **answer)
    succeed(mocked, "send")
    sleeps = record_sleeps(default_client)

    await send(default_client)

    assert sleeps == [2.0]


@pytest.mark.parametrize("where", ["body", "header"])
async def test_a_hint_above_max_retry_wait_fails_at_once_without_sleeping(
    mocked: aioresponses, default_client: Chatmaid, where: str
):
    answer = rate_limited("61" if where == "header" else None)
    if where == "body":
        answer["payload"]["retryAfter"] = 61
    mocked.post(SEND_URL, **answer)
    succeed(mocked, "send")
    sleeps = record_sleeps(default_client)

    with pytest.raises(RateLimitError) as raised:
        await send(default_client)

    assert raised.value.retry_after == 61.0
    assert len(sent_requests(mocked)) == 1
    assert sleeps == []


async def test_max_retry_wait_is_configurable(mocked: aioresponses):
    mocked.post(SEND_URL, **rate_limited("90"))
    succeed(mocked, "send")
    async with Chatmaid(KEY, rate_limit=None, retry=RetryPolicy(max_retry_wait=120)) as client:
        sleeps = record_sleeps(client)
        await send(client)

    assert sleeps == [90.0]


async def test_a_key_that_stays_rate_limited_fails_with_the_last_hint(
    mocked: aioresponses, default_client: Chatmaid
):
    for seconds in ("1", "2", "3"):
        mocked.post(SEND_URL, **rate_limited(seconds))
    sleeps = record_sleeps(default_client)

    with pytest.raises(RateLimitError) as raised:
        await send(default_client)

    assert sleeps == [1.0, 2.0]
    assert raised.value.retry_after == 3.0
    assert len(sent_requests(mocked)) == 3


# --- server feedback to the limiter ----------------------------------------------------------


async def test_a_429_hint_holds_the_whole_key_on_the_limiter(
    mocked: aioresponses, client: Chatmaid
):
    mocked.post(SEND_URL, **rate_limited("3"))
    succeed(mocked, "send")
    limiter = with_fake_limiter(client)
    record_sleeps(client)

    await send(client)

    assert limiter.calls == [
        ("acquire", None),
        ("release", True),
        ("hold", 3.0),
        ("acquire", None),
        ("release", True),
    ]


async def test_a_429_hint_pauses_the_in_process_limiter_before_the_retry(mocked: aioresponses):
    mocked.post(SEND_URL, **rate_limited("0.3"))
    succeed(mocked, "send")
    key = "sk_test_retries_hold_0000000001"  # a key of its own: limiters are shared per key
    async with Chatmaid(key, rate_limit=RateLimit(100, 1.0)) as client:
        sleeps = record_sleeps(client)  # the retry's own wait is recorded, not slept
        started = time.monotonic()
        await send(client)
        elapsed = time.monotonic() - started

    assert sleeps == [0.3]
    assert 0.3 <= elapsed < 0.6  # the limiter's hold is what delayed the retry


async def test_a_429_hint_past_max_retry_wait_holds_the_key_only_that_long(
    mocked: aioresponses, client: Chatmaid
):
    mocked.post(SEND_URL, **rate_limited("3600"))
    limiter = with_fake_limiter(client)

    with pytest.raises(RateLimitError):
        await send(client)

    assert ("hold", client._options.retry.max_retry_wait) in limiter.calls


async def test_a_429_without_a_hint_does_not_hold_the_key(mocked: aioresponses, client: Chatmaid):
    mocked.post(SEND_URL, **rate_limited())
    succeed(mocked, "send")
    limiter = with_fake_limiter(client)

    await send(client)

    assert limiter.calls == [("acquire", None), ("release", True)] * 2


@pytest.mark.parametrize("status", [200, 503])
async def test_an_exhausted_quota_holds_the_key_until_the_reset(
    mocked: aioresponses, client: Chatmaid, status: int
):
    quota = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "12"}
    register(mocked, "read", status, headers=quota)
    succeed(mocked, "read")
    limiter = with_fake_limiter(client)

    await client.account.get()

    assert limiter.calls[:3] == [("acquire", None), ("release", True), ("hold", 12.0)]


async def test_a_quota_reset_given_as_a_unix_time_holds_until_then(
    mocked: aioresponses, client: Chatmaid
):
    reset = str(int(time.time()) + 20)
    register(
        mocked, "read", 200, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}
    )
    limiter = with_fake_limiter(client)

    await client.account.get()

    holds = [value for name, value in limiter.calls if name == "hold"]
    assert len(holds) == 1
    assert holds[0] == pytest.approx(20.0, abs=1.5)


async def test_a_quota_with_requests_left_holds_nothing(mocked: aioresponses, client: Chatmaid):
    register(
        mocked, "read", 200, headers={"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "12"}
    )
    limiter = with_fake_limiter(client)

    await client.account.get()

    assert limiter.calls == [("acquire", None), ("release", True)]


async def test_a_refused_connection_gives_every_slot_back_unsent(client: Chatmaid):
    client._transport._origin = f"http://127.0.0.1:{closed_port()}"
    limiter = with_fake_limiter(client)

    with pytest.raises(APIConnectionError) as raised:
        await client.account.get()

    assert not isinstance(raised.value, APITimeoutError)
    assert limiter.calls == [("acquire", None), ("release", False)] * 3


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503, "payload": error_body(503, "Service Unavailable")},
        {"exception": asyncio.TimeoutError()},
        {"exception": aiohttp.ServerDisconnectedError()},
    ],
    ids=["response", "timeout", "disconnected"],
)
async def test_an_attempt_that_may_have_reached_the_server_counts_as_sent(
    mocked: aioresponses, client: Chatmaid, failure: dict[str, Any]
):
    mocked.get(ACCOUNT_URL, **failure)
    succeed(mocked, "read")
    limiter = with_fake_limiter(client)

    await client.account.get()

    assert limiter.calls == [("acquire", None), ("release", True)] * 2


# --- logging ---------------------------------------------------------------------------------

PHONE = "+15550100001"
CONTENT = "secret text"


def _record_texts(records: list[logging.LogRecord]) -> list[str]:
    return [
        text
        for record in records
        for text in (record.getMessage(), str(record.msg), repr(record.args))
    ]


async def test_each_attempt_is_logged_at_debug_with_metadata(
    mocked: aioresponses, client: Chatmaid, caplog: pytest.LogCaptureFixture
):
    register(mocked, "send", 503)
    succeed(mocked, "send")
    caplog.set_level(logging.DEBUG, logger="chatmaid_async")

    await send(client)

    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(lines) == 2
    assert lines[0].startswith("POST /v1/messages/send attempt 1: 503 in ")
    assert lines[1].startswith("POST /v1/messages/send attempt 2: 201 in ")
    assert all(line.endswith("s") for line in lines)


async def test_an_attempt_without_a_response_is_logged_as_such(
    mocked: aioresponses, client: Chatmaid, caplog: pytest.LogCaptureFixture
):
    mocked.get(ACCOUNT_URL, exception=aiohttp.ServerDisconnectedError())
    succeed(mocked, "read")
    caplog.set_level(logging.DEBUG, logger="chatmaid_async")

    await client.account.get()

    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert lines[0].startswith("GET /v1/account attempt 1: no response in ")


async def test_each_retry_is_logged_as_a_warning_with_reason_and_delay(
    mocked: aioresponses, default_client: Chatmaid, caplog: pytest.LogCaptureFixture
):
    mocked.post(SEND_URL, **rate_limited("2"))
    mocked.post(SEND_URL, exception=asyncio.TimeoutError())
    succeed(mocked, "send")
    record_sleeps(default_client)
    caplog.set_level(logging.DEBUG, logger="chatmaid_async")

    await send(default_client)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.name for r in warnings] == ["chatmaid_async", "chatmaid_async"]
    assert warnings[0].getMessage() == (
        "retrying POST /v1/messages/send in 2.00s after attempt 1: 429 Too Many Requests"
    )
    assert warnings[1].getMessage().startswith("retrying POST /v1/messages/send in ")
    assert warnings[1].getMessage().endswith("after attempt 2: APITimeoutError")


async def test_a_call_that_succeeds_at_once_logs_no_warning(
    mocked: aioresponses, client: Chatmaid, caplog: pytest.LogCaptureFixture
):
    succeed(mocked, "read")
    caplog.set_level(logging.DEBUG, logger="chatmaid_async")

    await client.account.get()

    assert [r.levelno for r in caplog.records] == [logging.DEBUG]


async def test_logs_show_the_path_template_not_the_phone_number(
    mocked: aioresponses, client: Chatmaid, caplog: pytest.LogCaptureFixture
):
    url = f"{PHONES_URL}/%2B15550100001"
    mocked.get(url, status=503, payload=error_body(503, "Service Unavailable"))
    mocked.get(url, payload=envelope({"id": "507f1f77bcf86cd799439011", "phoneNumber": PHONE}))
    caplog.set_level(logging.DEBUG)

    await client.phone_numbers.get(PHONE)

    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert debug[0].startswith("GET /v1/phone-numbers/{} attempt 1: 503")
    assert not any("15550100001" in text for text in _record_texts(caplog.records))


async def test_logs_never_hold_the_key_the_content_or_the_phone_number(
    mocked: aioresponses, client: Chatmaid, caplog: pytest.LogCaptureFixture
):
    echo = {**MESSAGE, "content": CONTENT, "to": PHONE}
    mocked.post(SEND_URL, **rate_limited("0"))
    mocked.post(SEND_URL, exception=aiohttp.ServerDisconnectedError())
    mocked.post(SEND_URL, status=201, payload=envelope(echo))
    caplog.set_level(logging.DEBUG)

    await client.messages.send("ph_test_1", PHONE, CONTENT)

    assert len(caplog.records) >= 5
    secrets = [KEY, KEY.removeprefix("sk_test_"), "15550100001", CONTENT]
    for text in [*_record_texts(caplog.records), caplog.text]:
        for secret in secrets:
            assert secret not in text
