"""One rate limit per API key, shared by every process and host on a Redis server.

``Chatmaid(..., rate_limiter=RedisRateLimiter("redis://127.0.0.1:6379/0"))`` keeps the
in-process limiter's guarantee across machines: at most N attempts start in any window of
``per`` seconds, each slot counting from its grant until its attempt ends plus one window.

- State: per key, three Redis keys named by the key's fingerprint (hash-tagged: one Cluster
  slot): ``live`` (slots in flight, by lease deadline), ``ended`` (by end of attempt) and
  ``meta`` (hold, last grant). Two Lua scripts, acquire and release, read Redis' clock
  (``TIME``), so host clocks never matter, and set the keys to expire once nothing counts.
- Leases: a slot in flight past ``lease`` seconds (above the client's attempt timeout) counts
  as ended at its deadline, so a crashed process frees its slots after ``lease + per``.
- Round trips: in a process, only the first waiter of a key (per loop) calls Redis, for the
  whole line at once. A slot that frees within 50 ms is granted ahead and starts when it
  frees; otherwise the waiter sleeps as the script says (polls at 1/50 of the window while
  every slot is in flight). Releases are stamped when the attempt ends and sent in the
  background, batched; until Redis hears one, its slot only counts longer. A 429 hold rides
  the same way and holds this process at once.
- Outages: a Redis that stops answering gets ``grace`` seconds while acquires wait; then
  ``on_unavailable`` applies: ``"fail"`` raises, ``"local"`` paces with this process's
  limiter for the key (one WARNING). Probes with backoff return to Redis, carrying what it
  missed (releases, holds, local slots). A key state created less than a window after Redis
  started is held until then: a restart may have dropped slots that still count.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Coroutine, Sequence
from itertools import islice
from typing import Any, Literal
from urllib.parse import urlsplit

try:
    import redis.asyncio as aioredis
    from redis import exceptions as redis_errors
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    msg = (
        "chatmaid_async.redis_limiter needs redis-py's asyncio client: "
        'pip install "chatmaid-async[redis]"'
    )
    raise ImportError(msg, name="redis") from exc

from chatmaid_async import _limiter
from chatmaid_async._limiter import SlidingWindowLimiter
from chatmaid_async._limits import Permit, RateLimit
from chatmaid_async.errors import ChatmaidError, ConfigurationError, RateLimiterUnavailableError

__all__ = ["RedisLimiter", "RedisPermit", "RedisRateLimiter", "redact_url"]

logger = logging.getLogger("chatmaid_async.limiter.redis")

OnUnavailable = Literal["local", "fail"]
_Route = Literal["redis", "wait", "local", "raise"]

DEFAULT_PREFIX = "chatmaid:rl:"
# Twice the client's default attempt timeout (30 s): a slot in flight longer than this counts
# as ended at its lease deadline.
DEFAULT_LEASE = 60.0
# Long enough for a Redis restart, short enough that a dead Redis is noticed quickly.
DEFAULT_GRACE = 1.0
# Connect and read timeout of the clients built from a URL.
DEFAULT_SOCKET_TIMEOUT = 1.0
# With every slot in flight, a waiter looks again after this share of the window...
POLL_SHARE = 0.02
# ...within these bounds, in seconds.
POLL_MIN, POLL_MAX = 0.002, 0.25
# While Redis is unavailable, the next probe comes after half the outage so far, within these.
PROBE_MIN, PROBE_MAX = 0.05, 5.0
# Journal entries sent in one call.
REPLAY_BATCH = 256
# Slots one acquire call may ask for, for the waiters queued in one process.
MAX_BATCH = 64
# A slot that frees within this many seconds (at most this share of the window) is granted
# ahead, to start when it frees: the round trip to Redis then costs no time at the API.
GRANT_AHEAD, GRANT_AHEAD_SHARE = 0.05, 0.1

# Errors meaning "Redis did not answer" (connection, timeout, auth, loading, replica, OOM),
# as opposed to a bug that must surface.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    OSError,
)

# Shared by the two scripts. KEYS: live, ended, meta. Times in milliseconds of Redis' clock.
_LUA_COMMON = """
local live, ended, meta = KEYS[1], KEYS[2], KEYS[3]

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

-- The key's hold-until and last grant. A state created within a window of the server's start
-- may have lost slots that still count (a restart without persistence): it starts held until
-- one window after the start.
local function open(now, per, guard)
  local saved = redis.call('HMGET', meta, 'hold', 'last')
  if saved[1] then return tonumber(saved[1]), tonumber(saved[2]) or -math.huge end
  local hold = 0
  if guard == '1' then
    local info = redis.call('INFO', 'server')
    local up = tonumber(string.match(info, 'uptime_in_seconds:(%d+)')) or 0
    hold = now - up * 1000 + per
  end
  redis.call('HSET', meta, 'hold', hold)
  return hold, -math.huge
end

-- Ends and give-backs from ARGV[first] on, as (slot, age) pairs: a slot whose attempt ended
-- age ms ago (by the caller's clock, so never earlier than it really did) counts from then;
-- age -1 gives the slot back. Then a hold of ``pending`` ms from now, if longer.
local function replay(now, first, hold, pending)
  for i = first, #ARGV - 1, 2 do
    local slot, age = ARGV[i], tonumber(ARGV[i + 1])
    redis.call('ZREM', live, slot)
    if age >= 0 then
      redis.call('ZADD', ended, now - age, slot)
    else
      redis.call('ZREM', ended, slot)
    end
  end
  if pending > 0 and now + pending > hold then
    hold = now + pending
    redis.call('HSET', meta, 'hold', hold)
  end
  return hold
end

-- Slots past their lease count as ended at the deadline; ended slots leave after a window.
local function expire(now, per)
  local lapsed = redis.call('ZRANGEBYSCORE', live, '-inf', now, 'WITHSCORES')
  if #lapsed > 0 then
    for i = 1, #lapsed, 2 do
      redis.call('ZADD', ended, lapsed[i + 1], lapsed[i])
    end
    redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
  end
  redis.call('ZREMRANGEBYSCORE', ended, '-inf', now - per)
end

local function latest(key)
  local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  return tonumber(top[2]) or -math.huge
end

-- Keep the keys exactly as long as something in them still counts: a slot, the hold, or the
-- spacing after the last grant (``until``).
local function settle(now, per, until_)
  local horizon = math.max(latest(live) + per, latest(ended) + per, until_)
  local ttl = math.ceil(horizon - now)
  if ttl > 0 then
    for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ttl) end
  else
    redis.call('DEL', live, ended, meta)
  end
end
"""

# ARGV: slot prefix, slots wanted, limit, per, lease, spacing, pending hold, guard, reach,
# then (slot, age or -1) pairs as for replay(). Grants slots "<prefix>:1" to
# "<prefix>:<granted>", each starting now or, if its slot frees within ``reach`` ms, when it
# does. Returns {granted, wait in microseconds before asking again (-1: only a release can
# free a slot), slots counted, then each grant's delay in microseconds}.
_LUA_ACQUIRE = """
local now = clock()
local wanted, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local per, lease, spacing = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local hold, last = open(now, per, ARGV[8])
hold = replay(now, 10, hold, tonumber(ARGV[7]))
expire(now, per)

-- The m-th grant needs (used + m - limit) ended slots out of the window, oldest first: it
-- may start once the last of them leaves (slots in flight leave only on release).
local used = redis.call('ZCARD', live) + redis.call('ZCARD', ended)
local at, reach = math.max(now, hold, last + spacing), now + tonumber(ARGV[9])
local needed = used + wanted - limit
local ends = needed > 0 and redis.call('ZRANGE', ended, 0, needed - 1, 'WITHSCORES') or {}
local slots, delays, wait = {}, {}, -1
for m = 1, wanted do
  local start, need = at, used + m - limit
  if need > 0 then
    if not ends[2 * need] then break end
    start = math.max(start, tonumber(ends[2 * need]) + per)
  end
  if start > reach then
    wait = start - now
    break
  end
  slots[#slots + 1] = start + lease
  slots[#slots + 1] = ARGV[1] .. ':' .. m
  delays[#delays + 1] = math.ceil((start - now) * 1000)
  last, at = start, math.max(at, start + spacing)
end

if #delays > 0 then
  redis.call('ZADD', live, unpack(slots))
  redis.call('HSET', meta, 'last', last)
end
settle(now, per, math.max(hold, last + spacing))
local reply = {#delays, wait < 0 and -1 or math.ceil(wait * 1000), used + #delays}
for _, delay in ipairs(delays) do reply[#reply + 1] = delay end
return reply
"""

# ARGV: per, spacing, guard, pending hold, then (slot, age or -1) pairs as for replay().
_LUA_RELEASE = """
local now = clock()
local per, spacing = tonumber(ARGV[1]), tonumber(ARGV[2])
local hold, last = open(now, per, ARGV[3])
hold = replay(now, 5, hold, tonumber(ARGV[4]))
expire(now, per)
settle(now, per, math.max(hold, last + spacing))
return 1
"""

_SCRIPTS = {"acquire": _LUA_ACQUIRE, "release": _LUA_RELEASE}


def redact_url(url: str) -> str:
    """A Redis URL fit for logs: credentials become ``***`` and a query string ``?…``."""
    parts = urlsplit(url)
    _, at, host = parts.netloc.rpartition("@")
    netloc = f"***@{host}" if at else host
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{shown}?…" if parts.query else shown


class _Health:
    """Whether Redis answers, and where an acquire goes when it does not.

    No I/O and no clock: the backend passes ``now`` (monotonic seconds) in, under its lock.
    Logs one WARNING when an outage outlasts ``grace`` and one INFO when it ends.
    """

    def __init__(self, location: str, policy: OnUnavailable, grace: float) -> None:
        self.location = location
        self.policy = policy
        self.grace = grace
        self.down_since: float | None = None
        self.declared = False
        self.next_try = 0.0
        self.error = ""

    @property
    def up(self) -> bool:
        """True unless the last call to Redis failed."""
        return self.down_since is None

    def route(self, now: float) -> tuple[_Route, float]:
        """Where the next acquire goes, and for ``"wait"`` how long to wait first."""
        if self.down_since is None:
            return "redis", 0.0

        # Claim the probe, so the acquires behind this one do not all try at once.
        if now >= self.next_try:
            self.next_try = now + self._backoff(now)
            return "redis", 0.0

        grace_ends = self.down_since + self.grace
        if not self.declared and now < grace_ends:
            return "wait", min(self.next_try, grace_ends) - now
        self._declare(now)
        return ("local" if self.policy == "local" else "raise"), 0.0

    def failed(self, now: float, exc: BaseException) -> None:
        """A call to Redis went unanswered."""
        self.error = _exc_name(exc)
        if self.down_since is None:
            self.down_since = now
        self.next_try = now + self._backoff(now)
        if now >= self.down_since + self.grace:
            self._declare(now)

    def succeeded(self, now: float) -> None:
        """Redis answered."""
        if self.down_since is None:
            return
        if self.declared:
            logger.info(
                "Redis rate limiter at %s answers again after %.1f s; pacing is shared again",
                self.location,
                now - self.down_since,
            )
        self.down_since = None
        self.declared = False

    def describe(self, now: float) -> str:
        """``up``, ``suspect 0.3s`` (within grace) or ``down 4.2s``, for ``repr``."""
        if self.down_since is None:
            return "up"
        state = "down" if self.declared else "suspect"
        return f"{state} {now - self.down_since:.1f}s"

    def _backoff(self, now: float) -> float:
        outage = 0.0 if self.down_since is None else now - self.down_since
        return min(max(outage / 2, PROBE_MIN), PROBE_MAX)

    def _declare(self, now: float) -> None:
        if self.declared:
            return
        self.declared = True
        then = (
            "pacing each process on its own until it answers"
            if self.policy == "local"
            else "acquires raise RateLimiterUnavailableError until it answers"
        )
        logger.warning(
            "Redis rate limiter at %s unavailable for %.1f s (%s); %s",
            self.location,
            now - (self.down_since or now),
            self.error,
            then,
        )


Entry = tuple[str, float, bool]
NO_HOLD = float("-inf")


class _Journal:
    """What Redis has not heard yet from this process about one key.

    Releases (sent by a background task, or by the next acquire if it goes first), slots an
    interrupted acquire may have taken, slots granted locally during an outage, and a hold.
    Whatever a call carries is marked in flight so no other call sends it twice; it is
    forgotten once Redis answers and offered again if it does not. Entries too old to count
    any more are dropped, so an outage never lets Redis undercount and never grows this.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # slot -> (when recorded, sent); sent slots count from that time, others are given back.
        self._slots: dict[str, tuple[float, bool]] = {}
        self._in_flight: set[str] = set()
        # Filled without the lock by permits collected unreleased; adopted under it.
        self._orphans: deque[tuple[str, float]] = deque()
        self._hold_until = NO_HOLD
        self._hold_in_flight = NO_HOLD

    def __len__(self) -> int:
        return len(self._slots) + len(self._orphans) + (self._hold_until > NO_HOLD)

    @property
    def hold_until(self) -> float:
        """The hold Redis has not confirmed yet (monotonic time), or ``NO_HOLD``."""
        return self._hold_until

    def has_news(self) -> bool:
        """True if something is neither confirmed nor in flight."""
        with self._lock:
            fresh_hold = self._hold_until > NO_HOLD and self._hold_until != self._hold_in_flight
            return bool(self._orphans) or fresh_hold or len(self._slots) > len(self._in_flight)

    def record(self, slot: str, at: float, *, sent: bool) -> None:
        """Remember that ``slot`` ended at ``at`` (``sent``) or must be given back."""
        with self._lock:
            self._slots[slot] = (at, sent)

    def give_back(self, slots: list[str], at: float) -> None:
        """Remember slots an interrupted acquire may have taken, to return them."""
        with self._lock:
            for slot in slots:
                self._slots[slot] = (at, False)

    def record_orphan(self, slot: str, at: float) -> None:
        """Like :meth:`record` for a sent slot, safe in ``__del__`` (no lock)."""
        self._orphans.append((slot, at))

    def hold(self, until: float) -> None:
        """Remember a hold Redis has not heard yet."""
        with self._lock:
            self._hold_until = max(self._hold_until, until)

    def take(self, now: float, horizon: float) -> tuple[list[Entry], float]:
        """Entries and hold to send now, marked in flight; drops entries older than
        ``horizon`` seconds first. The hold is ``NO_HOLD`` if none is due."""
        with self._lock:
            while self._orphans:
                slot, at = self._orphans.popleft()
                self._slots[slot] = (at, True)
            for slot in [s for s, (at, _) in self._slots.items() if now - at > horizon]:
                del self._slots[slot]
                self._in_flight.discard(slot)

            unsent = (s for s in self._slots if s not in self._in_flight)
            entries = [(slot, *self._slots[slot]) for slot in islice(unsent, REPLAY_BATCH)]
            self._in_flight.update(slot for slot, _, _ in entries)
            hold = NO_HOLD if self._hold_until == self._hold_in_flight else self._hold_until
            if hold > NO_HOLD:
                self._hold_in_flight = hold
            return entries, hold

    def delivered(self, entries: list[Entry], hold: float) -> None:
        """Redis has heard these: forget them (unless recorded again meanwhile)."""
        with self._lock:
            for slot, at, sent in entries:
                self._in_flight.discard(slot)
                if self._slots.get(slot) == (at, sent):
                    del self._slots[slot]
            if hold > NO_HOLD and self._hold_until == hold:
                self._hold_until = self._hold_in_flight = NO_HOLD

    def returned(self, entries: list[Entry], hold: float) -> None:
        """Redis may not have heard these: offer them again."""
        with self._lock:
            for slot, _, _ in entries:
                self._in_flight.discard(slot)
            if hold > NO_HOLD and self._hold_in_flight == hold:
                self._hold_in_flight = NO_HOLD


class _Line:
    """The queue of one key's waiters in one event loop; only its head talks to Redis.

    The head asks for a slot for every waiter in line (up to ``MAX_BATCH``) in one call and
    hands them out in order, so a burst costs a round trip per process, not per request.
    Waiters wait on a future that gets their permit, or None when they become the head.
    """

    __slots__ = ("_timer", "_woken", "flushing", "loop", "polling", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiters: deque[asyncio.Future[Permit | None]] = deque()
        # True while the head waits without knowing when a slot frees (all slots in flight).
        self.polling = False
        # True while a task of this loop sends the journal to Redis.
        self.flushing = False
        self._timer: asyncio.Future[None] | None = None
        self._woken = False

    def join(self) -> asyncio.Future[Permit | None]:
        """Queue up; the caller heads the line if its future is ``waiters[0]``."""
        future: asyncio.Future[Permit | None] = self.loop.create_future()
        self.waiters.append(future)
        return future

    def hand_out(self, permits: Sequence[Permit]) -> tuple[Permit, list[Permit]]:
        """The head's own permit, after handing the rest down the line; returns any spare."""
        self.waiters.popleft()
        spare = list(permits[1:])
        while spare and self.waiters:
            future = self.waiters.popleft()
            # A waiter cancelled since the call was sent takes no permit.
            if not future.done():
                future.set_result(spare.pop(0))
        self._promote()
        return permits[0], spare

    def leave(self, future: asyncio.Future[Permit | None]) -> Permit | None:
        """Take a failed or cancelled waiter out of line; returns a permit it was handed."""
        was_head = bool(self.waiters) and self.waiters[0] is future
        with contextlib.suppress(ValueError):
            self.waiters.remove(future)
        handed = None
        if future.done() and not future.cancelled():
            handed = future.result()
            # Made head but gone before taking over: the next one must.
            was_head = was_head or handed is None
        if was_head:
            self._promote()
        return handed

    async def sleep(self, delay: float) -> None:
        """The head sleeps ``delay`` seconds or until :meth:`wake`, whichever comes first."""
        if self._woken:
            self._woken = False
            return
        timer = self._timer = self.loop.create_future()
        handle = self.loop.call_later(delay, _resolve, timer)
        try:
            await timer
        finally:
            handle.cancel()
            self._timer = None
            self._woken = False

    def wake(self) -> None:
        """Cut the head's sleep short (a local release may have freed a slot); thread-safe."""
        timer = self._timer
        if timer is None:
            # The head is talking to Redis: it must look again rather than sleep.
            self._woken = True
            return
        if _running_loop() is self.loop:
            _resolve(timer)
            return
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_resolve, timer)

    def _promote(self) -> None:
        while self.waiters and self.waiters[0].cancelled():
            self.waiters.popleft()
        if self.waiters and not self.waiters[0].done():
            self.waiters[0].set_result(None)


class _Connection:
    """The Redis client and scripts of one event loop (redis.asyncio clients are loop-bound)."""

    __slots__ = ("client", "closer", "scripts")

    def __init__(self, client: aioredis.Redis, *, owned: bool) -> None:
        self.client = client
        self.scripts = {
            name: client.register_script(_LUA_COMMON + body) for name, body in _SCRIPTS.items()
        }
        self.closer: AsyncGenerator[None, None] | None = (
            _close_with_loop(client) if owned else None
        )


async def _close_with_loop(client: aioredis.Redis) -> AsyncGenerator[None, None]:
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
        _check_options(prefix, on_unavailable, lease, grace, socket_timeout)
        if isinstance(url_or_client, str):
            self._url: str | None = _checked_url(url_or_client)
            self._given: aioredis.Redis | None = None
            self.location = redact_url(url_or_client)
        else:
            self._url, self._given = None, url_or_client
            self.location = _describe_client(url_or_client)
        self.prefix = prefix
        self.on_unavailable = on_unavailable
        self.lease = float(lease)
        self.socket_timeout = float(socket_timeout)
        self.restart_hold = restart_hold

        self._clock = time.monotonic
        self._lock = threading.Lock()
        self._health = _Health(self.location, on_unavailable, float(grace))
        self._connections: dict[asyncio.AbstractEventLoop, _Connection] = {}
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
            msg = f"the Redis rate limiter at {self.location} did not answer ({_exc_name(exc)})"
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

    def _route(self) -> tuple[_Route, float]:
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
        asked = _cancel_requests()
        reply = await connection.scripts[script](keys=keys, args=args)

        # redis-py sends through asyncio.wait_for, which on Python 3.11 and older can return a
        # result and drop a cancellation that came at the same time (CPython gh-86296).
        if _cancel_requests() > asked:
            raise asyncio.CancelledError
        return reply

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connection(self) -> _Connection:
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

    def _new_connection(self) -> _Connection:
        if self._given is not None:
            return _Connection(self._given, owned=False)
        assert self._url is not None
        client = aioredis.Redis.from_url(
            self._url,
            socket_timeout=self.socket_timeout,
            socket_connect_timeout=self.socket_timeout,
            # One immediate retry on a fresh connection covers a pooled socket that died with
            # a restart; longer outages are ours to handle. Scripts are idempotent per slot.
            retry=Retry(NoBackoff(), 1),
        )
        return _Connection(client, owned=True)


class RedisLimiter:
    """The Redis-shared limiter of one key, from :meth:`RedisRateLimiter.limiter_for`.

    ``acquire()`` waits for a slot that every process on the key respects and returns a
    permit; cancelling the wait takes no slot. ``hold(seconds)`` pauses the key everywhere.
    ``name`` (a redacted key) appears in logs and ``repr``; the key itself is never held.
    """

    def __init__(
        self, backend: RedisRateLimiter, fingerprint: str, rate_limit: RateLimit, *, name: str
    ) -> None:
        self.rate_limit = rate_limit
        self.name = name
        self._fingerprint = fingerprint
        self._backend = backend
        self._keys = backend.keys_for(fingerprint)
        self._lock = threading.Lock()
        self._lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Line] = (
            weakref.WeakKeyDictionary()
        )
        self._journal = _Journal()
        self._local: SlidingWindowLimiter | None = None
        # Slots Redis counted at its last answer, and where the last slot came from.
        self._counted: int | None = None
        self._source = "none"

    async def acquire(self) -> Permit:
        """Wait for a free slot on the key, across every process, and return it.

        FIFO within a process and event loop. Cancelling the wait takes no slot. Raises
        :class:`~chatmaid_async.errors.RateLimiterUnavailableError` when Redis is unavailable
        and the backend's ``on_unavailable`` is ``"fail"``.
        """
        line = self._line()
        future = line.join()
        try:
            permit = await future if line.waiters[0] is not future else None
            if permit is None:
                permit = await self._lead(line)
        except BaseException:
            handed = line.leave(future)
            if handed is not None:
                await self._return_spare([handed])
            raise

        # A slot granted ahead starts when the slot it replaces leaves the window.
        if isinstance(permit, RedisPermit) and permit.not_before > self._backend._clock():
            try:
                await asyncio.sleep(permit.not_before - self._backend._clock())
            except BaseException:
                await self._return_spare([permit])
                raise
        return permit

    async def hold(self, seconds: float) -> None:
        """Grant no slot on this key, in any process, for ``seconds``; never shortens a hold.

        This process holds at once; the others as soon as Redis hears it (one round trip, sent
        in the background together with pending releases).
        """
        if not seconds > 0:
            return
        backend = self._backend
        self._journal.hold(backend._clock() + seconds)
        if backend._is_up():
            await self._flush_soon()
        else:
            await self._local_limiter().hold(seconds)

    def __repr__(self) -> str:
        limit = self.rate_limit
        counted = "?" if self._counted is None else str(self._counted)
        with self._lock:
            waiters = sum(len(line.waiters) for line in self._lines.values())
        return (
            f"<RedisLimiter {self.name or '?'} {limit.requests}/{limit.per:g}s"
            f" on {self._backend.location} counted={counted} waiters={waiters}"
            f" last_slot={self._source} unreported={len(self._journal)}>"
        )

    async def _lead(self, line: _Line) -> Permit:
        """As head of the line: get slots for it, hand them out, return the head's own."""
        while True:
            route, wait = self._backend._route()
            if route == "redis":
                outcome = await self._try_redis(line)
                if isinstance(outcome, list):
                    own, spare = line.hand_out(outcome)
                    if spare:
                        await self._return_spare(spare)
                    return own
                if outcome is not None:
                    await line.sleep(outcome)
            elif route == "wait":
                await line.sleep(wait)
            elif route == "local":
                return line.hand_out([await self._acquire_local()])[0]
            else:
                raise self._backend._unavailable_error()

    async def _try_redis(self, line: _Line) -> list[RedisPermit] | float | None:
        """One acquire script: permits, seconds to sleep, or None if Redis did not answer."""
        backend = self._backend
        wanted = min(len(line.waiters), MAX_BATCH)
        prefix = _new_slot()
        slots = [f"{prefix}:{n}" for n in range(1, wanted + 1)]
        now = backend._clock()
        entries, _ = self._journal.take(now, self.rate_limit.per + backend.lease)
        # A hold counts for this process at once, even while a release call carries it.
        hold = self._journal.hold_until
        args = self._acquire_args(prefix, wanted, now, entries, hold)
        try:
            reply = await backend._run("acquire", self._keys, args)
        except UNAVAILABLE_ERRORS as exc:
            # The script may have run before the reply was lost: give the slots back later.
            self._journal.returned(entries, hold)
            self._journal.give_back(slots, now)
            backend._failed(exc)
            return None
        except BaseException:
            # Interrupted (usually cancelled) mid-call: give back slots it may have taken.
            self._journal.returned(entries, hold)
            await self._return_slots(slots)
            raise

        received = backend._clock()
        self._journal.delivered(entries, hold)
        backend._succeeded()
        granted, wait_us, counted, *delays = (int(value) for value in reply)
        self._counted = counted
        if granted:
            self._source = "redis"
            # The delays run from the script's clock reading, which came before ``received``.
            return [
                RedisPermit(self, slot, not_before=received + delay / 1e6)
                for slot, delay in zip(slots[:granted], delays, strict=True)
            ]
        line.polling = wait_us < 0
        if wait_us < 0:
            return self._poll_interval()
        # Ask again once the slot is within reach, and have it granted ahead.
        return max(wait_us / 1e6 - self._reach() / 2, 0.0)

    def _acquire_args(
        self,
        prefix: str,
        wanted: int,
        now: float,
        entries: list[Entry],
        hold: float,
    ) -> list[str | float]:
        limit = self.rate_limit
        args: list[str | float] = [
            prefix,
            wanted,
            limit.requests,
            _ms(limit.per),
            _ms(self._backend.lease),
            _ms(limit.min_spacing),
            _ms(max(0.0, hold - now)),
            self._guard(),
            _ms(self._reach()),
        ]
        return args + _replay_args(entries, now)

    async def _acquire_local(self) -> Permit:
        local = self._local_limiter()

        # A hold Redis never heard of still applies here.
        held = self._journal.hold_until - self._backend._clock()
        if held > 0:
            await local.hold(held)
        permit = await local.acquire()
        self._source = "local"
        return _LocalPermit(self, permit)

    async def _release(self, slot: str, *, sent: bool) -> None:
        # Stamped now, sent in the background: until Redis hears it, the slot stays in flight
        # there, which only ever counts it longer.
        self._journal.record(slot, self._backend._clock(), sent=sent)
        await self._flush_soon()

    async def _return_slots(self, slots: list[str]) -> None:
        """Give back slots no waiter took, or that an interrupted call may have taken."""
        self._journal.give_back(slots, self._backend._clock())
        await self._flush_soon()

    async def _return_spare(self, spare: Sequence[Permit]) -> None:
        """Give back permits granted but never used (all in one call)."""
        slots = []
        for permit in spare:
            if isinstance(permit, RedisPermit):
                permit._released = True
                slots.append(permit._slot)
            else:
                await permit.release(sent=False)
        if slots:
            await self._return_slots(slots)

    async def _flush_soon(self) -> None:
        """Have the journal sent: by a task of its own, or inline by a task being cancelled."""
        backend = self._backend
        line = self._line()
        if line.flushing or backend._closed or not backend._is_up():
            return
        line.flushing = True

        # One sender per loop: what piles up meanwhile goes out together. A task being
        # cancelled (perhaps by the loop's shutdown) sends it itself, since a task spawned
        # now could outlive the loop.
        if _cancel_requests():
            await self._flush(line)
        else:
            backend._spawn(self._flush(line))

    async def _flush(self, line: _Line) -> None:
        """Send the journal to Redis until it has no news or Redis stops answering."""
        backend = self._backend
        try:
            while self._journal.has_news():
                now = backend._clock()
                entries, hold = self._journal.take(now, self.rate_limit.per + backend.lease)
                args = [
                    *self._window_args(),
                    _ms(max(0.0, hold - now)),
                    *_replay_args(entries, now),
                ]
                try:
                    await backend._run("release", self._keys, args)
                except BaseException as exc:
                    # The next acquire carries them instead.
                    self._journal.returned(entries, hold)
                    if isinstance(exc, UNAVAILABLE_ERRORS):
                        backend._failed(exc)
                        return
                    if not isinstance(exc, Exception):
                        raise
                    # Nobody awaits this task: log, and let the next acquire surface a bug.
                    logger.warning("limiter %s: releases not sent (%s)", self.name, _exc_name(exc))
                    return
                self._journal.delivered(entries, hold)
                self._wake(sent=all(sent for _, _, sent in entries))
        finally:
            line.flushing = False

    def _wake(self, *, sent: bool) -> None:
        # A sent slot frees nothing before a window passes, unless the head has no timer.
        with self._lock:
            lines = list(self._lines.values())
        for line in lines:
            if not sent or line.polling:
                line.wake()

    def _local_limiter(self) -> SlidingWindowLimiter:
        # The one clients without a backend use for this key, so they share its budget;
        # holding it keeps the registry handing out the same object.
        if self._local is None:
            self._local = _limiter.limiter_for_fingerprint(
                self._fingerprint, self.rate_limit, name=self.name
            )
        return self._local

    def _line(self) -> _Line:
        loop = asyncio.get_running_loop()
        with self._lock:
            line = self._lines.get(loop)
            if line is None:
                line = self._lines[loop] = _Line(loop)
            return line

    def _window_args(self) -> list[str | float]:
        return [_ms(self.rate_limit.per), _ms(self.rate_limit.min_spacing), self._guard()]

    def _guard(self) -> str:
        return "1" if self._backend.restart_hold else "0"

    def _reach(self) -> float:
        return min(GRANT_AHEAD, self.rate_limit.per * GRANT_AHEAD_SHARE)

    def _poll_interval(self) -> float:
        return min(max(self.rate_limit.per * POLL_SHARE, POLL_MIN), POLL_MAX)


class RedisPermit:
    """One slot held in Redis. Release it when the attempt ends; releasing twice is harmless.

    A permit collected unreleased counts as a request that ended when it was collected.
    """

    __slots__ = ("_limiter", "_released", "_slot", "not_before")

    def __init__(self, limiter: RedisLimiter, slot: str, *, not_before: float = 0.0) -> None:
        self._limiter = limiter
        self._slot = slot
        self._released = False
        # Monotonic time before which the attempt must not start (a slot granted ahead).
        self.not_before = not_before

    async def release(self, *, sent: bool) -> None:
        """End the attempt; ``sent=False`` only if nothing can have reached the server."""
        if self._released:
            return
        self._released = True
        await self._limiter._release(self._slot, sent=sent)

    def __del__(self) -> None:
        if not self._released:
            self._limiter._journal.record_orphan(self._slot, self._limiter._backend._clock())

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<RedisPermit {self._limiter.name or '?'} {state}>"


class _LocalPermit:
    """A slot of the in-process limiter, taken while Redis was unavailable."""

    __slots__ = ("_inner", "_limiter", "_released")

    def __init__(self, limiter: RedisLimiter, inner: Permit) -> None:
        self._limiter = limiter
        self._inner = inner
        self._released = False

    async def release(self, *, sent: bool) -> None:
        """End the attempt locally; a sent one is also reported to Redis when it is back."""
        if self._released:
            return
        self._released = True
        await self._inner.release(sent=sent)
        if sent:
            limiter = self._limiter
            limiter._journal.record(_new_slot(), limiter._backend._clock(), sent=True)

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<RedisLimiter local permit {self._limiter.name or '?'} {state}>"


def _check_options(
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


def _checked_url(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"the Redis URL must start with redis://, rediss:// or unix://, got {redact_url(url)}"
        )
    return url


def _describe_client(client: aioredis.Redis) -> str:
    # Host, port and db only: the pool's settings also hold the password.
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    where = kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    return f"{type(client).__name__}({where}/{kwargs.get('db', 0)})"


def _replay_args(entries: list[Entry], now: float) -> list[str | float]:
    """Journal entries as the scripts' (slot, age in ms or -1) pairs."""
    args: list[str | float] = []
    for slot, at, sent in entries:
        args += [slot, _ms(now - at) if sent else -1]
    return args


def _exc_name(exc: BaseException) -> str:
    """An exception's type, for logs (its message may hold a URL)."""
    return type(exc).__name__


def _new_slot() -> str:
    return os.urandom(8).hex()


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _cancel_requests() -> int:
    """How often the running task has been asked to cancel (0 before Python 3.11)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return int(cancelling()) if cancelling is not None else 0


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
