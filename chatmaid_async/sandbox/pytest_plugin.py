"""pytest fixtures for testing code that uses Chatmaid, registered when the package is installed.

- ``chatmaid_sandbox``: a started :class:`~chatmaid_async.sandbox.Sandbox` (function scope).
  Options for it go on a marker: ``@pytest.mark.chatmaid_sandbox(status_delays=(0, 0))``.
- ``chatmaid_key``: a fresh all-scopes test key on that sandbox.
- ``chatmaid_phone``: the dashboard id of a connected phone, ``+15550100000``.
- ``chatmaid_client``: a ``chatmaid_async.Chatmaid`` on that key, already entered.

The async fixtures need pytest-asyncio; without it this module registers nothing and stays
silent. Importing it is cheap: the sandbox itself loads only when a fixture runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from chatmaid_async import Chatmaid
    from chatmaid_async.sandbox._sandbox import Sandbox

__all__ = ["DEFAULT_PHONE_NUMBER", "pytest_configure"]

DEFAULT_PHONE_NUMBER = "+15550100000"
MARKER = "chatmaid_sandbox"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker that passes options to the ``chatmaid_sandbox`` fixture."""
    config.addinivalue_line(
        "markers", f"{MARKER}(**options): keyword arguments for the chatmaid_sandbox's Sandbox()"
    )


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised in a subprocess by the plugin tests
    HAVE_PYTEST_ASYNCIO = False
else:
    HAVE_PYTEST_ASYNCIO = True


if HAVE_PYTEST_ASYNCIO:

    @pytest_asyncio.fixture
    async def chatmaid_sandbox(request: pytest.FixtureRequest) -> AsyncIterator[Sandbox]:
        """A started sandbox on a free local port, closed after the test."""
        from chatmaid_async.sandbox._sandbox import Sandbox

        marker = request.node.get_closest_marker(MARKER)
        options: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
        async with Sandbox(**options) as sandbox:
            yield sandbox

    @pytest.fixture
    def chatmaid_key(chatmaid_sandbox: Sandbox) -> str:
        """A fresh test key with every scope and no rate limit."""
        return chatmaid_sandbox.create_key()

    @pytest.fixture
    def chatmaid_phone(chatmaid_sandbox: Sandbox) -> str:
        """The dashboard id of a connected phone, ``+15550100000``, in the sandbox account."""
        return chatmaid_sandbox.add_phone(DEFAULT_PHONE_NUMBER, connected=True)

    @pytest_asyncio.fixture
    async def chatmaid_client(
        chatmaid_sandbox: Sandbox, chatmaid_key: str, chatmaid_phone: str
    ) -> AsyncIterator[Chatmaid]:
        """A ``Chatmaid`` client on ``chatmaid_key``, pointed at the sandbox, pacing off.

        The sandbox key has no rate limit, so tests run at full speed; build your own client
        with ``rate_limit=`` to test pacing.
        """
        # Imported here so that loading the plugin does not load the client and aiohttp.
        from chatmaid_async import Chatmaid

        async with Chatmaid(
            chatmaid_key, base_url=chatmaid_sandbox.base_url, rate_limit=None
        ) as client:
            yield client
