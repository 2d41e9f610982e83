"""Embedding (async context manager), serve() and the ``python -m`` entry point."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import aiohttp
import pytest

from chatmaid_async.sandbox import Sandbox, SandboxReady, serve


async def test_context_manager_serves_on_localhost_on_a_free_port() -> None:
    async with Sandbox() as sandbox:
        assert sandbox.host == "127.0.0.1"
        assert sandbox.port > 0
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sandbox.base_url)
        key = sandbox.create_key()
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{sandbox.base_url}/v1/account", headers={"Authorization": f"Bearer {key}"}
            ) as response,
        ):
            assert response.status == 200

    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http:
            await http.get(f"{sandbox.base_url}/v1/account")


async def test_two_sandboxes_run_side_by_side() -> None:
    async with Sandbox() as first, Sandbox() as second:
        assert first.base_url != second.base_url


def test_base_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = Sandbox().base_url


def test_setup_works_before_start_and_repr_hides_keys() -> None:
    sandbox = Sandbox()
    key = sandbox.create_key()
    sandbox.add_phone("+15550100000")

    assert key not in repr(sandbox)
    assert "not started" in repr(sandbox)
    assert key not in repr(sandbox.counters)


async def test_start_twice_is_an_error_and_aclose_is_idempotent() -> None:
    sandbox = Sandbox()
    await sandbox.start()
    with pytest.raises(RuntimeError, match="once"):
        await sandbox.start()

    await sandbox.aclose()
    await sandbox.aclose()


async def test_a_busy_port_fails_to_start_and_leaks_nothing() -> None:
    async with Sandbox() as taken:
        with pytest.raises(OSError, match=r"(?i)in use"):
            await Sandbox(port=taken.port).start()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.add_phone("5550100000"), "E.164"),
        (lambda s: s.add_group("+15550100000", "not-a-jid", "x"), "JID"),
        (lambda s: s.add_inbound("+15550100000", "+15557654321", "x", "gif"), "type"),
    ],
)
def test_helpers_validate_their_arguments(call: object, message: str) -> None:
    sandbox = Sandbox()
    sandbox.add_phone("+15550100000")

    with pytest.raises(ValueError, match=message):
        call(sandbox)  # type: ignore[operator]


def test_a_phone_number_can_be_added_once() -> None:
    sandbox = Sandbox()
    sandbox.add_phone("+15550100000")

    with pytest.raises(ValueError, match="already"):
        sandbox.add_phone("+15550100000")


class Ready:
    """An ``on_ready`` callback a test can wait on."""

    def __init__(self) -> None:
        self.info: SandboxReady | None = None
        self.event = asyncio.Event()

    def __call__(self, info: SandboxReady) -> None:
        self.info = info
        self.event.set()

    async def wait(self) -> SandboxReady:
        await asyncio.wait_for(self.event.wait(), 5)
        assert self.info is not None
        return self.info


async def test_serve_reports_ready_and_stops_on_the_event() -> None:
    stop = asyncio.Event()
    ready = Ready()

    task = asyncio.create_task(
        serve("127.0.0.1", 0, on_ready=ready, stop=stop, handle_signals=False)
    )
    info = await ready.wait()
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{info.base_url}/v1/phone-numbers/{info.phone_id}",
            headers={"Authorization": f"Bearer {info.api_key}"},
        ) as response,
    ):
        body = await response.json()
    stop.set()
    await asyncio.wait_for(task, 5)

    assert body["data"]["phoneNumber"] == info.phone_number == "+15550100000"
    assert info.api_key.startswith("sk_test_")
    assert info.api_key not in repr(info)


async def test_serve_stops_cleanly_when_cancelled() -> None:
    ready = Ready()
    task = asyncio.create_task(serve("127.0.0.1", 0, on_ready=ready, handle_signals=False))
    await ready.wait()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONWARNINGS"] = "error"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_python_m_prints_a_key_and_stops_on_a_signal(
    child_env: dict[str, str], signum: signal.Signals
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chatmaid_async.sandbox",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        banner = [
            (await asyncio.wait_for(process.stdout.readline(), 15)).decode() for _ in range(3)
        ]
        base_url = re.search(r"http://127\.0\.0\.1:\d+", banner[0])
        key = re.search(r"sk_test_\w+", banner[1])
        assert base_url, banner
        assert key, banner
        assert "+15550100000" in banner[2]

        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{base_url.group()}/v1/account",
                headers={"Authorization": f"Bearer {key.group()}"},
            ) as response,
        ):
            assert response.status == 200

        process.send_signal(signum)
        code = await asyncio.wait_for(process.wait(), 10)
        rest = (await process.stdout.read()).decode()
        errors = (await process.stderr.read()).decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert code == 0
    assert "stopped" in rest
    assert "Traceback" not in errors, errors


def test_a_seed_makes_resource_ids_repeatable_but_not_keys() -> None:
    first, second = Sandbox(seed=5), Sandbox(seed=5)

    assert first.add_phone("+15550100000") == second.add_phone("+15550100000")
    assert first.create_key() != second.create_key()
