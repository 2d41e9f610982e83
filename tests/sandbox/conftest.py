"""Fixtures for the sandbox tests: a running sandbox and a raw aiohttp client on it.

These tests talk HTTP directly, never through the SDK client, so they pin the sandbox to the
contract and not to whatever the client happens to do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from chatmaid_async.sandbox import Sandbox

from ._support import PHONE_NUMBER, Api


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(
        status_delays=(0.05, 0.1), pending_for=0.03, webhook_retry_delays=(0.05, 0.1, 0.2)
    ) as running:
        yield running


@pytest.fixture
async def http(sandbox: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=sandbox.base_url) as session:
        yield session


@pytest.fixture
def api(http: aiohttp.ClientSession) -> Api:
    return Api(http)


@pytest.fixture
def key(sandbox: Sandbox) -> str:
    return sandbox.create_key()


@pytest.fixture
def live_key(sandbox: Sandbox) -> str:
    return sandbox.create_key(live=True)


@pytest.fixture
def phone(sandbox: Sandbox) -> str:
    return sandbox.add_phone(PHONE_NUMBER, connected=True)
