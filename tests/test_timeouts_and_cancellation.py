"""Per-attempt timeouts, the overall deadline, the connection pool, and cancellation.

Every hang here is real: a local aiohttp server on 127.0.0.1 that sleeps in its handler. The
windows are scaled down (timeouts of 0.2-0.5 s) so the file stays fast; sleeps *between*
attempts are recorded through the transport's ``_sleep`` unless the test is about them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import KEY, envelope, error_body

from chatmaid_async import Chatmaid, Message, RateLimit, RetryPolicy
from chatmaid_async.errors import APITimeoutError, ConfigurationError, InternalServerError

ACCOUNT = {"accountId": "acc_1", "name": "Test account"}
PHONES = [{"id": "507f1f77bcf86cd799439011", "phoneNumber": "+15550100009"}]
# How soon a cancelled call must give control back.
PROMPT = 0.05

Answer = Callable[[int, web.Request], Awaitable[web.StreamResponse]]


class LocalAPI:
    """A loopback API server whose answer to the n-th request (1-based) the test scripts.

    Handlers are cancelled when the client drops the connection, as a real server's work
    would be abandoned, so a timed-out attempt never lingers past the test.
    """

    def __init__(self, answer: Answer) -> None:
        self._answer = answer
        self.arrivals: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> LocalAPI:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def arrived(self, count: int, within: float = 2.0) -> None:
        """Wait until the server has seen ``count`` requests."""
        deadline = time.monotonic() + within
        while len(self.arrivals) < count:
            assert time.monotonic() < deadline, f"only {len(self.arrivals)} requests arrived"
            await asyncio.sleep(0.005)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.arrivals.append(request.path)
        return await self._answer(len(self.arrivals), request)


def ok(data: Any = ACCOUNT) -> web.Response:
    return web.json_response(envelope(data))


def unavailable() -> web.Response:
    return web.json_response(error_body(503, "Service Unavailable"), status=503)


async def hang(seconds: float = 5.0) -> web.Response:
    await asyncio.sleep(seconds)
    return ok()


def scripted(*answers: Callable[[], Awaitable[web.Response] | web.Response]) -> Answer:
    """Answer request n with ``answers[n - 1]``; the last one repeats."""

    async def answer(number: int, _: web.Request) -> web.Response:
        result = answers[min(number, len(answers)) - 1]()
        return await result if isinstance(result, Awaitable) else result

    return answer


def record_sleeps(client: Chatmaid) -> list[float]:
    """Capture the waits between attempts instead of sleeping them."""
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    client._transport._sleep = sleep
    return sleeps


class FakePermit:
    def __init__(self, limiter: SlowLimiter) -> None:
        self._limiter = limiter

    async def release(self, *, sent: bool) -> None:
        self._limiter.released.append(sent)


class SlowLimiter:
    """A ``Limiter`` whose slots take ``wait`` seconds to come; records what happened."""

    rate_limit = RateLimit()

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.granted = 0
        self.cancelled_waits = 0
        self.released: list[bool] = []

    async def acquire(self) -> FakePermit:
        try:
            await asyncio.sleep(self.wait)
        except asyncio.CancelledError:
            self.cancelled_waits += 1
            raise
        self.granted += 1
        return FakePermit(self)

    async def hold(self, seconds: float) -> None:
        raise AssertionError("no test here answers with a rate-limit hint")


def client_for(api: LocalAPI, **options: Any) -> Chatmaid:
    return Chatmaid(KEY, base_url=api.url, rate_limit=None, **options)


def attempt_durations(caplog: pytest.LogCaptureFixture) -> list[float]:
    """Seconds each attempt took, from the transport's DEBUG lines."""
    return [
        float(match.group(1))
        for record in caplog.records
        if (match := re.search(r"attempt \d+: .* in ([\d.]+)s$", record.getMessage()))
    ]


def assert_no_task_destroyed(caplog: pytest.LogCaptureFixture) -> None:
    gc.collect()
    assert not [r for r in caplog.records if "Task was destroyed" in r.getMessage()]


# --- per-attempt timeout (F09) ---------------------------------------------------------------


async def test_f09_a_hung_attempt_times_out_alone_and_the_retry_succeeds(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG, logger="chatmaid_async")
    async with (
        LocalAPI(scripted(lambda: hang(2.0), lambda: ok(PHONES))) as api,
        client_for(api, timeout=0.3, max_retries=2) as client,
    ):
        record_sleeps(client)
        started = time.monotonic()
        phones = await client.phone_numbers.list()
        elapsed = time.monotonic() - started

    assert [phone.id for phone in phones] == ["507f1f77bcf86cd799439011"]
    assert api.arrivals == ["/v1/phone-numbers"] * 2
    first, second = attempt_durations(caplog)
    assert 0.3 <= first < 0.45
    assert second < 0.2
    assert elapsed < 0.7


async def test_f09_every_attempt_hanging_raises_timeout_after_exactly_three_attempts():
    async with (
        LocalAPI(scripted(lambda: hang(2.0))) as api,
        client_for(api, timeout=0.3, max_retries=2) as client,
    ):
        sleeps = record_sleeps(client)
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as raised:
            await client.phone_numbers.list()
        elapsed = time.monotonic() - started

    assert len(api.arrivals) == 3
    assert 0.9 <= elapsed < 1.4  # 3 x 0.3 s; the backoff itself was recorded, not slept
    assert len(sleeps) == 2
    assert 0.0 <= sleeps[0] <= 0.5
    assert 0.0 <= sleeps[1] <= 1.0
    assert "0.3s" in str(raised.value)


async def test_f09_the_clients_timeout_bounds_each_attempt_whatever_the_sessions_default():
    session_default = aiohttp.ClientTimeout(total=0.2)
    async with (
        LocalAPI(scripted(lambda: hang(0.4))) as api,
        aiohttp.ClientSession(timeout=session_default) as session,
        client_for(api, timeout=1.0, session=session) as client,
    ):
        account = await client.account.get()

    assert account.account_id == "acc_1"
    assert len(api.arrivals) == 1


async def test_the_attempt_timeout_starts_once_the_limiter_grants_the_slot():
    async with (
        LocalAPI(scripted(ok)) as api,
        client_for(api, timeout=0.3, max_retries=0) as client,
    ):
        limiter = SlowLimiter(wait=0.5)
        client._transport._limiter = limiter
        account = await client.account.get()

    assert account.account_id == "acc_1"
    assert limiter.granted == 1
    assert limiter.released == [True]


# --- overall deadline ------------------------------------------------------------------------


async def test_a_deadline_ends_the_call_across_retries():
    async with (
        LocalAPI(scripted(lambda: hang(2.0))) as api,
        client_for(api, timeout=0.3, max_retries=5, deadline=0.5) as client,
    ):
        record_sleeps(client)
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match=r"did not finish within 0\.5s"):
            await client.account.get()
        elapsed = time.monotonic() - started

    assert 0.5 <= elapsed < 0.75
    assert len(api.arrivals) == 2


async def test_a_deadline_also_cuts_a_wait_between_attempts():
    async def rate_limited() -> web.Response:
        body = {**error_body(429, "Too Many Requests"), "retryAfter": 5}
        return web.json_response(body, status=429)

    async with (
        LocalAPI(scripted(rate_limited, ok)) as api,
        client_for(api, deadline=0.3) as client,
    ):
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            await client.account.get()
        elapsed = time.monotonic() - started

    assert 0.3 <= elapsed < 0.5
    assert len(api.arrivals) == 1


async def test_a_deadline_set_per_call_with_with_options():
    async with (
        LocalAPI(scripted(lambda: hang(2.0))) as api,
        client_for(api, timeout=0.3, max_retries=5) as client,
    ):
        record_sleeps(client)
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            await client.with_options(deadline=0.5).account.get()
        elapsed = time.monotonic() - started

    assert 0.5 <= elapsed < 0.75


async def test_a_generous_deadline_leaves_the_retries_alone():
    async with (
        LocalAPI(scripted(lambda: hang(2.0), ok)) as api,
        client_for(api, timeout=0.2, deadline=5.0) as client,
    ):
        record_sleeps(client)
        account = await client.account.get()

    assert account.account_id == "acc_1"
    assert len(api.arrivals) == 2


@pytest.mark.parametrize("deadline", [0, -1.0, float("nan"), "5"])
async def test_with_options_rejects_a_deadline_that_is_not_a_positive_number(deadline: Any):
    async with Chatmaid(KEY, rate_limit=None) as client:
        with pytest.raises(ConfigurationError, match="deadline"):
            client.with_options(deadline=deadline)


# --- per-call overrides ----------------------------------------------------------------------


async def test_with_options_timeout_bounds_that_call_only():
    async with (
        LocalAPI(scripted(lambda: hang(0.6))) as api,
        client_for(api, timeout=5.0, max_retries=0) as client,
    ):
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            await client.with_options(timeout=0.2).account.get()
        elapsed = time.monotonic() - started

        account = await client.account.get()  # the client's own 5 s still applies

    assert 0.2 <= elapsed < 0.4
    assert account.account_id == "acc_1"


@pytest.mark.parametrize(("max_retries", "attempts"), [(0, 1), (1, 2), (4, 5)])
async def test_with_options_max_retries_sets_that_calls_attempts(max_retries: int, attempts: int):
    async with LocalAPI(scripted(unavailable)) as api, client_for(api) as client:
        record_sleeps(client)
        with pytest.raises(InternalServerError):
            await client.with_options(max_retries=max_retries).account.get()
        assert len(api.arrivals) == attempts

        with pytest.raises(InternalServerError):
            await client.account.get()  # the client keeps its default of 2 retries

    assert len(api.arrivals) == attempts + 3


# --- the connection pool after timeouts (F13) ------------------------------------------------


async def test_f13_timed_out_attempts_free_their_connections():
    delays = random.Random(13)

    async def answer(_: int, request: web.Request) -> web.Response:
        if request.path.startswith("/v1/messages/"):
            await asyncio.sleep(delays.uniform(0.0, 1.0))
            return ok({"id": request.match_info["tail"].rsplit("/", 1)[-1], "status": "sent"})
        return ok()

    fast = RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.002)
    async with (
        LocalAPI(answer) as api,
        client_for(api, timeout=0.5, max_connections=2, retry=fast) as client,
    ):
        burst = await asyncio.gather(
            *(client.messages.get(f"msg_{n}") for n in range(30)), return_exceptions=True
        )
        follow_ups = []
        for _ in range(5):
            started = time.monotonic()
            await client.account.get()
            follow_ups.append(time.monotonic() - started)
        connector = client._transport._sessions[asyncio.get_running_loop()].connector

        assert connector is not None
        assert not any(getattr(connector, "_waiters", {}).values())

    assert all(isinstance(r, (Message, APITimeoutError)) for r in burst), burst
    assert any(isinstance(r, APITimeoutError) for r in burst)
    assert all(seconds < 0.5 for seconds in follow_ups), follow_ups


# --- cancellation (F08) ----------------------------------------------------------------------


async def test_f08_wait_for_stops_a_hung_call_with_no_further_attempt(
    caplog: pytest.LogCaptureFixture,
):
    async with LocalAPI(scripted(lambda: hang(5.0), ok)) as api, client_for(api) as client:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.account.get(), 0.3)
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.2)
        assert len(api.arrivals) == 1

        account = await client.account.get()  # the client is still usable

    assert 0.3 <= elapsed < 0.3 + 0.1
    assert account.account_id == "acc_1"
    assert_no_task_destroyed(caplog)


async def test_f08_cancelling_during_backoff_stops_the_call_at_once(
    caplog: pytest.LogCaptureFixture,
):
    async with LocalAPI(scripted(unavailable)) as api:
        long_backoff = RetryPolicy(base_delay=10.0, max_delay=10.0)
        async with client_for(api, retry=long_backoff) as client:
            sleeping = asyncio.Event()

            async def sleep(seconds: float) -> None:
                sleeping.set()
                await asyncio.sleep(seconds)

            client._transport._sleep = sleep
            call = asyncio.create_task(client.account.get())
            await asyncio.wait_for(sleeping.wait(), 2.0)

            call.cancel()
            started = time.monotonic()
            with pytest.raises(asyncio.CancelledError):
                await call
            elapsed = time.monotonic() - started
            await asyncio.sleep(0.1)

    assert elapsed < PROMPT
    assert len(api.arrivals) == 1
    assert_no_task_destroyed(caplog)


async def test_f08_cancelling_a_retry_in_flight_makes_no_third_attempt():
    async with (
        LocalAPI(scripted(unavailable, lambda: hang(5.0))) as api,
        client_for(api, max_retries=2) as client,
    ):
        record_sleeps(client)
        call = asyncio.create_task(client.account.get())
        await api.arrived(2)

        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await asyncio.sleep(0.1)

    assert len(api.arrivals) == 2


async def test_f08_cancelling_while_waiting_for_a_slot_takes_no_slot_and_sends_nothing():
    async with LocalAPI(scripted(ok)) as api, client_for(api) as client:
        limiter = SlowLimiter(wait=10.0)
        client._transport._limiter = limiter
        call = asyncio.create_task(client.account.get())
        await asyncio.sleep(0.05)

        call.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await call
        elapsed = time.monotonic() - started

    assert elapsed < PROMPT
    assert limiter.cancelled_waits == 1
    assert limiter.granted == 0
    assert limiter.released == []
    assert api.arrivals == []


async def test_f08_cancelling_while_sending_releases_the_slot_as_sent():
    async with LocalAPI(scripted(lambda: hang(5.0))) as api, client_for(api) as client:
        limiter = SlowLimiter(wait=0.0)
        client._transport._limiter = limiter
        call = asyncio.create_task(client.account.get())
        await api.arrived(1)

        call.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await call
        elapsed = time.monotonic() - started

    assert elapsed < PROMPT
    assert limiter.released == [True]
    assert len(api.arrivals) == 1


async def test_f08_a_cancelled_call_is_never_reported_as_a_timeout():
    async with (
        LocalAPI(scripted(lambda: hang(5.0))) as api,
        client_for(api, timeout=0.3) as client,
    ):
        call = asyncio.create_task(client.account.get())
        await api.arrived(1)
        call.cancel()

        with pytest.raises(asyncio.CancelledError):
            await call

    assert call.cancelled()
    assert len(api.arrivals) == 1
