"""Fixtures for the batch and CLI tests: a sandbox (no mocks), keys with scaled limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import pytest
from typer.testing import CliRunner, Result

from chatmaid_async import Chatmaid, RateLimit, SendRequest
from chatmaid_async.cli._app import app
from chatmaid_async.sandbox import Sandbox

PHONE = "+15550100000"
# Scaled limits keep the tests fast while still exercising the burst and the pacing.
FAST_LIMIT = RateLimit(50, 1.0)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A sandbox with one connected phone and short status delays."""
    async with Sandbox(status_delays=(0.05, 0.1)) as running:
        running.add_phone(PHONE, connected=True)
        yield running


@pytest.fixture
def key(sandbox: Sandbox) -> str:
    """A test key without a server-side limit."""
    return sandbox.create_key()


@pytest.fixture
async def client(sandbox: Sandbox, key: str) -> AsyncIterator[Chatmaid]:
    """A client on ``key`` with pacing off."""
    async with Chatmaid(key, base_url=sandbox.base_url, rate_limit=None) as c:
        yield c


def request(item_id: str, *, to: str = "+15557654321", content: str | None = "hi") -> SendRequest:
    """A send request from the sandbox phone."""
    return SendRequest(id=item_id, from_phone_id=PHONE, to=to, content=content)


def invoke(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    """Run ``chatmaid ARGS`` in this process, without the caller's CHATMAID_* variables."""
    clean: dict[str, str | None] = {"CHATMAID_API_KEY": None, "CHATMAID_BASE_URL": None}
    return CliRunner().invoke(app, list(args), env={**clean, **(env or {})})


async def invoke_async(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    """:func:`invoke` from a worker thread, so a sandbox on this loop keeps serving."""
    return await asyncio.to_thread(invoke, *args, env=env)
