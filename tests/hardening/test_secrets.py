"""No secret and no message data leaks into logs, reprs, errors or tracebacks.

Every endpoint is called, and made to fail in every way the SDK knows (400-class refusals,
401, 404, 429 with and without a retry, 5xx and HTML 502 with retries, dropped connections,
timeouts, a refused connection, an undecodable answer, a closed client, a status wait that
runs out, malformed keys, webhook verification failures), with logging at DEBUG on every
logger. Then every log record, every ``repr`` and ``str`` of the objects involved, every error
(its text, its attributes and its formatted traceback) is searched for the API keys and the
webhook secret, and the log records for the message text and the phone numbers.

A key counts as leaked if any 8 characters of its secret part show: ``sk_live_…0123`` (prefix
and last four) is the redacted form and allowed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import pytest
from aiohttp import web

from chatmaid_async import Chatmaid, RateLimit, RetryPolicy, SendRequest
from chatmaid_async._limiter import _REGISTRY
from chatmaid_async._transport import Transport
from chatmaid_async.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ChatmaidError,
    ConfigurationError,
    DecodingError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    StatusTimeoutError,
    ValidationError,
    WebhookVerificationError,
)
from chatmaid_async.sandbox import Sandbox
from chatmaid_async.webhooks import sign, verify

CONTENT = "TOPSECRET-CONTENT"
RECIPIENT = "+15559876543"
SENDER = "+15558887766"
GROUP = "120363043219876543@g.us"
WEBHOOK_SECRET = "whsec_WEBHOOKSIGNINGKEYqrstuvwxyz98765"
FIXED_KEY = "sk_live_SECRETKEYabcdefghijklmnopqrstuvwxyz0123"
UNKNOWN_KEY = "sk_live_UNKNOWNKEYzyxwvutsrqponmlkjihgfedcba9876"
FAST = RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.002, max_retry_wait=2.0)
# A 429's hint holds the key for up to max_retry_wait; keep that hold short.
IMPATIENT = RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.002, max_retry_wait=0.05)
ACCOUNT = {"accountId": "acc_1", "name": "Acme", "email": "ops@acme.example"}
PRIVATE_DATA = (CONTENT, RECIPIENT, RECIPIENT[1:], SENDER, SENDER[1:])


def secret_part(secret: str) -> str:
    for prefix in ("sk_live_", "sk_test_", "whsec_"):
        if secret.startswith(prefix):
            return secret[len(prefix) :]
    return secret


def shows_part_of(text: str, secret: str) -> bool:
    """True if any 8 characters in a row of the secret's secret part appear in ``text``.

    NULs are dropped first: UTF-16 text read as UTF-8 puts one between every two characters,
    and a terminal or log pipeline that drops them shows the secret whole.
    """
    part = secret_part(secret)
    text = text.replace("\x00", "")
    return any(part[i : i + 8] in text for i in range(len(part) - 7))


class Evidence:
    """Every text a user or a log aggregator could see, labelled with where it came from."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []
        self.errors: list[BaseException] = []

    def add(self, where: str, *objects: object) -> None:
        for obj in objects:
            self.texts.append((f"repr({where})", repr(obj)))
            self.texts.append((f"str({where})", str(obj)))

    def error(self, where: str, exc: BaseException) -> None:
        self.errors.append(exc)
        self.add(where, exc)
        self.texts.append((f"traceback({where})", "".join(traceback.format_exception(exc))))
        # A suppressed __context__ is hidden from tracebacks, not from code that walks it.
        linked: BaseException | None = exc
        while linked is not None:
            for name, value in vars(linked).items():
                self.texts.append((f"{where}.{name}", repr(value)))
                self.texts.append(
                    (f"{where}.{name}.__dict__", repr(getattr(value, "__dict__", "")))
                )
            linked = linked.__cause__ or linked.__context__

    async def failure(self, where: str, call: Awaitable[object]) -> ChatmaidError:
        """Await ``call``, which must fail with a ChatmaidError, and keep the error."""
        with pytest.raises(ChatmaidError) as caught:
            await call
        self.error(where, caught.value)
        return caught.value

    def log_texts(self, records: Iterable[logging.LogRecord]) -> list[tuple[str, str]]:
        formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
        texts = []
        for record in records:
            where = f"log {record.name}:{record.lineno}"
            texts.append((where, formatter.format(record)))
            texts.append((where, repr(record.args)))
            texts.append((where, record.exc_text or ""))
        return texts

    def assert_no_secret(self, secrets: Sequence[str], records: Sequence[logging.LogRecord]):
        texts = self.texts + self.log_texts(records)
        leaks = [
            (where, text[:200])
            for where, text in texts
            for secret in secrets
            if shows_part_of(text, secret)
        ]
        assert leaks == []

    def assert_no_private_data_logged(self, records: Sequence[logging.LogRecord]) -> None:
        leaks = [
            (where, text[:200])
            for where, text in self.log_texts(records)
            for private in PRIVATE_DATA
            if private in text
        ]
        assert leaks == []


@pytest.fixture
def evidence(monkeypatch: pytest.MonkeyPatch) -> Evidence:
    """An Evidence that also sees the request and options of every attempt the SDK makes."""
    found = Evidence()
    attempt = Transport._attempt

    async def spying_attempt(self: Transport, request: Any, options: Any, **kw: Any) -> Any:
        found.add("request", request, options)
        return await attempt(self, request, options, **kw)

    monkeypatch.setattr(Transport, "_attempt", spying_attempt)
    return found


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="chatmaid_async")
    return caplog


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(status_delays=(0.01, 0.02), pending_for=0.0) as running:
        yield running


class ScriptedAPI:
    """A loopback server whose answers to the next requests the test queues."""

    def __init__(self) -> None:
        self.answers: list[web.StreamResponse | type[web.HTTPException]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> ScriptedAPI:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        answer = self.answers.pop(0)
        if callable(answer) and not isinstance(answer, web.StreamResponse):
            return answer(request)  # type: ignore[no-any-return]
        return answer


# -- the SDK against the sandbox, succeeding and failing -----------------------------------------


async def every_endpoint(client: Chatmaid, sandbox: Sandbox, evidence: Evidence) -> None:
    sent = await client.messages.send(SENDER, RECIPIENT, CONTENT)
    with_media = await client.messages.send(
        SENDER, RECIPIENT, CONTENT, media_urls=["https://cdn.example.com/a.png"]
    )
    inbound_id = sandbox.add_inbound(SENDER, RECIPIENT, CONTENT)
    results = [
        r
        async for r in client.messages.send_many(
            [SendRequest(id="one", from_phone_id=SENDER, to=RECIPIENT, content=CONTENT)]
        )
    ]
    evidence.add(
        "model",
        sent,
        with_media,
        *results,
        await client.messages.get(sent.id),
        await client.messages.list(),
        [m async for m in client.messages.iterate(limit=1)],
        await client.messages.list_inbound(),
        await client.messages.get_inbound(inbound_id),
        [m async for m in client.messages.iterate_inbound(limit=1)],
        await client.messages.wait_for_status(sent.id, timeout=2.0, initial_interval=0.01),
        await client.groups.list(SENDER),
        await client.phone_numbers.list(),
        await client.phone_numbers.get(SENDER),
        await client.phone_numbers.status(SENDER),
        await client.account.get(),
        await client.account.usage("day"),
    )


async def refusals_before_sending(client: Chatmaid, evidence: Evidence) -> None:
    # Validation errors name the argument, never its value.
    for where, call in [
        ("validation.to", client.messages.send(SENDER, RECIPIENT[1:], CONTENT)),
        ("validation.content", client.messages.send(SENDER, RECIPIENT, CONTENT * 300)),
        ("validation.sender", client.messages.send(SENDER + "x", RECIPIENT, CONTENT)),
        ("validation.media", client.messages.send(SENDER, RECIPIENT, media_urls=["http://a"])),
        ("validation.phone", client.phone_numbers.get(SENDER + " ")),
    ]:
        error = await evidence.failure(where, call)
        assert isinstance(error, ValidationError)
        assert not any(private in str(error) for private in PRIVATE_DATA)


async def server_failures(
    client: Chatmaid, sandbox: Sandbox, key: str, evidence: Evidence
) -> None:
    error = await evidence.failure("404", client.messages.get("msg_nope"))
    assert isinstance(error, NotFoundError)

    sandbox.set_faults(error_503=1.0, paths=["/v1/account"])
    error = await evidence.failure("503", client.account.get())
    assert isinstance(error, InternalServerError)
    sandbox.set_faults(html_502=1.0, paths=["/v1/messages/send"])
    error = await evidence.failure("502", client.messages.send(SENDER, RECIPIENT, CONTENT))
    assert isinstance(error, InternalServerError)
    for kind in ("drop_before", "drop_after"):
        sandbox.set_faults(**{kind: 1.0}, paths=["/v1/messages/send"])
        error = await evidence.failure(kind, client.messages.send(SENDER, RECIPIENT, CONTENT))
        assert isinstance(error, APIConnectionError)
    sandbox.set_faults(slow_body=1.0, slow_body_seconds=0.5, paths=["/v1/messages/send"])
    quick = client.with_options(timeout=0.1, max_retries=1)
    error = await evidence.failure("timeout", quick.messages.send(SENDER, RECIPIENT, CONTENT))
    assert isinstance(error, APITimeoutError)
    error = await evidence.failure(
        "deadline", client.with_options(deadline=0.15).messages.send(SENDER, RECIPIENT, CONTENT)
    )
    assert isinstance(error, APITimeoutError)
    sandbox.clear_faults()

    sent = await client.messages.send(SENDER, "+15550009002", CONTENT)
    error = await evidence.failure(
        "status-wait",
        client.messages.wait_for_status(sent.id, {"read"}, timeout=0.05, initial_interval=0.01),
    )
    assert isinstance(error, StatusTimeoutError)


async def rate_limits(sandbox: Sandbox, evidence: Evidence) -> list[str]:
    """A quota the client waits out, a 429 retried after its hint, and one refused."""
    held_key, retried_key, refused_key = (
        sandbox.create_key(live=True, rate_limit=RateLimit(1, per)) for per in (1.0, 1.0, 60.0)
    )
    # Paced: the answer's X-RateLimit-Remaining of 0 holds the key, so no 429 is met.
    async with Chatmaid(
        held_key, base_url=sandbox.base_url, rate_limit=RateLimit(5, 1.0), retry=FAST
    ) as client:
        evidence.add("paced client", client, client.limiter)
        await client.messages.send(SENDER, RECIPIENT, CONTENT)
        evidence.add("model", await client.messages.send(SENDER, RECIPIENT, CONTENT))
        evidence.add("held limiter", client.limiter)
    # Unpaced: the server's 429 says wait a second, and the retry succeeds.
    async with Chatmaid(
        retried_key, base_url=sandbox.base_url, rate_limit=None, retry=FAST
    ) as client:
        await client.messages.send(SENDER, RECIPIENT, CONTENT)
        evidence.add("model", await client.messages.send(SENDER, RECIPIENT, CONTENT))
    # Unpaced, and the hint is longer than the policy waits: the 429 is raised.
    async with Chatmaid(
        refused_key, base_url=sandbox.base_url, rate_limit=None, retry=FAST
    ) as client:
        await client.account.get()
        error = await evidence.failure("429", client.account.get())
        assert isinstance(error, RateLimitError)
    assert sandbox.counters.rate_limited_by_key == {retried_key: 1, refused_key: 1}
    return [held_key, retried_key, refused_key]


async def client_side_failures(sandbox: Sandbox, key: str, evidence: Evidence) -> None:
    async with Chatmaid(UNKNOWN_KEY, base_url=sandbox.base_url, retry=FAST) as stranger:
        evidence.add("unknown-key client", stranger)
        error = await evidence.failure("401", stranger.account.get())
        assert isinstance(error, AuthenticationError)

    closed = Chatmaid(key, base_url=sandbox.base_url)
    await closed.aclose()
    evidence.add("closed client", closed)
    await evidence.failure("closed", closed.account.get())

    for where, bad_key in [
        ("config.newline", f"{key}\n"),
        ("config.space", key[:20] + " " + key[20:]),
        ("config.prefix", "pk" + key[2:]),
    ]:
        with pytest.raises(ConfigurationError) as caught:
            Chatmaid(bad_key, base_url=sandbox.base_url)
        evidence.error(where, caught.value)


async def test_keys_never_appear_in_logs_reprs_errors_or_tracebacks(
    sandbox: Sandbox, evidence: Evidence, debug_logs: pytest.LogCaptureFixture
) -> None:
    key = sandbox.create_key(live=True)
    sandbox.add_phone(SENDER, connected=True)
    sandbox.add_group(SENDER, GROUP, "Secret group")
    sandbox.set_webhook("http://127.0.0.1:9/hook", WEBHOOK_SECRET, events=["message.read"])

    async with Chatmaid(key, base_url=sandbox.base_url, retry=FAST) as client:
        limiter = client.limiter
        assert limiter is not None
        permit = await limiter.acquire()
        evidence.add("client", client, client.with_options(timeout=5), limiter, limiter.state())
        evidence.add("internals", permit, _REGISTRY, vars(client))
        await permit.release(sent=False)

        await every_endpoint(client, sandbox, evidence)
        await refusals_before_sending(client, evidence)
        await server_failures(client, sandbox, key, evidence)
    evidence.add("sandbox", sandbox, sandbox.counters)
    other_keys = await rate_limits(sandbox, evidence)
    await client_side_failures(sandbox, key, evidence)
    sandbox.clear_webhook()

    records = debug_logs.records
    # The run really went through the paths that log: retries, attempts and limiter holds.
    messages = [record.getMessage() for record in records]
    assert any(m.startswith("retrying") and "429" in m for m in messages)
    assert any(m.startswith("retrying") and "503" in m for m in messages)
    assert any("attempt" in m and "no response" in m for m in messages)
    assert any("holding for" in m for m in messages)
    assert len(evidence.errors) >= 19
    evidence.assert_no_secret([key, UNKNOWN_KEY, WEBHOOK_SECRET, *other_keys], records)
    evidence.assert_no_private_data_logged(records)


# -- a fixed, recognisable key against a scripted server ---------------------------------------


def json_error(status: int, **extra: object) -> web.Response:
    body = {"success": False, "error": "Oops", "message": ["went wrong"], **extra}
    return web.json_response(body, status=status)


async def test_a_fixed_live_key_never_leaks_on_loopback_failures(
    evidence: Evidence, debug_logs: pytest.LogCaptureFixture
) -> None:
    async with ScriptedAPI() as api:
        api.answers = [
            json_error(500),
            json_error(502),
            json_error(503),
            json_error(429, retryAfter=3600),
            web.Response(status=200, text="<html>not json</html>", content_type="text/html"),
            web.json_response({"success": True, "data": {"status": 1}}),
            json_error(401),
            json_error(403),
            json_error(400),
        ]
        async with Chatmaid(FIXED_KEY, base_url=api.url, retry=IMPATIENT) as client:
            evidence.add("client", client, client.limiter)
            error = await evidence.failure("5xx retried", client.account.get())
            assert isinstance(error, InternalServerError)
            assert isinstance(await evidence.failure("429", client.account.get()), RateLimitError)
            for where in ("html", "decode", "401", "403", "400"):
                await evidence.failure(where, client.messages.get("msg_1"))
            assert isinstance(evidence.errors[-5], DecodingError)

    closed_port = api.url
    async with Chatmaid(FIXED_KEY, base_url=closed_port, retry=FAST) as client:
        error = await evidence.failure("refused", client.account.get())
        assert isinstance(error, APIConnectionError)

    evidence.assert_no_secret([FIXED_KEY], debug_logs.records)
    evidence.assert_no_private_data_logged(debug_logs.records)


def echo_in_message(status: int, encoding: str = "utf-8", escape: bool = False) -> Any:
    """An answer that quotes the request's Authorization header in its envelope's text."""

    def answer(request: web.Request) -> web.Response:
        seen = f"Authorization: {request.headers['Authorization']}"
        envelope = {"success": False, "error": f"Oops ({seen})", "message": [f"headers: {seen}"]}
        text = json.dumps(envelope)
        if escape:
            # JSON may write any character as a \u escape: "_" as \u005f, say.
            text = text.replace("_", "\\u005f")
        return web.Response(
            status=status, body=text.encode(encoding), content_type="application/json"
        )

    return answer


def echo_in_unreadable_body(
    status: int, body: Callable[[str], str], encoding: str = "utf-8", content_type: str = ""
) -> Any:
    """An answer the SDK cannot decode as a JSON envelope, quoting the Authorization header."""

    def answer(request: web.Request) -> web.Response:
        text = body(request.headers["Authorization"])
        headers = {"Content-Type": content_type} if content_type else {}
        return web.Response(status=status, body=text.encode(encoding), headers=headers)

    return answer


def escaped(authorization: str) -> str:
    return authorization.replace("s", "\\u0073")


def cut_off_json(authorization: str) -> str:
    return '{"success": false, "error": "Oops", "message": "' + escaped(authorization)


def nested_json(authorization: str) -> str:
    # Valid JSON, nested too deep for the SDK to walk it again for redaction.
    deep = "[" * 2000 + "]" * 2000
    return f'{{"success": false, "error": "{escaped(authorization)}", "message": {deep}}}'


def html_page(authorization: str) -> str:
    return f"<html><body>Request headers: Authorization: {authorization}</body></html>"


def bare_secret(authorization: str) -> str:
    return "invalid api key " + secret_part(authorization.removeprefix("Bearer "))


def echo_in_header(request: web.Request) -> web.Response:
    answer = json_error(400)
    answer.headers["X-Echo-Authorization"] = request.headers["Authorization"]
    return answer


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(echo_in_message(400), id="utf-8"),
        pytest.param(echo_in_message(400, "utf-16"), id="utf-16"),
        pytest.param(echo_in_message(400, "utf-32"), id="utf-32"),
        pytest.param(echo_in_message(400, "utf-8-sig"), id="utf-8-bom"),
        pytest.param(echo_in_message(400, escape=True), id="json-escapes"),
        pytest.param(echo_in_message(201, "utf-16"), id="2xx-success-false-utf-16"),
        pytest.param(echo_in_message(201, escape=True), id="2xx-success-false-escapes"),
        pytest.param(echo_in_header, id="response-header"),
        pytest.param(echo_in_unreadable_body(400, cut_off_json), id="cut-off-json-escapes"),
        pytest.param(echo_in_unreadable_body(200, cut_off_json), id="2xx-cut-off-json-escapes"),
        pytest.param(echo_in_unreadable_body(400, nested_json), id="nested-json-escapes"),
        pytest.param(
            echo_in_unreadable_body(403, html_page, "utf-16-le", "text/html; charset=utf-16le"),
            id="utf-16-html-with-charset",
        ),
        pytest.param(
            echo_in_unreadable_body(403, html_page, "utf-16-le", "text/html"),
            id="utf-16-html-without-charset",
        ),
        pytest.param(echo_in_unreadable_body(401, html_page, "utf-32"), id="utf-32-text"),
        pytest.param(echo_in_unreadable_body(401, bare_secret), id="secret-without-prefix"),
    ],
)
async def test_an_error_answer_echoing_the_authorization_header_does_not_leak_the_key(
    evidence: Evidence, debug_logs: pytest.LogCaptureFixture, answer: Any
) -> None:
    # Some proxies and debug error pages echo the request back, in whatever encoding.
    async with ScriptedAPI() as api:
        api.answers = [answer]
        async with Chatmaid(FIXED_KEY, base_url=api.url, retry=FAST) as client:
            error = await evidence.failure("echo", client.account.get())

    assert "…0123" in repr(vars(error))
    evidence.assert_no_secret([FIXED_KEY], debug_logs.records)


async def test_a_malformed_answer_leaves_no_aiohttp_exception_holding_the_request_headers(
    evidence: Evidence,
) -> None:
    async def malformed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1000)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(malformed, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, Chatmaid(FIXED_KEY, base_url=f"http://127.0.0.1:{port}") as client:
        error = await evidence.failure(
            "malformed", client.with_options(max_retries=0).account.get()
        )

    assert isinstance(error, APIConnectionError)
    assert error.__context__ is None
    evidence.assert_no_secret([FIXED_KEY], [])


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
async def test_a_retried_answer_echoing_the_key_leaks_it_into_no_warning(
    evidence: Evidence, debug_logs: pytest.LogCaptureFixture, encoding: str
) -> None:
    async with ScriptedAPI() as api:
        api.answers = [echo_in_message(503, encoding), echo_in_message(503, encoding)]
        api.answers.append(web.json_response({"success": True, "data": ACCOUNT}))
        async with Chatmaid(FIXED_KEY, base_url=api.url, retry=FAST) as client:
            evidence.add("account", await client.account.get())

    warnings = [r for r in debug_logs.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("sk_live_…0123" in r.getMessage() for r in warnings)
    evidence.assert_no_secret([FIXED_KEY], debug_logs.records)


# -- webhooks ----------------------------------------------------------------------------------


def test_webhook_verification_failures_never_show_the_secret_or_the_expected_signature(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    body = (
        b'{"event":"message.sent","timestamp":"2026-01-01T00:00:00.000Z","data":'
        b'{"messageId":"msg_1","from":"+15558887766","to":"+15559876543","status":"sent"}}'
    )
    now = int(time.time())
    good = sign(body, WEBHOOK_SECRET, now)
    expected_digest = good.split("v1=")[1]
    evidence = Evidence()
    evidence.add("event", verify(body, good, WEBHOOK_SECRET))

    stale = sign(body, WEBHOOK_SECRET, now - 3600)
    cases: list[tuple[str, bytes, str | None, str | None]] = [
        ("signature_mismatch", body, good, WEBHOOK_SECRET + "x"),
        ("signature_mismatch", body + b" ", good, WEBHOOK_SECRET),
        ("signature_mismatch", body, f"t={now},v1={'0' * 64}", WEBHOOK_SECRET),
        ("timestamp_out_of_tolerance", body, stale, WEBHOOK_SECRET),
        ("malformed_signature", body, "v1=abc", WEBHOOK_SECRET),
        ("missing_signature", body, None, WEBHOOK_SECRET),
        ("missing_secret", body, good, ""),
        ("invalid_json", b"not json", sign(b"not json", WEBHOOK_SECRET, now), WEBHOOK_SECRET),
    ]
    for code, payload, header, secret in cases:
        with pytest.raises(WebhookVerificationError) as caught:
            verify(payload, header, secret)
        assert caught.value.code == code
        evidence.error(code, caught.value)

    # The signature a forger would need must never be handed out in an error.
    assert not any(expected_digest in text for _, text in evidence.texts)
    evidence.assert_no_secret([WEBHOOK_SECRET], debug_logs.records)


# -- the command line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "known_key", "exit_code"),
    [
        pytest.param(["account"], False, 3, id="401"),
        pytest.param(["account", "--json"], False, 3, id="401-json"),
        pytest.param(["messages", "get", "msg_nope"], True, 3, id="404"),
        pytest.param(["send", "--to", RECIPIENT[1:], "-c", CONTENT], True, 2, id="invalid"),
    ],
)
async def test_command_line_errors_never_print_the_key(
    sandbox: Sandbox, args: list[str], known_key: bool, exit_code: int
) -> None:
    from typer.testing import CliRunner

    from chatmaid_async.cli._app import app

    key = sandbox.create_key(live=True) if known_key else UNKNOWN_KEY
    connection = ["--api-key", key, "--base-url", sandbox.base_url]
    env = {"CHATMAID_API_KEY": None, "CHATMAID_BASE_URL": None}

    result = await asyncio.to_thread(CliRunner().invoke, app, [*args, *connection], env=env)

    assert result.exit_code == exit_code, result.output
    assert "error" in result.output
    assert not shows_part_of(result.output, key)
