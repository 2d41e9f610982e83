"""Entry points: the console script, ``python -m chatmaid_async``, ``chatmaid sandbox``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chatmaid_async import Chatmaid


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_importing_the_sdk_imports_neither_the_cli_nor_typer_nor_rich() -> None:
    probe = "import sys, chatmaid_async; print(sorted(sys.modules))"
    loaded = run("-c", probe).stdout

    for name in ("typer", "rich", "click", "chatmaid_async.cli"):
        assert f"'{name}'" not in loaded
    assert "'chatmaid_async'" in loaded


def test_python_dash_m_runs_the_command() -> None:
    result = run("-m", "chatmaid_async", "--help")

    assert result.returncode == 0, result.stderr
    for command in ("send", "messages", "batch", "sandbox", "phones", "usage"):
        assert command in result.stdout


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("chatmaid")
    if not script.exists():
        pytest.skip("the package is not installed with its console script here")

    result = subprocess.run(
        [str(script), "account", "--sandbox", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("CHATMAID_")},
    )

    assert result.returncode == 0, result.stderr
    assert '"Sandbox Account"' in result.stdout


async def test_chatmaid_sandbox_serves_a_ready_key_and_phone_until_ctrl_c() -> None:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatmaid_async", "sandbox", "--port", "0", "--rate", "5/1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert server.stdout is not None
    banner = ""
    while "Ctrl-C" not in banner:
        line = await asyncio.wait_for(server.stdout.readline(), 15)
        assert line, "the sandbox exited before it was ready"
        banner += line.decode()

    url = re.search(r"CHATMAID_BASE_URL=(\S+)", banner)
    key = re.search(r"CHATMAID_API_KEY=(sk_test_\S+)", banner)
    assert url
    assert key
    assert "+15550100000" in banner
    async with Chatmaid(key[1], base_url=url[1], rate_limit=None) as client:
        phones = await client.phone_numbers.list()
    assert [p.phone_number for p in phones] == ["+15550100000"]

    server.send_signal(signal.SIGINT)
    await asyncio.wait_for(server.communicate(), 15)
    assert server.returncode == 0
