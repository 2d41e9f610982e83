"""Opening the client a command works with: a configured API, or an embedded sandbox.

With ``--sandbox`` the sandbox server runs in this process, on this event loop, with a fresh
test key and one connected phone; the client talks to it over loopback HTTP exactly as it
would to the API, and the sender defaults to the sandbox phone.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import attrs

from chatmaid_async import Chatmaid, RateLimit
from chatmaid_async._limits import redact_key

__all__ = [
    "DEFAULT_RATE",
    "SANDBOX_PHONE",
    "ConnectOptions",
    "Session",
    "UsageProblem",
    "format_rate",
    "open_session",
    "parse_rate",
]

DEFAULT_RATE = RateLimit(100, 60.0)
SANDBOX_PHONE = "+15550100000"
RATE_OFF = "off"


class UsageProblem(Exception):
    """The command line asks for something contradictory (exit code 2)."""


@attrs.frozen(slots=True, repr=False)
class ConnectOptions:
    """Where a command connects, from its common options.

    ``rate`` is how the client paces; ``None`` means "the default for this connection".
    ``pacing_off`` turns the client's pacing off altogether.
    """

    api_key: str | None = None
    base_url: str | None = None
    sandbox: bool = False
    sandbox_rate: RateLimit | None = DEFAULT_RATE
    rate: RateLimit | None = None
    pacing_off: bool = False
    json: bool = False

    def __repr__(self) -> str:
        where = "sandbox" if self.sandbox else (self.base_url or "default")
        return f"<ConnectOptions {where} key={redact_key(self.api_key)} json={self.json}>"


@attrs.frozen(slots=True)
class Session:
    """An open client, the sender to use when none is given, and the key's limit."""

    client: Chatmaid
    default_from: str | None
    rate_limit: RateLimit | None
    sandbox_url: str | None = None


def parse_rate(text: str) -> RateLimit | None:
    """``"100/60"`` → 100 requests per 60 s; ``"50/1"``; ``"off"`` → None (no limit).

    Raises ``ValueError`` with the expected form.
    """
    if text.strip().lower() == RATE_OFF:
        return None
    requests, slash, per = text.partition("/")
    try:
        return RateLimit(int(requests), float(per) if slash else 60.0)
    except ValueError:
        raise ValueError(f"expected N/SECONDS like 100/60, or off; got {text!r}") from None


def format_rate(rate_limit: RateLimit | None) -> str:
    """The inverse of :func:`parse_rate`, for messages: ``100 per 60 s``."""
    if rate_limit is None:
        return "no limit"
    return f"{rate_limit.requests} per {rate_limit.per:g} s"


@contextlib.asynccontextmanager
async def open_session(options: ConnectOptions) -> AsyncIterator[Session]:
    """Open the client the options describe, and close it (and any sandbox) afterwards."""
    if not options.sandbox:
        rate = None if options.pacing_off else (options.rate or DEFAULT_RATE)
        async with Chatmaid(options.api_key, base_url=options.base_url, rate_limit=rate) as client:
            yield Session(client, default_from=None, rate_limit=rate)
        return

    if options.api_key is not None or options.base_url is not None:
        raise UsageProblem("--sandbox makes its own key and URL: drop --api-key and --base-url")
    async with _embedded_sandbox(options) as session:
        yield session


@contextlib.asynccontextmanager
async def _embedded_sandbox(options: ConnectOptions) -> AsyncIterator[Session]:
    # Imported here: the sandbox pulls in aiohttp.web, which other commands never need.
    from chatmaid_async.sandbox import Sandbox

    server_limit = options.sandbox_rate
    async with Sandbox() as sandbox:
        key = sandbox.create_key(rate_limit=server_limit, window="sliding")
        sandbox.add_phone(SANDBOX_PHONE, connected=True)

        # The client paces at the sandbox key's limit unless told otherwise.
        rate = None if options.pacing_off else (options.rate or server_limit)
        async with Chatmaid(key, base_url=sandbox.base_url, rate_limit=rate) as client:
            yield Session(
                client, default_from=SANDBOX_PHONE, rate_limit=rate, sandbox_url=sandbox.base_url
            )
