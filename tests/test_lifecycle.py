"""The client's lifecycle: lazy sessions, closing, caller sessions, loops (F11, F12)."""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from aioresponses import aioresponses
from conftest import BASE, KEY, envelope, sent_requests
from fastapi import FastAPI, Request

from chatmaid_async import (
    AuthenticationError,
    Chatmaid,
    ChatmaidError,
    ClientClosedError,
    ConfigurationError,
    LoopMismatchError,
    NotFoundError,
    RetryPolicy,
    _retry,
)
from chatmaid_async.sandbox import Sandbox

PHONES = [{"id": "ph_1", "phoneNumber": "+15551234567", "connectionStatus": "connected"}]
ACCOUNT = {"accountId": "acc_1", "name": "Acme", "email": "ops@acme.example"}


@pytest.fixture
def session_loops(monkeypatch: pytest.MonkeyPatch) -> list[asyncio.AbstractEventLoop]:
    """The running loop of every aiohttp session created while the test runs."""
    loops: list[asyncio.AbstractEventLoop] = []
    real_session = aiohttp.ClientSession

    def recording_session(*args: Any, **kwargs: Any) -> aiohttp.ClientSession:
        loops.append(asyncio.get_running_loop())
        return real_session(*args, **kwargs)

    monkeypatch.setattr(aiohttp, "ClientSession", recording_session)
    return loops


def _mock_phones(mock: aioresponses) -> None:
    mock.get(f"{BASE}/v1/phone-numbers", payload=envelope(PHONES), repeat=True)


# --- F11 (a): a client built with no running loop --------------------------------------------


def test_f11_construction_needs_no_loop_and_opens_no_session(
    session_loops: list[asyncio.AbstractEventLoop],
) -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()

    client = Chatmaid(KEY, rate_limit=None)

    assert session_loops == []
    assert not client.closed
    asyncio.run(client.aclose())
    assert session_loops == []


def test_f11_client_built_at_import_time_works_in_asyncio_run_and_closes_in_another(
    mocked: aioresponses, session_loops: list[asyncio.AbstractEventLoop]
) -> None:
    _mock_phones(mocked)
    client = Chatmaid(KEY, rate_limit=None)

    first = asyncio.run(client.phone_numbers.list())
    second = asyncio.run(client.phone_numbers.list())
    asyncio.run(client.aclose())

    assert [p.id for p in first] == [p.id for p in second] == ["ph_1"]
    assert len(sent_requests(mocked)) == 2
    # One session per loop, each made inside its own running loop.
    assert len(session_loops) == 2
    assert session_loops[0] is not session_loops[1]
    assert client.closed


async def test_f11_session_is_created_on_first_use_inside_the_running_loop(
    mocked: aioresponses, session_loops: list[asyncio.AbstractEventLoop]
) -> None:
    _mock_phones(mocked)
    async with Chatmaid(KEY, rate_limit=None) as client:
        assert session_loops == []
        await client.phone_numbers.list()
        await client.phone_numbers.list()

    assert session_loops == [asyncio.get_running_loop()]


_REUSE_ACROSS_RUNS = """
client = make_client()
run(client.phone_numbers.list())
run(client.phone_numbers.list())
run(client.aclose())
gc.collect()
"""


def test_f11_reuse_across_asyncio_run_closes_each_loops_connections() -> None:
    result = _run_script(_REUSE_ACROSS_RUNS)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


# --- F11 (b): a session-scoped fixture used from function-scoped loops -------------------------


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def session_scoped_client() -> AsyncIterator[tuple[Chatmaid, asyncio.AbstractEventLoop]]:
    client = Chatmaid(KEY, rate_limit=None)
    with aioresponses() as warm_up:
        warm_up.get(f"{BASE}/v1/account", payload=envelope(ACCOUNT))
        await client.account.get()
    yield client, asyncio.get_running_loop()
    await client.aclose()


@pytest.mark.parametrize("run", [1, 2])
async def test_f11_session_scoped_client_serves_function_scoped_tests(
    session_scoped_client: tuple[Chatmaid, asyncio.AbstractEventLoop],
    mocked: aioresponses,
    run: int,
) -> None:
    client, fixture_loop = session_scoped_client
    _mock_phones(mocked)

    phones = await client.phone_numbers.list()

    assert asyncio.get_running_loop() is not fixture_loop
    assert [p.id for p in phones] == ["ph_1"]


def test_f11_caller_session_from_another_loop_raises_a_clear_error_naming_the_fix(
    mocked: aioresponses,
) -> None:
    other_loop = asyncio.new_event_loop()

    async def open_session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    session = other_loop.run_until_complete(open_session())
    try:
        client = Chatmaid(KEY, rate_limit=None, session=session)
        with pytest.raises(LoopMismatchError) as caught:
            asyncio.run(client.phone_numbers.list())
    finally:
        other_loop.run_until_complete(session.close())
        other_loop.close()

    assert isinstance(caught.value, ChatmaidError)
    assert "another event loop" in str(caught.value)
    assert "loop_scope" in str(caught.value)
    assert sent_requests(mocked) == []


# --- F11 (c): FastAPI lifespan ---------------------------------------------------------------


def _fastapi_app(clients: list[Chatmaid]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Chatmaid(KEY, rate_limit=None) as client:
            clients.append(client)
            app.state.chatmaid = client
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/senders")
    async def senders(request: Request) -> list[str]:
        client: Chatmaid = request.app.state.chatmaid
        return [phone.id for phone in await client.phone_numbers.list()]

    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the app's ASGI lifespan the way a server does: startup, serve, shutdown."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))

    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task


async def test_f11_fastapi_lifespan_client_serves_routes_and_closes_on_shutdown(
    mocked: aioresponses, session_loops: list[asyncio.AbstractEventLoop]
) -> None:
    _mock_phones(mocked)
    clients: list[Chatmaid] = []
    app = _fastapi_app(clients)

    async with _lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            answers = await asyncio.gather(*(http.get("/senders") for _ in range(3)))
        assert not clients[0].closed

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json() for a in answers] == [["ph_1"]] * 3
    assert len(sent_requests(mocked)) == 3
    assert len(session_loops) == 1
    assert clients[0].closed


# --- closing -----------------------------------------------------------------------------------


async def test_async_with_closes_the_client(mocked: aioresponses) -> None:
    _mock_phones(mocked)
    async with Chatmaid(KEY, rate_limit=None) as client:
        await client.phone_numbers.list()
        assert not client.closed

    assert client.closed
    assert "closed" in repr(client)


async def test_aclose_closes_the_client_and_closing_twice_is_harmless(
    mocked: aioresponses,
) -> None:
    _mock_phones(mocked)
    client = Chatmaid(KEY, rate_limit=None)
    await client.phone_numbers.list()

    await client.aclose()
    await client.aclose()
    await client.close()

    assert client.closed


async def test_closing_an_unused_client_is_harmless() -> None:
    client = Chatmaid(KEY, rate_limit=None)
    await client.aclose()
    assert client.closed


async def test_a_call_on_a_closed_client_raises_a_clear_error_and_sends_nothing(
    mocked: aioresponses,
) -> None:
    _mock_phones(mocked)
    client = Chatmaid(KEY, rate_limit=None)
    await client.aclose()

    with pytest.raises(ClientClosedError, match="closed") as caught:
        await client.phone_numbers.list()

    assert isinstance(caught.value, ChatmaidError)
    assert sent_requests(mocked) == []


async def test_closing_a_with_options_view_leaves_the_client_open(mocked: aioresponses) -> None:
    _mock_phones(mocked)
    async with Chatmaid(KEY, rate_limit=None) as client:
        view = client.with_options(timeout=5)
        await view.aclose()

        assert not client.closed
        assert [p.id for p in await view.phone_numbers.list()] == ["ph_1"]


# --- a session passed in by the caller ---------------------------------------------------------


@pytest.fixture
async def wire_server() -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A real HTTP server on loopback that answers every API call and records it."""
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response(envelope(PHONES))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_a_caller_session_is_used_and_never_closed(
    wire_server: tuple[str, list[web.Request]],
) -> None:
    base_url, seen = wire_server
    async with aiohttp.ClientSession(headers={"X-Caller-Session": "yes"}) as session:
        async with Chatmaid(KEY, base_url=base_url, rate_limit=None, session=session) as client:
            await client.phone_numbers.list()

        assert client.closed
        assert not session.closed
        async with session.get(f"{base_url}/still-open") as response:
            assert response.status == 200

    assert [r.headers.get("X-Caller-Session") for r in seen] == ["yes", "yes"]


async def test_a_closed_caller_session_raises_a_clear_error(mocked: aioresponses) -> None:
    session = aiohttp.ClientSession()
    await session.close()
    client = Chatmaid(KEY, rate_limit=None, session=session)

    with pytest.raises(ChatmaidError, match="session= is closed"):
        await client.phone_numbers.list()

    assert sent_requests(mocked) == []


async def test_a_caller_session_that_raises_for_status_still_gets_typed_errors_unretried(
    chatmaid_sandbox: Sandbox, chatmaid_key: str, fast_retry: RetryPolicy
) -> None:
    base_url = chatmaid_sandbox.base_url
    async with aiohttp.ClientSession(raise_for_status=True) as session:
        client = Chatmaid(
            chatmaid_key, base_url=base_url, rate_limit=None, retry=fast_retry, session=session
        )
        unknown_key = Chatmaid(
            "sk_test_" + "0" * 24,
            base_url=base_url,
            rate_limit=None,
            retry=fast_retry,
            session=session,
        )

        with pytest.raises(NotFoundError):
            await client.messages.get("msg_missing")
        with pytest.raises(AuthenticationError):
            await unknown_key.account.get()

    # One request each: a 404 or a 401 is never worth another attempt.
    assert chatmaid_sandbox.counters.requests_total == 2


# aiohttp 3.14 deprecates BasicAuth and a session's auth=; older versions still take them.
@pytest.mark.filterwarnings("ignore:.*auth.*deprecated:DeprecationWarning")
async def test_a_caller_session_with_its_own_auth_is_refused_at_construction() -> None:
    async with aiohttp.ClientSession(auth=aiohttp.BasicAuth("user", "pw")) as session:
        with pytest.raises(ConfigurationError, match="API key") as caught:
            Chatmaid(KEY, rate_limit=None, session=session)

    assert "session" in str(caught.value)
    assert "pw" not in str(caught.value)


# --- F12: no warnings at exit under python -X dev -W error::ResourceWarning --------------------

_PRELUDE = """
import asyncio, gc, json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiohttp
from chatmaid_async import Chatmaid

DATA = {
    "/v1/account": {"accountId": "acc_1", "name": "Acme", "email": "ops@acme.example"},
    "/v1/phone-numbers": [],
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so pooled connections are real
    timeout = 5

    def do_GET(self):
        body = json.dumps({"success": True, "data": DATA[self.path]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
BASE = "http://127.0.0.1:%d" % server.server_address[1]


def run(coro):
    async def patient():
        # Debug mode (-X dev) logs any step over 0.1 s; a busy machine is not what we test.
        asyncio.get_running_loop().slow_callback_duration = 60
        return await coro

    return asyncio.run(patient())


def make_client(**options):
    return Chatmaid("sk_test_f12key000000000000abcd", base_url=BASE, rate_limit=None, **options)
"""

_EPILOGUE = """
server.shutdown()
server.server_close()
print("finished")
"""

F12_CASES = {
    "a_async_with": """
async def main():
    async with make_client() as client:
        await client.account.get()

run(main())
gc.collect()
""",
    "b_close_twice": """
async def main():
    client = make_client()
    await client.account.get()
    await client.close()
    await client.close()
    assert client.closed

run(main())
gc.collect()
""",
    "c_dropped_unclosed": """
async def main():
    client = make_client()
    await client.account.get()

run(main())
gc.collect()
""",
    "d_caller_session": """
async def main():
    async with aiohttp.ClientSession() as session:
        async with make_client(session=session) as client:
            await client.account.get()
        assert not session.closed
        async with session.get(BASE + "/v1/account") as response:
            assert response.status == 200

run(main())
gc.collect()
""",
}


def _command(body: str) -> list[str]:
    script = textwrap.dedent(_PRELUDE) + textwrap.dedent(body) + textwrap.dedent(_EPILOGUE)
    return [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", script]


def _run_script(body: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(body), capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def f12_results() -> dict[str, subprocess.CompletedProcess[str]]:
    # The four interpreters start at once: each spends most of its time importing.
    running = {
        name: subprocess.Popen(
            _command(body), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, body in F12_CASES.items()
    }
    results = {}
    for name, process in running.items():
        stdout, stderr = process.communicate(timeout=60)
        results[name] = subprocess.CompletedProcess(
            process.args, process.returncode, stdout, stderr
        )
    return results


@pytest.mark.parametrize("case", ["a_async_with", "b_close_twice", "d_caller_session"])
def test_f12_closed_clients_leave_no_warnings_at_exit(
    f12_results: dict[str, subprocess.CompletedProcess[str]], case: str
) -> None:
    result = f12_results[case]

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "finished"
    assert result.stderr == ""


def test_f12_a_dropped_unclosed_client_gives_at_most_a_resource_warning(
    f12_results: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    result = f12_results["c_dropped_unclosed"]

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "finished"
    raised = set(re.findall(r"^(\w+(?:Error|Exception|Warning))\b", result.stderr, re.M))
    assert raised <= {"ResourceWarning"}, result.stderr
    for noise in ("Event loop is closed", "Task exception was never retrieved", "destroyed"):
        assert noise not in result.stderr


async def test_calls_waiting_for_a_slot_when_the_client_closes_fail_and_send_nothing() -> None:
    from chatmaid_async import RateLimit
    from chatmaid_async.sandbox import Sandbox

    async with Sandbox() as sandbox:
        phone = sandbox.add_phone("+15550100000")
        key = sandbox.create_key()
        client = Chatmaid(key, base_url=sandbox.base_url, rate_limit=RateLimit(1, per=0.3))
        calls = [
            asyncio.ensure_future(client.messages.send(phone, "+15557654321", content="hi"))
            for _ in range(3)
        ]
        await asyncio.sleep(0.1)  # the first has gone; the other two wait for a slot

        await client.aclose()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)

        assert not isinstance(outcomes[0], BaseException)
        assert all(isinstance(outcome, ClientClosedError) for outcome in outcomes[1:])
        assert sandbox.counters.messages_created == 1


async def test_closing_the_client_under_sends_in_flight_fails_them_with_no_retry_logged(
    chatmaid_sandbox: Sandbox,
    chatmaid_key: str,
    chatmaid_phone: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="chatmaid_async")
    # Long enough that every send is still waiting for its answer when the client closes.
    chatmaid_sandbox.set_faults(latency=2.0, paths=["/v1/messages/send"])
    client = Chatmaid(chatmaid_key, base_url=chatmaid_sandbox.base_url, rate_limit=None)
    calls = [
        asyncio.ensure_future(
            client.messages.send(chatmaid_phone, "+15557654321", content=f"hi {n}")
        )
        for n in range(4)
    ]
    # Polling: the sandbox counts a request on arrival but sets no event a test could await.
    while chatmaid_sandbox.counters.requests_total < len(calls):  # noqa: ASYNC110
        await asyncio.sleep(0.01)

    await client.aclose()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    assert [type(outcome) for outcome in outcomes] == [ClientClosedError] * len(calls)
    assert [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()] == []
    assert chatmaid_sandbox.counters.requests_total == len(calls)
    # Each send may have reached the API: its own key lets another client send it again with
    # no second message.
    keys = [getattr(outcome, "idempotency_key", None) for outcome in outcomes]
    assert None not in keys
    assert len(set(keys)) == len(calls)


async def test_closing_the_client_cuts_off_answers_still_arriving(
    chatmaid_sandbox: Sandbox, chatmaid_key: str, chatmaid_phone: str
) -> None:
    # Each answer's body trickles in for 10 s; the client must not wait that out after a close.
    chatmaid_sandbox.set_faults(slow_body=1.0, slow_body_seconds=10.0)
    client = Chatmaid(chatmaid_key, base_url=chatmaid_sandbox.base_url, rate_limit=None)
    calls = [
        asyncio.ensure_future(
            client.messages.send(
                chatmaid_phone, "+15557654321", f"hi {n}", idempotency_key=f"k{n}"
            )
        )
        for n in range(3)
    ]
    while chatmaid_sandbox.counters.messages_created < len(calls):  # noqa: ASYNC110
        await asyncio.sleep(0.01)

    await client.aclose()
    outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5.0)

    assert [type(outcome) for outcome in outcomes] == [ClientClosedError] * len(calls)
    # These messages exist at the API: the keys are how the caller finds them again.
    keys = [getattr(outcome, "idempotency_key", None) for outcome in outcomes]
    assert keys == ["k0", "k1", "k2"]


async def test_a_call_closed_between_attempts_keeps_its_idempotency_key(
    chatmaid_sandbox: Sandbox,
    chatmaid_key: str,
    chatmaid_phone: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chatmaid_sandbox.set_faults(error_503=1.0)
    # A backoff long enough to close the client in (jitter could otherwise make it ~0).
    monkeypatch.setattr(_retry, "retry_delay", lambda *_: 2.0)
    client = Chatmaid(chatmaid_key, base_url=chatmaid_sandbox.base_url, rate_limit=None)
    call = asyncio.ensure_future(
        client.messages.send(chatmaid_phone, "+15557654321", "hi", idempotency_key="retried")
    )
    while chatmaid_sandbox.counters.requests_total < 1:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # the first attempt's 503 is in; the call waits to retry

    await client.aclose()

    with pytest.raises(ClientClosedError) as caught:
        await call
    assert caught.value.idempotency_key == "retried"
    assert chatmaid_sandbox.counters.requests_total == 1
