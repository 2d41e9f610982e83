"""The Redis backend: one client per event loop, the outage state, and one limiter per key.

Clients built from a URL are made lazily for each loop (redis.asyncio clients are loop-bound)
and closed with that loop or ``aclose()``; a client passed in is used as it is. The limiters
reach Redis only through this object, which tracks whether it answers.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from chatmaid_async._limits import RateLimit
from chatmaid_async._redis._health import (
    UNAVAILABLE_ERRORS,
    Health,
    OnUnavailable,
    Route,
    exc_name,
)
from chatmaid_async._redis._limiter import RedisLimiter, cancel_requests
from chatmaid_async._redis._options import (
    DEFAULT_GRACE,
    DEFAULT_LEASE,
    DEFAULT_PREFIX,
    DEFAULT_SOCKET_TIMEOUT,
    check_options,
    checked_url,
    describe_client,
    redact_url,
)
from chatmaid_async._redis._scripts import LUA_COMMON, SCRIPTS
from chatmaid_async.errors import ChatmaidError, RateLimiterUnavailableError

__all__ = ["RedisRateLimiter"]


class Connection:
    """The Redis client and scripts of one event loop (redis.asyncio clients are loop-bound)."""

    __slots__ = ("client", "closer", "scripts")

    def __init__(self, client: aioredis.Redis, *, owned: bool) -> None:
        self.client = client
        self.scripts = {
            name: client.register_script(LUA_COMMON + body) for name, body in SCRIPTS.items()
        }
        self.closer: AsyncGenerator[None, None] | None = close_with_loop(client) if owned else None


async def close_with_loop(client: aioredis.Redis) -> AsyncGenerator[None, None]:
    """Parked until its loop shuts down its async generators (``asyncio.run`` does), so a
    client built for a loop is closed before that loop goes."""
    try:
        yield
    finally:
        await client.aclose()


class RedisRateLimiter:
    """A :class:`~chatmaid_async._limits.LimiterBackend` that shares each key's budget in Redis.

    ``url_or_client`` is a ``redis://``, ``rediss://`` or ``unix://`` URL (a client is built
    lazily for each event loop that uses it and closed with that loop or :meth:`aclose`), or a
    ``redis.asyncio.Redis`` of yours, used as it is and never closed here.

    - ``prefix``: namespace of the Redis keys; a key's state lives under
      ``{prefix}{<fingerprint>}:live|ended|meta`` (a hash of the API key, never the key).
    - ``on_unavailable``: when Redis has not answered for ``grace`` seconds, ``"local"`` paces
      with this process's limiter for the key, so ``k`` processes may together send up to
      ``k * N`` per window until Redis answers; ``"fail"`` raises
      :class:`~chatmaid_async.errors.RateLimiterUnavailableError`.
    - ``lease``: how long a slot may stay in flight before Redis counts it as ended; keep it
      above the client's ``timeout``. A crashed process's slots free after ``lease + per``.
    - ``socket_timeout``: connect and read timeout of clients built from a URL.
    - ``restart_hold``: hold a key's first window after a Redis start (see the module notes);
      turn it off for a Redis that persists its data.

    Needs Redis 5 or later. Use one instance per process, shared by every client::

        async with RedisRateLimiter("redis://cache:6379/0") as backend:
            async with Chatmaid(rate_limiter=backend) as client:
                ...
    """

    def __init__(
        self,
        url_or_client: str | aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        on_unavailable: OnUnavailable = "local",
        lease: float = DEFAULT_LEASE,
        grace: float = DEFAULT_GRACE,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        restart_hold: bool = True,
    ) -> None:
        check_options(prefix, on_unavailable, lease, grace, socket_timeout)
        if isinstance(url_or_client, str):
            self._url: str | None = checked_url(url_or_client)
            self._given: aioredis.Redis | None = None
            self.location = redact_url(url_or_client)
        else:
            self._url, self._given = None, url_or_client
            self.location = describe_client(url_or_client)
        self.prefix = prefix
        self.on_unavailable = on_unavailable
        self.lease = float(lease)
        self.socket_timeout = float(socket_timeout)
        self.restart_hold = restart_hold

        self._clock = time.monotonic
        self._lock = threading.Lock()
        self._health = Health(self.location, on_unavailable, float(grace))
        self._connections: dict[asyncio.AbstractEventLoop, Connection] = {}
        self._limiters: weakref.WeakValueDictionary[tuple[str, RateLimit], RedisLimiter] = (
            weakref.WeakValueDictionary()
        )
        # Journal senders still running, kept so none is collected early.
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def limiter_for(self, fingerprint: str, rate_limit: RateLimit, *, name: str) -> RedisLimiter:
        """The shared limiter of the key with this fingerprint (one object per key and limit)."""
        with self._lock:
            limiter = self._limiters.get((fingerprint, rate_limit))
            if limiter is None:
                limiter = RedisLimiter(self, fingerprint, rate_limit, name=name)
                self._limiters[(fingerprint, rate_limit)] = limiter
            return limiter

    def keys_for(self, fingerprint: str) -> tuple[str, str, str]:
        """The Redis keys (live, ended, meta) holding the state of one key fingerprint."""
        base = f"{self.prefix}{{{fingerprint}}}"
        return f"{base}:live", f"{base}:ended", f"{base}:meta"

    async def connect(self) -> None:
        """Connect to Redis and load the scripts now, rather than on the first acquire.

        Optional; use it to find a wrong URL at startup. Raises
        :class:`~chatmaid_async.errors.RateLimiterUnavailableError` if Redis does not answer.
        """
        connection = await self._connection()
        try:
            for script in connection.scripts.values():
                await connection.client.script_load(script.script)
        except UNAVAILABLE_ERRORS as exc:
            msg = f"the Redis rate limiter at {self.location} did not answer ({exc_name(exc)})"
            raise RateLimiterUnavailableError(msg) from None

    async def aclose(self) -> None:
        """Close the backend: send what is pending and close the client of the running loop.

        Clients built for other loops close when their loop shuts down; a client passed in
        stays open. Closing twice is harmless; acquiring afterwards raises ``ChatmaidError``.
        """
        loop = asyncio.get_running_loop()
        while pending := [task for task in self._tasks if task.get_loop() is loop]:
            await asyncio.gather(*pending, return_exceptions=True)
        self._closed = True
        with self._lock:
            connection = self._connections.pop(loop, None)
        if connection is not None and connection.closer is not None:
            await connection.closer.aclose()

    async def __aenter__(self) -> RedisRateLimiter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        with self._lock:
            health = "closed" if self._closed else self._health.describe(self._clock())
            limiters = len(self._limiters)
        return (
            f"<RedisRateLimiter {self.location} prefix={self.prefix!r}"
            f" on_unavailable={self.on_unavailable} redis={health} limiters={limiters}>"
        )

    # The limiters' side of the backend.

    def _route(self) -> tuple[Route, float]:
        with self._lock:
            return self._health.route(self._clock())

    def _is_up(self) -> bool:
        with self._lock:
            return self._health.up

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._health.failed(self._clock(), exc)

    def _succeeded(self) -> None:
        with self._lock:
            self._health.succeeded(self._clock())

    def _unavailable_error(self) -> RateLimiterUnavailableError:
        return RateLimiterUnavailableError(
            f"the Redis rate limiter at {self.location} is not answering "
            f"({self._health.error or 'no reply'}) and on_unavailable='fail'; start Redis, "
            "or pass on_unavailable='local' to pace each process on its own meanwhile"
        )

    async def _run(self, script: str, keys: tuple[str, ...], args: list[str | float]) -> Any:
        connection = await self._connection()
        asked = cancel_requests()
        reply = await connection.scripts[script](keys=keys, args=args)

        # redis-py sends through asyncio.wait_for, which on Python 3.11 and older can return a
        # result and drop a cancellation that came at the same time (CPython gh-86296).
        if cancel_requests() > asked:
            raise asyncio.CancelledError
        return reply

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connection(self) -> Connection:
        if self._closed:
            raise ChatmaidError("this RedisRateLimiter is closed; create a new one")
        loop = asyncio.get_running_loop()
        with self._lock:
            connection = self._connections.get(loop)
            if connection is None:
                # A loop that has closed can never use its client again.
                for gone in [other for other in self._connections if other.is_closed()]:
                    del self._connections[gone]
                connection = self._connections[loop] = self._new_connection()
                fresh = True
            else:
                fresh = False

        # Running the closer up to its yield ties it to this loop's shutdown.
        if fresh and connection.closer is not None:
            await connection.closer.asend(None)
        return connection

    def _new_connection(self) -> Connection:
        if self._given is not None:
            return Connection(self._given, owned=False)
        assert self._url is not None
        client = aioredis.Redis.from_url(
            self._url,
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.socket_timeout,
            # One immediate retry on a fresh connection covers a pooled socket that died with
            # a restart; longer outages are ours to handle. Scripts are idempotent per slot.
            retry=Retry(NoBackoff(), 1),
        )
        return Connection(client, owned=True)
