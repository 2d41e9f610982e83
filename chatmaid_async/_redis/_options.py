"""The options of a Redis backend: their defaults, their checks, and how they show in logs.

Pure functions; an option that breaks a rule raises ``ConfigurationError`` saying which rule.
A URL or client is described without its credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from chatmaid_async.errors import ConfigurationError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_LEASE",
    "DEFAULT_PREFIX",
    "DEFAULT_SOCKET_TIMEOUT",
    "check_options",
    "checked_url",
    "describe_client",
    "redact_url",
]

DEFAULT_PREFIX = "chatmaid:rl:"
# Twice the client's default attempt timeout (30 s): a slot in flight longer than this counts
# as ended at its lease deadline.
DEFAULT_LEASE = 60.0
# Long enough for a Redis restart, short enough that a dead Redis is noticed quickly.
DEFAULT_GRACE = 1.0
# Connect and read timeout of the clients built from a URL.
DEFAULT_SOCKET_TIMEOUT = 1.0


def redact_url(url: str) -> str:
    """A Redis URL fit for logs: credentials become ``***`` and a query string ``?…``."""
    parts = urlsplit(url)
    _, at, host = parts.netloc.rpartition("@")
    netloc = f"***@{host}" if at else host
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{shown}?…" if parts.query else shown


def check_options(
    prefix: str, on_unavailable: str, lease: float, grace: float, socket_timeout: float
) -> None:
    if not isinstance(prefix, str) or not prefix:
        raise ConfigurationError(f"prefix must be a non-empty string, got {prefix!r}")
    if on_unavailable not in ("local", "fail"):
        raise ConfigurationError(
            f"on_unavailable must be 'local' or 'fail', got {on_unavailable!r}"
        )
    for label, value, floor in (
        ("lease", lease, 0.0),
        ("socket_timeout", socket_timeout, 0.0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > floor:
            raise ConfigurationError(
                f"{label} must be a positive number of seconds, got {value!r}"
            )
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not grace >= 0:
        raise ConfigurationError(f"grace must be zero or more seconds, got {grace!r}")


def checked_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (urlsplit reads the port only when asked)
    except ValueError:
        # The URL stays out of the message: it may hold the password.
        raise ConfigurationError(
            "the Redis URL is malformed: check its host and port (an IPv6 host goes in "
            "brackets; a port is a number up to 65535)"
        ) from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"the Redis URL must start with redis://, rediss:// or unix://, got {redact_url(url)}"
        )
    return url


def describe_client(client: aioredis.Redis) -> str:
    # Host, port and db only: the pool's settings also hold the password.
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    where = kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    return f"{type(client).__name__}({where}/{kwargs.get('db', 0)})"
