"""One client class, any event loop: pytest-asyncio's, ``asyncio.run`` after ``asyncio.run``,
uvloop, and two loops in two threads pacing one key at the same time.

The sandbox runs in a thread of its own, on its own loop, for the whole module, so it outlives
every loop the tests make. The module-level client below is built at import time, before any
loop exists, exactly as an application module would build it.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from chatmaid_async import Chatmaid, Message, RateLimit
from chatmaid_async.sandbox import Sandbox

from .conftest import PHONE_NUMBER, RECIPIENT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SandboxThread:
    """A sandbox served from a thread's own event loop until :meth:`stop`."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.sandbox:
            self._ready.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(10), "the sandbox thread did not start"

    def stop(self) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


# Built at import time, with no loop running: keys and phones can be arranged before start.
SERVER = Sandbox(port=free_port(), status_delays=(None, None))
KEY = SERVER.create_key()
SHARED_KEY_LIMIT = RateLimit(30, 0.3)
SHARED_KEY = SERVER.create_key(rate_limit=SHARED_KEY_LIMIT)
SERVER.add_phone(PHONE_NUMBER, connected=True)
BASE_URL = f"http://127.0.0.1:{SERVER._requested_port}"
MODULE_CLIENT = Chatmaid(KEY, base_url=BASE_URL, rate_limit=RateLimit(1000, 1.0))
LOOPS_SEEN: list[asyncio.AbstractEventLoop] = []


@pytest.fixture(scope="module", autouse=True)
def served() -> Iterator[None]:
    thread = SandboxThread(SERVER)
    thread.start()
    try:
        yield
    finally:
        asyncio.run(MODULE_CLIENT.aclose())
        thread.stop()
        # A session left unclosed would warn when collected; collect now, inside this module.
        gc.collect()


def contents() -> list[str | None]:
    return [message.content for message in SERVER.messages.values()]


async def send(client: Chatmaid, content: str) -> Message:
    return await client.messages.send(PHONE_NUMBER, RECIPIENT, content)


# -- pytest-asyncio: a new loop per test, one client for the module ----------------------------


async def test_a_client_built_at_import_serves_a_function_scoped_loop() -> None:
    message = await send(MODULE_CLIENT, "first loop")
    await MODULE_CLIENT.account.get()
    LOOPS_SEEN.append(asyncio.get_running_loop())

    assert message.status == "sent"
    assert "first loop" in contents()


async def test_the_same_client_serves_the_next_tests_new_loop() -> None:
    loop = asyncio.get_running_loop()
    message = await send(MODULE_CLIENT, "second loop")
    await MODULE_CLIENT.phone_numbers.list()

    assert message.status == "sent"
    assert all(seen is not loop for seen in LOOPS_SEEN)
    # The session of the loop before has been closed and dropped: one session, this loop's.
    assert list(MODULE_CLIENT._transport._sessions) == [loop]


# -- asyncio.run after asyncio.run -------------------------------------------------------------


def server_connections_after_settling() -> int:
    assert SERVER._runner is not None
    until = time.monotonic() + 2.0
    while SERVER._runner.server.connections and time.monotonic() < until:
        time.sleep(0.01)
    return len(SERVER._runner.server.connections)


def test_one_client_serves_three_asyncio_runs_and_closes_in_a_fourth() -> None:
    client = Chatmaid(KEY, base_url=BASE_URL)
    left_open = []
    for run in range(3):
        asyncio.run(send(client, f"asyncio.run {run}"))
        left_open.append(server_connections_after_settling())
    asyncio.run(client.aclose())
    gc.collect()

    assert {"asyncio.run 0", "asyncio.run 1", "asyncio.run 2"} <= set(contents())
    # No run's connections outlive its loop.
    assert left_open == [0, 0, 0]
    assert client.closed
    assert client._transport._sessions == {}


# -- uvloop --------------------------------------------------------------------------------------


def test_one_client_serves_uvloop_runs_and_closes_in_a_plain_asyncio_loop() -> None:
    uvloop = pytest.importorskip("uvloop")
    client = Chatmaid(KEY, base_url=BASE_URL)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        first = runner.run(send(client, "uvloop runner"))
        runner_loop = runner.get_loop()
    second = uvloop.run(send(client, "uvloop.run"))
    asyncio.run(client.aclose())
    gc.collect()

    assert type(runner_loop).__module__.startswith("uvloop")
    assert first.status == second.status == "sent"
    assert {"uvloop runner", "uvloop.run"} <= set(contents())
    assert client._transport._sessions == {}


# -- one key, two loops at once ------------------------------------------------------------------


def new_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the test environment
        return asyncio.new_event_loop
    return uvloop.new_event_loop  # type: ignore[no-any-return]


async def send_paced(prefix: str, count: int) -> list[Message]:
    async with Chatmaid(SHARED_KEY, base_url=BASE_URL, rate_limit=SHARED_KEY_LIMIT) as client:
        return list(await asyncio.gather(*(send(client, f"{prefix} {n}") for n in range(count))))


def run_in_thread(coroutine: Coroutine[Any, Any, list[Message]]) -> list[Message]:
    with asyncio.Runner(loop_factory=new_loop_factory()) as runner:
        return runner.run(coroutine)


async def test_one_key_paced_from_two_loops_at_once_shares_one_budget() -> None:
    # Main loop and a worker thread's loop (uvloop when installed) send on the same key at
    # the same time: one limiter serves both, and the server never sees the limit broken.
    count = 45
    worker = asyncio.to_thread(run_in_thread, send_paced("worker", count))

    here, there = await asyncio.gather(send_paced("main", count), worker)

    assert len(here) == len(there) == count
    assert all(message.status == "sent" for message in here + there)
    assert SERVER.counters.rate_limited_by_key.get(SHARED_KEY, 0) == 0
    assert SERVER.counters.max_in_window_by_key[SHARED_KEY] <= SHARED_KEY_LIMIT.requests


async def test_clients_on_one_key_in_two_loops_use_the_same_limiter() -> None:
    seen = []

    def other_loop() -> None:
        async def lease() -> None:
            async with Chatmaid(SHARED_KEY, base_url=BASE_URL, rate_limit=SHARED_KEY_LIMIT) as c:
                seen.append(c.limiter)
                await send(c, "limiter from a thread")

        run_in_thread(lease())  # type: ignore[arg-type]

    async with Chatmaid(SHARED_KEY, base_url=BASE_URL, rate_limit=SHARED_KEY_LIMIT) as client:
        await asyncio.to_thread(other_loop)
        await send(client, "limiter from the main loop")

        assert seen == [client.limiter]
