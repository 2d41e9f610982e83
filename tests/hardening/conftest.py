"""Fixtures shared by the hardening tests: a real sandbox, a phone on it and a fresh key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatmaid_async.sandbox import Sandbox

PHONE_NUMBER = "+15550100000"
RECIPIENT = "+15557654321"


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """A started sandbox whose messages never change status on their own (no timers)."""
    async with Sandbox(status_delays=(None, None)) as running:
        yield running


@pytest.fixture
def phone(sandbox: Sandbox) -> str:
    """The dashboard id of a connected phone, ``+15550100000``."""
    return sandbox.add_phone(PHONE_NUMBER, connected=True)


@pytest.fixture
def key(sandbox: Sandbox) -> str:
    """A fresh test key with every scope and no server-side limit."""
    return sandbox.create_key()
