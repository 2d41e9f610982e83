"""The :class:`Chatmaid` client: configuration, lifecycle and the resource namespaces."""

from __future__ import annotations

import copy
import ipaddress
import math
import os
import weakref
from collections.abc import Awaitable, Mapping
from types import TracebackType
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

import aiohttp
import attrs
from yarl import URL

from chatmaid_async import _limiter
from chatmaid_async._limits import Limiter, LimiterBackend, RateLimit, key_fingerprint, redact_key
from chatmaid_async._retry import RetryPolicy
from chatmaid_async._transport import Envelope, RequestOptions, Transport
from chatmaid_async.errors import ConfigurationError
from chatmaid_async.resources.account import AccountResource
from chatmaid_async.resources.groups import GroupsResource
from chatmaid_async.resources.messages import MessagesResource
from chatmaid_async.resources.phone_numbers import PhoneNumbersResource

__all__ = ["DEFAULT_BASE_URL", "Chatmaid"]

DEFAULT_BASE_URL = "https://developers-api.chatmaid.net"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_CONNECTIONS = 100
KEY_PREFIXES = {"sk_test_": "test", "sk_live_": "live"}
# Far above any real key; a longer value is a mistake (a pasted file), not a key.
MAX_KEY_LENGTH = 256

_UNSET: Any = object()


class Chatmaid:
    """Async client for the Chatmaid Developers API.

    Build it anywhere, even at import time: the aiohttp session is created on first use, inside
    the running loop. Use it as ``async with Chatmaid() as client:`` or call :meth:`aclose`.
    One client per process is the intended use; every client on one key shares one
    rate-limit budget.

    ``api_key`` defaults to ``CHATMAID_API_KEY`` and ``base_url`` to ``CHATMAID_BASE_URL``
    (with or without ``/v1``). ``rate_limit`` paces requests per key (``None`` turns pacing
    off); ``rate_limiter`` plugs in a shared backend such as ``RedisRateLimiter``.
    ``timeout`` bounds each attempt, ``deadline`` (optional) a whole call with its retries.
    ``session`` is an aiohttp session of yours: it is used as it is and never closed here.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        rate_limit: RateLimit | None = _UNSET,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout: float = DEFAULT_TIMEOUT,
        session: aiohttp.ClientSession | None = None,
        deadline: float | None = None,
        retry: RetryPolicy | None = None,
        rate_limiter: LimiterBackend | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        key = _resolve_key(api_key)
        self.environment: Literal["test", "live"] = _environment(key)
        self.base_url = _resolve_base_url(base_url, self.environment)
        self.rate_limit = RateLimit() if rate_limit is _UNSET else rate_limit
        _check_collaborators(self.rate_limit, retry, session, rate_limiter, max_connections)
        _check_session_auth(session)

        self._options = RequestOptions(
            timeout=_positive("timeout", timeout),
            retry=retry or _retry_policy(max_retries),
            deadline=_optional_positive("deadline", deadline),
        )
        self._limiter = self._bind_limiter(key, rate_limiter)
        # A client dropped without aclose() still gives its lease back when collected.
        self._release_lease = weakref.finalize(self, _limiter.release_lease, self._limiter)
        self._transport = Transport(
            api_key=key,
            base_url=self.base_url,
            limiter=self._limiter,
            max_connections=max_connections,
            session=session,
        )
        self._owns_transport = True
        self._key_label = redact_key(key)
        self._build_resources()

    def _build_resources(self) -> None:
        self.messages = MessagesResource(self)
        self.groups = GroupsResource(self)
        self.phone_numbers = PhoneNumbersResource(self)
        self.account = AccountResource(self)

    def _bind_limiter(self, key: str, backend: LimiterBackend | None) -> Limiter | None:
        if self.rate_limit is None:
            return None
        if backend is not None:
            return backend.limiter_for(key_fingerprint(key), self.rate_limit, name=redact_key(key))
        return _limiter.lease(key, self.rate_limit)

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<Chatmaid {self.environment} {self.base_url} key={self._key_label}{state}>"

    @property
    def closed(self) -> bool:
        """True once the client has been closed."""
        return self._transport.closed

    @property
    def limiter(self) -> Limiter | None:
        """The key's rate limiter (shared with every client on the key), or None."""
        return self._limiter

    def with_options(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        deadline: float | None = _UNSET,
    ) -> Chatmaid:
        """A view of this client with other per-call settings, sharing its session and limit.

        ``client.with_options(timeout=5, max_retries=0).messages.send(...)``. Closing the view
        does nothing; close the original.
        """
        view = copy.copy(self)
        retry = self._options.retry
        if max_retries is not None:
            retry = _retry_policy(max_retries, like=retry)
        view._options = RequestOptions(
            timeout=self._options.timeout if timeout is None else _positive("timeout", timeout),
            retry=retry,
            deadline=(
                self._options.deadline
                if deadline is _UNSET
                else _optional_positive("deadline", deadline)
            ),
        )
        view._owns_transport = False
        view._build_resources()
        return view

    async def __aenter__(self) -> Chatmaid:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's own HTTP session and give back its rate-limit lease.

        Closing twice is harmless. A session passed in as ``session=`` stays open.
        """
        if not self._owns_transport or self._transport.closed:
            return
        await self._transport.aclose()
        self._release_lease()

    close = aclose

    def _request(
        self,
        method: str,
        endpoint: str,
        path_params: tuple[str, ...] = (),
        *,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Awaitable[Envelope]:
        # The transport's call is handed on, not awaited: the resource's await drives it. A
        # closed client's transport raises ClientClosedError before building anything.
        return self._transport.request(
            method,
            endpoint,
            path_params,
            options=self._options,
            query=query,
            body=body,
            idempotency_key=idempotency_key,
        )


def _resolve_key(api_key: str | None) -> str:
    key = api_key if api_key is not None else os.environ.get("CHATMAID_API_KEY")
    if key is None:
        raise ConfigurationError(
            "no API key: pass api_key= or set CHATMAID_API_KEY (keys start with sk_test_ or "
            "sk_live_)"
        )
    if not isinstance(key, str):
        raise ConfigurationError(f"api_key must be a string, not {type(key).__name__}")
    if key != key.strip():
        # Most often a newline read from a file; showing the key's tail would show it too.
        raise ConfigurationError(
            "the API key has leading or trailing whitespace (a newline read from a file?): "
            "strip it (keys start with sk_test_ or sk_live_; the key itself is not shown)"
        )
    if not key.startswith(tuple(KEY_PREFIXES)):
        raise ConfigurationError(
            "the API key must start with sk_test_ or sk_live_ (the key itself is not shown)"
        )
    if not _is_well_formed(key):
        raise ConfigurationError(
            f"the API key {redact_key(key)} is malformed: it must be 9 to {MAX_KEY_LENGTH} "
            "printable ASCII characters without spaces"
        )
    return key


def _check_collaborators(
    rate_limit: object,
    retry: object,
    session: object,
    rate_limiter: object,
    max_connections: object,
) -> None:
    # Wrong types here would otherwise surface as a bare TypeError on the first request.
    expected = (
        ("rate_limit", rate_limit, RateLimit, "a RateLimit or None"),
        ("retry", retry, RetryPolicy, "a RetryPolicy or None"),
        ("session", session, aiohttp.ClientSession, "an aiohttp.ClientSession or None"),
        ("rate_limiter", rate_limiter, LimiterBackend, "a limiter backend or None"),
    )
    for name, value, kind, wanted in expected:
        if value is not None and not isinstance(value, kind):
            raise ConfigurationError(f"{name} must be {wanted}, not {type(value).__name__}")
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise ConfigurationError("max_connections must be a whole number")
    if max_connections < 1:
        raise ConfigurationError(f"max_connections must be 1 or more, got {max_connections}")


def _check_session_auth(session: aiohttp.ClientSession | None) -> None:
    # aiohttp refuses a request that has both an auth= and an Authorization header, so every
    # call on such a session would fail with a bare ValueError.
    if session is not None and session.auth is not None:
        raise ConfigurationError(
            "the aiohttp session passed as session= has auth= set; the client authenticates "
            "with its API key, so pass a session without auth"
        )


def _is_well_formed(key: str) -> bool:
    return (
        len("sk_test_") < len(key) <= MAX_KEY_LENGTH
        and key.isascii()
        and key.isprintable()
        and not any(c.isspace() for c in key)
    )


def _environment(key: str) -> Literal["test", "live"]:
    return "live" if key.startswith("sk_live_") else "test"


def _resolve_base_url(base_url: str | None, environment: str) -> str:
    url = base_url if base_url is not None else os.environ.get("CHATMAID_BASE_URL")
    url = (url or DEFAULT_BASE_URL).strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")].rstrip("/")

    parts = _split_base_url(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"base_url must be an http(s) URL, got {url!r}")
    if parts.query or parts.fragment:
        raise ConfigurationError("base_url must not carry a query or fragment")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            "base_url must not carry a user or password; the API key is the only credential"
        )
    if environment == "live" and parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            "refusing to send a live key over plain http to a remote host; use https"
        )
    return url


def _split_base_url(url: str) -> SplitResult:
    # A malformed host or port (an unclosed "[", a port past 65535) makes the parsers raise a
    # bare ValueError, urlsplit here or yarl on the first request (yarl reads the port only
    # when asked); the URL stays out of the message, as a pasted one may hold a credential.
    try:
        URL(url, encoded=True).port  # noqa: B018
        return urlsplit(url)
    except ValueError:
        raise ConfigurationError(
            "base_url is not a valid URL: check its host and port (an IPv6 host goes in "
            "brackets; a port is a number up to 65535)"
        ) from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _retry_policy(max_retries: int, like: RetryPolicy | None = None) -> RetryPolicy:
    try:
        if like is None:
            return RetryPolicy(max_retries=max_retries)
        return attrs.evolve(like, max_retries=max_retries)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _optional_positive(name: str, value: float | None) -> float | None:
    return None if value is None else _positive(name, value)


def _positive(name: str, value: float) -> float:
    valid = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not valid or not 0 < value < math.inf:
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)
