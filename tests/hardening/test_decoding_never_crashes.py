"""Whatever a server answers, every endpoint returns a well-typed model or a ``ChatmaidError``.

A local aiohttp server answers each request with whatever the test set last: random JSON,
envelopes whose known fields hold values of random types, error envelopes with odd fields,
random bytes, under random status codes and rate-limit headers. A bare ``KeyError``,
``TypeError``, ``AttributeError``, ``ValueError`` or cattrs exception escaping to the caller is
a failure, and so is a "successful" model whose fields do not hold the types they declare.
Webhook bodies get the same treatment through ``verify``.
"""

from __future__ import annotations

import asyncio
import collections.abc
import datetime as dt
import sys
import types
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import attrs
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatmaid_async import (
    Account,
    Chatmaid,
    Group,
    InboundMessage,
    Message,
    Page,
    PhoneNumber,
    RateLimit,
    RetryPolicy,
    SendRequest,
    SendResult,
    Usage,
)
from chatmaid_async.errors import APIStatusError, ChatmaidError, WebhookVerificationError
from chatmaid_async.models import PhoneNumberStatus
from chatmaid_async.webhooks import sign, verify

KEY = "sk_test_decodingfuzz000000000000"
PHONE = "+15550100000"
# The limit is never reached, and max_retry_wait=0 turns every server hold into no wait, so
# the random rate-limit headers are parsed on every example without ever stalling the next.
NO_WAIT = RetryPolicy(max_retries=0, base_delay=0.0, max_retry_wait=0.0)
HUGE_LIMIT = RateLimit(1_000_000_000, 1.0)
STATUSES = (200, 201, 400, 404, 429, 500, 502, 204, 302, 418)
ITEM_CAP = 50


@attrs.define
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = attrs.Factory(dict)


class ScriptedAPI:
    """A loopback server that gives every request the same answer, set by the test."""

    def __init__(self) -> None:
        self.answer = Answer()
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        answer = self.answer
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)


@attrs.define
class Harness:
    runner: asyncio.Runner
    api: ScriptedAPI
    client: Chatmaid

    def outcome(self, answer: Answer, call: Callable[[Chatmaid], Awaitable[object]]) -> object:
        """The call's return value, or the exception it raised."""
        self.api.answer = answer

        async def attempt() -> object:
            try:
                return await call(self.client)
            except Exception as exc:
                return exc

        return self.runner.run(attempt())


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    # One loop, server and client for every example: a fresh loop per example would measure
    # loop start-up, not decoding.
    with asyncio.Runner() as runner:
        api = ScriptedAPI()
        runner.run(api.start())
        client = Chatmaid(KEY, base_url=api.url, rate_limit=HUGE_LIMIT, retry=NO_WAIT)
        try:
            yield Harness(runner, api, client)
        finally:
            runner.run(client.aclose())
            runner.run(api.stop())


# -- what a well-typed model is ----------------------------------------------------------------


def well_typed(value: object, hint: Any) -> bool:
    """Whether ``value`` matches the type ``hint`` a model declares for it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if origin in (typing.Union, types.UnionType):
        return any(well_typed(value, arg) for arg in args)
    if origin is list:
        return isinstance(value, list) and all(well_typed(item, args[0]) for item in value)
    if origin is collections.abc.Mapping:
        return isinstance(value, collections.abc.Mapping)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is dt.datetime:
        return isinstance(value, dt.datetime)
    if isinstance(hint, type) and attrs.has(hint):
        return isinstance(value, hint) and model_well_typed(value)
    return isinstance(value, hint)


def model_well_typed(model: Any) -> bool:
    hints = typing.get_type_hints(type(model))
    return all(
        well_typed(getattr(model, field.name), hints[field.name])
        for field in attrs.fields(type(model))
    )


def page_well_typed(page: object, item_type: type) -> bool:
    return (
        isinstance(page, Page)
        and all(isinstance(item, item_type) and model_well_typed(item) for item in page.data)
        and model_well_typed(page.pagination)
    )


def list_well_typed(items: object, item_type: type) -> bool:
    return isinstance(items, list) and all(
        isinstance(item, item_type) and model_well_typed(item) for item in items
    )


def single_well_typed(item_type: type) -> Callable[[object], bool]:
    return lambda value: isinstance(value, item_type) and model_well_typed(value)


# -- every endpoint ----------------------------------------------------------------------------


async def collect(items: AsyncIterator[Any]) -> list[Any]:
    collected = []
    async for item in items:
        collected.append(item)
        if len(collected) >= ITEM_CAP:
            break
    return collected


async def one_batch_result(client: Chatmaid) -> list[SendResult]:
    item = SendRequest(id="fuzz", from_phone_id=PHONE, to="+15557654321", content="hi")
    return await collect(client.messages.send_many([item]))


def batch_result_well_typed(results: object) -> bool:
    # send_many never raises for an item: the failure is the item's result.
    if not isinstance(results, list) or len(results) != 1:
        return False
    [result] = results
    if result.error is not None:
        return isinstance(result.error, ChatmaidError) and result.message is None
    return isinstance(result.message, Message) and model_well_typed(result.message)


Endpoint = tuple[Callable[[Chatmaid], Awaitable[object]], Callable[[object], bool]]

ENDPOINTS: dict[str, Endpoint] = {
    "send": (
        lambda c: c.messages.send(PHONE, "+15557654321", "hi", idempotency_key="fuzz-1"),
        single_well_typed(Message),
    ),
    "get": (lambda c: c.messages.get("msg_1"), single_well_typed(Message)),
    "list": (lambda c: c.messages.list(), lambda v: page_well_typed(v, Message)),
    "iterate": (
        lambda c: collect(c.messages.iterate(limit=5)),
        lambda v: list_well_typed(v, Message),
    ),
    "list_inbound": (
        lambda c: c.messages.list_inbound(),
        lambda v: page_well_typed(v, InboundMessage),
    ),
    "get_inbound": (
        lambda c: c.messages.get_inbound("inmsg_1"),
        single_well_typed(InboundMessage),
    ),
    "iterate_inbound": (
        lambda c: collect(c.messages.iterate_inbound(limit=5)),
        lambda v: list_well_typed(v, InboundMessage),
    ),
    "groups": (lambda c: c.groups.list(PHONE), lambda v: list_well_typed(v, Group)),
    "phones": (lambda c: c.phone_numbers.list(), lambda v: list_well_typed(v, PhoneNumber)),
    "phone": (lambda c: c.phone_numbers.get(PHONE), single_well_typed(PhoneNumber)),
    "phone_status": (
        lambda c: c.phone_numbers.status(PHONE),
        single_well_typed(PhoneNumberStatus),
    ),
    "account": (lambda c: c.account.get(), single_well_typed(Account)),
    "usage": (lambda c: c.account.usage("week"), single_well_typed(Usage)),
    "wait_for_status": (
        lambda c: c.messages.wait_for_status(
            "msg_1", timeout=0.03, initial_interval=0.01, max_interval=0.01
        ),
        single_well_typed(Message),
    ),
    "send_many": (one_batch_result, batch_result_well_typed),
}


# -- what a server might answer ----------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "sent", "+15557654321", "msg_1", "2026-01-01T00:00:00.000Z"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)
timestamps = st.sampled_from(
    [
        "2026-01-01T00:00:00.000Z",
        "2026-01-01T00:00:00+05:30",
        "2026-02-30T00:00:00Z",
        "2026-01-01",
        "9999-12-31T23:59:59.999999Z",
        "0000-01-01T00:00:00Z",
        "+275760-09-13T00:00:00.000Z",
        "1e400",
        "",
    ]
) | st.datetimes().map(dt.datetime.isoformat)

MODEL_KEYS = (
    "id", "messageId", "status", "from", "to", "content", "mediaUrls", "isGroup", "groupId",
    "environment", "errorCode", "errorMessage", "idempotencyKey", "type", "name",
    "isCommunityAnnounce", "phoneNumber", "displayName", "connectionStatus", "accountId",
    "email", "subscriptionStatus", "phoneNumbersCount", "messagesCount", "period", "source",
)  # fmt: skip
TIME_KEYS = (
    "createdAt", "sentAt", "deliveredAt", "readAt", "failedAt", "receivedAt", "updatedAt",
    "lastConnectedAt", "lastDisconnectedAt", "startDate", "endDate",
)  # fmt: skip
ERROR_KEYS = ("success", "error", "message", "statusCode", "timestamp", "path", "retryAfter")
COUNT_KEYS = ("total", "pending", "sent", "delivered", "read", "failed", "successful")


def keyed(keys: tuple[str, ...], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, values))


nested = keyed((*COUNT_KEYS, "apiKeys", "phoneNumbers", "messages"), st.integers() | json_values)
model_like = st.builds(
    lambda plain, times, inner: {**plain, **times, **inner},
    keyed(MODEL_KEYS, json_values),
    keyed(TIME_KEYS, timestamps | json_values),
    keyed(("stats", "messages", "apiRequests"), nested | json_values),
)
pagination = keyed(("page", "limit", "total", "totalPages"), st.integers(-2, 200) | json_values)
items = st.lists(model_like, max_size=4) | json_values
data = (
    model_like
    | items
    | st.builds(lambda i, p: {"data": i, "pagination": p}, items, pagination | json_values)
    | st.builds(lambda i, p: {"data": i, "meta": p}, items, pagination)
    | json_values
)
envelopes = (
    st.builds(lambda d: {"success": True, "data": d}, data)
    | st.builds(lambda d, p: {"success": True, "data": d, "pagination": p}, items, pagination)
    | st.builds(lambda d, s: {"success": s, "data": d}, data, json_values)
    | keyed(ERROR_KEYS, json_values | timestamps)
    | json_values
)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=24)
headers = keyed(
    ("Retry-After", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Date", "x-request-id"),
    header_text | st.integers(-5, 10**12).map(str) | st.just("0"),
).map(lambda found: {name: str(value) for name, value in found.items()})
content_types = st.sampled_from(["application/json", "text/html", "text/plain", ""])


def json_bytes(document: Any) -> bytes:
    import json

    return json.dumps(document).encode()


@st.composite
def answers(draw: st.DrawFn, bodies: st.SearchStrategy[bytes]) -> Answer:
    found = dict(draw(headers))
    kind = draw(content_types)
    if kind:
        found["Content-Type"] = kind
    return Answer(status=draw(st.sampled_from(STATUSES)), body=draw(bodies), headers=found)


def check(harness: Harness, endpoint: str, answer: Answer) -> None:
    call, shaped = ENDPOINTS[endpoint]
    outcome = harness.outcome(answer, call)

    if isinstance(outcome, BaseException):
        assert isinstance(outcome, ChatmaidError), (
            f"{endpoint} raised {type(outcome).__name__}: {outcome}"
        )
        # An error's text is built from the answer too: it must render.
        str(outcome)
        repr(outcome)
        return
    assert shaped(outcome), f"{endpoint} returned a badly typed value: {outcome!r}"


NO_FIXTURE_RESET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=500, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
@given(endpoint=st.sampled_from(sorted(ENDPOINTS)), answer=answers(envelopes.map(json_bytes)))
def test_every_endpoint_decodes_any_json_answer_into_a_model_or_a_chatmaid_error(
    harness: Harness, endpoint: str, answer: Answer
) -> None:
    check(harness, endpoint, answer)


raw_bodies = (
    st.binary(max_size=64)
    | st.sampled_from(
        [
            b"",
            b"   ",
            b"<html><body>502 Bad Gateway</body></html>",
            b"\xff\xfe{",
            b'{"success": true, "data": ',
            b'{"success": true, "data": NaN}',
            b'{"success": true, "data": {"id": "msg_1", "status": "sent"}}\x00',
            b'{"success":true,"data":{"id":"msg_1","status":"sent","createdAt":"\\ud800"}}',
        ]
    )
    | st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass"))
)


@settings(max_examples=200, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
@given(endpoint=st.sampled_from(sorted(ENDPOINTS)), answer=answers(raw_bodies))
def test_every_endpoint_survives_any_bytes_as_the_answer(
    harness: Harness, endpoint: str, answer: Answer
) -> None:
    check(harness, endpoint, answer)


# Deeper than the interpreter's recursion limit: json.loads gives up with RecursionError.
DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("status", [200, 500])
def test_a_deeply_nested_answer_is_a_chatmaid_error_not_a_recursion_error(
    harness: Harness, status: int
) -> None:
    answer = Answer(status, DEEP, {"Content-Type": "application/json"})

    outcome = harness.outcome(answer, ENDPOINTS["get"][0])

    assert isinstance(outcome, ChatmaidError), repr(outcome)


def test_an_error_answer_nested_near_the_recursion_limit_is_a_status_error(
    harness: Harness,
) -> None:
    # Shallow enough for json.loads at some depths, too deep to walk again for redaction.
    depths = range(sys.getrecursionlimit() - 200, sys.getrecursionlimit() + 1, 10)

    for depth in depths:
        body = b'{"success":false,"message":' + b"[" * depth + b"]" * depth + b"}"
        outcome = harness.outcome(
            Answer(500, body, {"Content-Type": "application/json"}), ENDPOINTS["get"][0]
        )

        assert isinstance(outcome, APIStatusError), (depth, repr(outcome))


def test_a_deeply_nested_answer_fails_only_its_batch_item_not_the_whole_batch(
    harness: Harness,
) -> None:
    answer = Answer(200, DEEP, {"Content-Type": "application/json"})

    outcome = harness.outcome(answer, one_batch_result)

    assert batch_result_well_typed(outcome), repr(outcome)


# -- webhooks ----------------------------------------------------------------------------------

SECRET = "whsec_decodingfuzz"
EVENT_NAMES = st.sampled_from(
    [
        "message.sent",
        "message.delivered",
        "message.read",
        "message.failed",
        "message.received",
        "phone.connected",
        "phone.disconnected",
        "message.unknown",
    ]
) | st.text(max_size=12)
events = st.builds(
    lambda name, stamp, body: {"event": name, "timestamp": stamp, "data": body},
    EVENT_NAMES | json_values,
    timestamps | json_values,
    model_like | json_values,
) | keyed(("event", "timestamp", "data"), json_values)


@settings(max_examples=300, deadline=None)
@given(body=events.map(json_bytes) | raw_bodies)
def test_a_correctly_signed_webhook_of_any_shape_is_an_event_or_a_verification_error(
    body: bytes,
) -> None:
    try:
        event: object = verify(body, sign(body, SECRET), SECRET)
    except WebhookVerificationError as exc:
        event = exc

    if isinstance(event, WebhookVerificationError):
        # The signature is right, so only the body itself can be refused.
        assert event.code in {"invalid_json", "invalid_payload"}
    else:
        assert attrs.has(type(event))
        assert model_well_typed(event)
