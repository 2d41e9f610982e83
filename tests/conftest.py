"""Shared fixtures for the unit tests (aioresponses) of the client."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses, core

from chatmaid_async import Chatmaid, RetryPolicy

BASE = "https://developers-api.chatmaid.net"
KEY = "sk_test_unitkey0000000000abcd"


def _patch_aioresponses_for_aiohttp_314() -> None:
    # aiohttp 3.14 made ClientResponse require stream_writer; aioresponses 0.7.9 does not pass
    # it (pnuckowski/aioresponses#289). Supply the one attribute aiohttp reads.
    if "stream_writer" not in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        return

    class _Writer:
        output_size = 0

    class CompatResponse(aiohttp.ClientResponse):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("stream_writer", _Writer())
            super().__init__(*args, **kwargs)

    core.ClientResponse = CompatResponse  # type: ignore[misc]


_patch_aioresponses_for_aiohttp_314()


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    """aioresponses that lets loopback traffic (local test servers, the sandbox) through."""
    with aioresponses(passthrough=["http://127.0.0.1"]) as mock:
        yield mock


@pytest.fixture
def fast_retry() -> RetryPolicy:
    """Two retries with millisecond backoff, so retry tests do not sleep."""
    return RetryPolicy(max_retries=2, base_delay=0.001, max_delay=0.002)


@pytest.fixture
async def client(fast_retry: RetryPolicy) -> AsyncIterator[Chatmaid]:
    """A client on the default base URL with pacing off and fast retries."""
    async with Chatmaid(KEY, rate_limit=None, retry=fast_retry) as c:
        yield c


def envelope(data: Any) -> dict[str, Any]:
    """A success envelope around ``data``."""
    return {"success": True, "data": data}


def error_body(status: int, error: str, *messages: str, path: str = "/v1/x") -> dict[str, Any]:
    """The documented error envelope."""
    return {
        "success": False,
        "error": error,
        "message": list(messages),
        "statusCode": status,
        "timestamp": "2026-01-01T00:00:00.000Z",
        "path": path,
    }


def sent_requests(mock: aioresponses) -> list[tuple[str, str, dict[str, Any]]]:
    """Every request aioresponses saw, as (method, full URL, kwargs), in order."""
    calls = []
    for (method, url), entries in mock.requests.items():
        for entry in entries:
            calls.append((method, str(url), entry.kwargs))
    return calls
