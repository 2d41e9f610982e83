"""Local aiohttp servers that enforce a per-key rate limit, for pacing tests and benchmarks.

The real API's window model is undocumented (contract §7), so a server here plays one of:

- ``"fixed"``: at most ``limit`` per window of ``per`` seconds, windows starting at the key's
  first request;
- ``"sliding"``: at most ``limit`` in any trailing ``per`` seconds;
- ``"two_bucket"``: the approximate counter some gateways use: a request is admitted while the
  previous window's count, weighted by how much of it still overlaps the trailing window, plus
  the current count stays below ``limit``.

Keys are told apart by their ``Authorization`` header. Only accepted requests count against the
limit unless ``count_rejected=True``. Past the limit the answer is 429 with ``Retry-After`` and
the API's error envelope; otherwise 201 for ``POST /v1/messages/send`` (idempotency keys are
honoured) and 200 for GETs. Every arrival is recorded per key, for :meth:`max_in_window`::

    async with WindowServer(limit=20, per=0.5, model="sliding") as srv:
        ...  # requests to srv.url
        assert srv.rejected == 0
        assert srv.max_in_window(key) <= 20
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections import deque
from datetime import datetime, timezone
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, Protocol

from aiohttp import web

__all__ = [
    "Model",
    "WindowServer",
    "max_in_window",
    "utilization",
]

Model = Literal["fixed", "sliding", "two_bucket"]

ACCOUNT = {
    "accountId": "acc_1",
    "name": "n",
    "email": "e@x",
    "subscriptionStatus": "active",
    "stats": {"apiKeys": 1, "phoneNumbers": 1, "messages": 0},
}


class _Window(Protocol):
    def wait(self, now: float) -> float:
        """Seconds until a request may be accepted; 0 when it may be now."""
        ...

    def record(self, now: float) -> None:
        """Count a request against the limit."""
        ...


class _Sliding:
    def __init__(self, limit: int, per: float) -> None:
        self.limit, self.per = limit, per
        self.times: deque[float] = deque()

    def wait(self, now: float) -> float:
        while self.times and self.times[0] <= now - self.per:
            self.times.popleft()
        if len(self.times) < self.limit:
            return 0.0
        return self.times[-self.limit] + self.per - now

    def record(self, now: float) -> None:
        self.times.append(now)


class _Fixed:
    def __init__(self, limit: int, per: float) -> None:
        self.limit, self.per = limit, per
        self.first: float | None = None
        self.index = 0
        self.count = 0

    def wait(self, now: float) -> float:
        self._advance(now)
        if self.count < self.limit:
            return 0.0
        assert self.first is not None
        return self.first + (self.index + 1) * self.per - now

    def record(self, now: float) -> None:
        self._advance(now)
        self.count += 1

    def _advance(self, now: float) -> None:
        if self.first is None:
            self.first = now
        index = math.floor((now - self.first) / self.per)
        if index > self.index:
            self.index, self.count = index, 0


class _TwoBucket:
    def __init__(self, limit: int, per: float) -> None:
        self.limit, self.per = limit, per
        self.first: float | None = None
        self.counts: dict[int, int] = {}

    def wait(self, now: float) -> float:
        index, into = self._position(now)
        previous = self.counts.get(index - 1, 0) * (1 - into / self.per)
        if previous + self.counts.get(index, 0) < self.limit:
            return 0.0
        return self.per - into

    def record(self, now: float) -> None:
        index, _ = self._position(now)
        self.counts[index] = self.counts.get(index, 0) + 1
        for old in [k for k in self.counts if k < index - 1]:
            del self.counts[old]

    def _position(self, now: float) -> tuple[int, float]:
        if self.first is None:
            self.first = now
        index = math.floor((now - self.first) / self.per)
        return index, now - self.first - index * self.per


_MODELS: dict[str, type[_Sliding | _Fixed | _TwoBucket]] = {
    "sliding": _Sliding,
    "fixed": _Fixed,
    "two_bucket": _TwoBucket,
}


def max_in_window(times: list[float], per: float) -> int:
    """The most arrivals in any window ``(t - per, t]``."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, arrival in enumerate(ordered):
        while ordered[start] <= arrival - per:
            start += 1
        best = max(best, end - start + 1)
    return best


def utilization(times: list[float], limit: int, per: float) -> float:
    """The rate after the first ``limit`` requests, as a share of ``limit / per``.

    Measured from the ``limit``-th arrival, so a design that bursts first and one that spaces
    every request are judged on the same steady state; 1.0 means no time was wasted.
    """
    ordered = sorted(times)
    if len(ordered) <= limit:
        return math.nan
    span = ordered[-1] - ordered[limit - 1]
    if span <= 0:
        return math.inf
    return (len(ordered) - limit) / span / (limit / per)


class WindowServer:
    """A local API server that enforces ``limit`` requests per ``per`` seconds per key.

    ``jitter`` delays each request by up to that many seconds before the server "sees" it (a
    slow network on the way in); ``latency`` delays every answer (on the way out).
    """

    def __init__(
        self,
        limit: int,
        per: float,
        model: Model = "sliding",
        *,
        count_rejected: bool = False,
        jitter: float = 0.0,
        latency: float = 0.0,
        seed: int = 0,
    ) -> None:
        if model not in _MODELS:
            raise ValueError(f"model must be one of {sorted(_MODELS)}, got {model!r}")
        self.limit, self.per, self.model = limit, per, model
        self.count_rejected = count_rejected
        self.jitter, self.latency = jitter, latency
        self._random = random.Random(seed)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.reset()

    def reset(self) -> None:
        """Forget every key's window and every record."""
        self._windows: dict[str, _Window] = {}
        self._arrivals: dict[str, list[float]] = {}
        self._accepted: dict[str, list[float]] = {}
        self._rejected: dict[str, int] = {}
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.messages: list[dict[str, Any]] = []
        self.idempotency_keys: list[str | None] = []
        self._ids = itertools.count(1)

    @property
    def rejected(self) -> int:
        """429s answered, all keys together."""
        return sum(self._rejected.values())

    @property
    def accepted(self) -> int:
        """Requests admitted, all keys together."""
        return sum(len(times) for times in self._accepted.values())

    @property
    def keys(self) -> list[str]:
        """Every API key seen, in order of first arrival."""
        return list(self._arrivals)

    def arrivals(self, key: str) -> list[float]:
        """Monotonic times at which the server saw each request of ``key``, 429s included."""
        return list(self._arrivals.get(key, []))

    def accepted_arrivals(self, key: str) -> list[float]:
        """Monotonic times of the requests of ``key`` that were admitted."""
        return list(self._accepted.get(key, []))

    def rejected_for(self, key: str) -> int:
        """429s answered to ``key``."""
        return self._rejected.get(key, 0)

    def max_in_window(self, key: str | None = None, per: float | None = None) -> int:
        """The most requests (429s included) of ``key``, or of the busiest key, in any window."""
        per = self.per if per is None else per
        keys = [key] if key is not None else list(self._arrivals)
        return max((max_in_window(self._arrivals.get(k, []), per) for k in keys), default=0)

    def utilization(self, key: str) -> float:
        """:func:`utilization` of the admitted requests of ``key``."""
        return utilization(self._accepted.get(key, []), self.limit, self.per)

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1 and set :attr:`url`."""
        app = web.Application(middlewares=[self._limit_middleware])
        app.router.add_post("/v1/messages/send", self._send)
        app.router.add_get("/v1/account", self._account)
        app.router.add_get("/v1/{tail:.*}", self._any_get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> WindowServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @web.middleware
    async def _limit_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        key = _bearer(request.headers.get("Authorization", ""))
        if key is None:
            return _error(HTTPStatus.UNAUTHORIZED, "Unauthorized", "Invalid API key")

        # The way in: the server sees the request only after the network delay.
        if self.jitter:
            await asyncio.sleep(self._random.uniform(0, self.jitter))
        now = time.monotonic()
        wait = self._admit(key, now)
        response = await handler(request) if wait == 0 else _too_many(wait)

        # The way out.
        if self.latency:
            await asyncio.sleep(self.latency)
        return response

    def _admit(self, key: str, now: float) -> float:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = _MODELS[self.model](self.limit, self.per)
        self._arrivals.setdefault(key, []).append(now)

        wait = window.wait(now)
        if wait == 0:
            window.record(now)
            self._accepted.setdefault(key, []).append(now)
            return 0.0
        if self.count_rejected:
            window.record(now)
        self._rejected[key] = self._rejected.get(key, 0) + 1
        return max(wait, 1e-9)

    async def _send(self, request: web.Request) -> web.Response:
        key = _bearer(request.headers["Authorization"]) or ""
        body = await request.json()
        idempotency_key = body.get("idempotencyKey")
        self.idempotency_keys.append(idempotency_key)

        # A repeated idempotency key returns the original message, as the API documents.
        if idempotency_key is not None and (key, idempotency_key) in self._messages:
            message = self._messages[(key, idempotency_key)]
        else:
            message = self._new_message(body)
            self.messages.append(message)
            if idempotency_key is not None:
                self._messages[(key, idempotency_key)] = message
        return web.json_response({"success": True, "data": message}, status=HTTPStatus.CREATED)

    def _new_message(self, body: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {
            "id": f"msg_{next(self._ids):012d}",
            "from": body.get("fromPhoneId"),
            "to": body.get("to"),
            "content": body.get("content"),
            "mediaUrls": body.get("mediaUrls") or [],
            "environment": "test",
            "status": "sent",
            "createdAt": stamp,
            "sentAt": stamp,
            "deliveredAt": None,
            "readAt": None,
            "failedAt": None,
            "errorCode": None,
            "errorMessage": None,
        }

    async def _account(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, "data": ACCOUNT})

    async def _any_get(self, request: web.Request) -> web.Response:
        return web.json_response({"success": True, "data": {}})

    def __repr__(self) -> str:
        return (
            f"<WindowServer {self.model} {self.limit}/{self.per:g}s {self.url or 'stopped'}"
            f" accepted={self.accepted} rejected={self.rejected}>"
        )


def _bearer(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _retry_after(wait: float) -> int:
    # Whole seconds, never 0; milliseconds first so float noise does not add a second.
    return max(1, math.ceil(round(wait, 3)))


def _too_many(wait: float) -> web.Response:
    retry_after = _retry_after(wait)
    body = {
        "success": False,
        "error": "Too Many Requests",
        "message": ["Rate limit exceeded"],
        "statusCode": HTTPStatus.TOO_MANY_REQUESTS,
        "retryAfter": retry_after,
    }
    return web.json_response(
        body, status=HTTPStatus.TOO_MANY_REQUESTS, headers={"Retry-After": str(retry_after)}
    )


def _error(status: HTTPStatus, error: str, message: str) -> web.Response:
    body = {"success": False, "error": error, "message": [message], "statusCode": status}
    return web.json_response(body, status=status)
