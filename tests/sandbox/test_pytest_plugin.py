"""The pytest plugin: its fixtures here, in a user's project, and without pytest-asyncio."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import chatmaid_async
from chatmaid_async.sandbox import Sandbox


async def test_fixtures_give_a_started_sandbox_key_and_phone(
    chatmaid_sandbox: Sandbox, chatmaid_key: str, chatmaid_phone: str
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{chatmaid_sandbox.base_url}/v1/phone-numbers/{chatmaid_phone}",
            headers={"Authorization": f"Bearer {chatmaid_key}"},
        ) as response,
    ):
        body = await response.json()

    assert body["data"]["phoneNumber"] == "+15550100000"
    assert body["data"]["connectionStatus"] == "connected"


@pytest.mark.chatmaid_sandbox(status_delays=(None, None), seed=3)
async def test_marker_passes_options_to_the_sandbox(
    chatmaid_sandbox: Sandbox, chatmaid_key: str, chatmaid_phone: str
) -> None:
    async with (
        aiohttp.ClientSession(base_url=chatmaid_sandbox.base_url) as http,
        http.post(
            "/v1/messages/send",
            json={"fromPhoneId": chatmaid_phone, "to": "+15557654321", "content": "x"},
            headers={"Authorization": f"Bearer {chatmaid_key}"},
        ) as response,
    ):
        message = (await response.json())["data"]

    assert chatmaid_sandbox.messages[message["id"]].delivered_at is None


@pytest.mark.skipif(
    not hasattr(chatmaid_async, "Chatmaid"), reason="the Chatmaid client is not written yet"
)
async def test_chatmaid_client_sends_through_the_sandbox(
    chatmaid_client: Any, chatmaid_sandbox: Sandbox, chatmaid_phone: str
) -> None:
    message = await chatmaid_client.messages.send(chatmaid_phone, "+15557654321", "hi")

    stored = chatmaid_sandbox.messages[message.id]
    assert stored.idempotency_key == message.idempotency_key
    assert message.status == "sent"


# Unrelated plugins are left out of the child sessions only to keep them quick to start.
QUIET_PLUGINS = ["-p", "no:hypothesispytest", "-p", "no:pytest_cov", "-p", "no:anyio"]

# Makes "import pytest_asyncio" fail in a child process, as if it were not installed.
BLOCK_PYTEST_ASYNCIO = textwrap.dedent(
    """
    import importlib.abc, sys

    class _Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "pytest_asyncio":
                raise ImportError(name)
            return None

    sys.meta_path.insert(0, _Block())
    """
)


def _run(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=False,
    )


def test_plugin_import_is_cheap() -> None:
    result = _run(
        "import sys; import chatmaid_async.sandbox.pytest_plugin; "
        "assert 'chatmaid_async.sandbox._sandbox' not in sys.modules; "
        "assert 'chatmaid_async.sandbox._app' not in sys.modules"
    )

    assert result.returncode == 0, result.stderr


def test_plugin_without_pytest_asyncio_registers_nothing() -> None:
    result = _run(
        BLOCK_PYTEST_ASYNCIO + "import chatmaid_async.sandbox.pytest_plugin as plugin\n"
        "assert not plugin.HAVE_PYTEST_ASYNCIO\n"
        "assert not hasattr(plugin, 'chatmaid_sandbox')\n"
    )

    assert result.returncode == 0, result.stderr


def test_a_session_without_pytest_asyncio_still_runs(tmp_path: Path) -> None:
    (tmp_path / "test_sync.py").write_text("def test_ok():\n    assert True\n")

    result = _run(
        BLOCK_PYTEST_ASYNCIO + "import pytest\n"
        f"args = ['-p', 'no:asyncio', '-p', 'no:cacheprovider', *{QUIET_PLUGINS!r}]\n"
        "sys.exit(pytest.main([*args, '-q', 'test_sync.py']))\n",
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stdout + result.stderr


SNIPPET = Path(__file__).resolve().parents[2] / "README.md"
SNIPPET_FILE = re.compile(r"<!-- file: (?P<name>[\w.]+) -->\n```python\n(?P<code>.*?)```", re.S)

USER_TEST = """
import aiohttp
import pytest


@pytest.mark.asyncio
@pytest.mark.chatmaid_sandbox(status_delays=(0.0, 0.0))
async def test_send(chatmaid_sandbox, chatmaid_key, chatmaid_phone):
    async with aiohttp.ClientSession(base_url=chatmaid_sandbox.base_url) as http:
        async with http.post(
            "/v1/messages/send",
            json={"fromPhoneId": chatmaid_phone, "to": "+15557654321", "content": "hi"},
            headers={"Authorization": f"Bearer {chatmaid_key}"},
        ) as response:
            body = await response.json()
    assert response.status == 201
    assert body["data"]["status"] == "read"
"""


@pytest.mark.skipif(
    not hasattr(chatmaid_async, "Chatmaid"), reason="the Chatmaid client is not written yet"
)
def test_fixtures_and_the_readme_example_work_in_a_user_project(tmp_path: Path) -> None:
    # One child session, in strict mode, runs a raw test and the snippet's FastAPI example.
    files = {match["name"]: match["code"] for match in SNIPPET_FILE.finditer(SNIPPET.read_text())}
    assert set(files) == {"app.py", "test_app.py"}
    for name, code in {**files, "test_user.py": USER_TEST}.items():
        (tmp_path / name).write_text(code)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *QUIET_PLUGINS,
            "-W",
            "error",
            "-o",
            "asyncio_mode=strict",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
