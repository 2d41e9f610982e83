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

Layout: ``chatmaid_async._redis`` holds the parts, one idea each: ``_backend`` (clients per
event loop, outage state), ``_limiter`` (one key's acquire, hold and release), ``_line`` (the
waiters of one loop), ``_journal`` (what Redis has not heard yet), ``_permits``, ``_health``
(outages and fallback), ``_scripts`` (the Lua) and ``_options``. This module is their public face.
"""

from __future__ import annotations

# Importing the package raises an ImportError naming the extra when redis-py is missing.
from chatmaid_async._redis._backend import RedisRateLimiter
from chatmaid_async._redis._health import UNAVAILABLE_ERRORS as UNAVAILABLE_ERRORS
from chatmaid_async._redis._health import Health
from chatmaid_async._redis._health import OnUnavailable as OnUnavailable
from chatmaid_async._redis._limiter import RedisLimiter
from chatmaid_async._redis._options import DEFAULT_GRACE as DEFAULT_GRACE
from chatmaid_async._redis._options import DEFAULT_LEASE as DEFAULT_LEASE
from chatmaid_async._redis._options import DEFAULT_PREFIX as DEFAULT_PREFIX
from chatmaid_async._redis._options import DEFAULT_SOCKET_TIMEOUT as DEFAULT_SOCKET_TIMEOUT
from chatmaid_async._redis._options import redact_url
from chatmaid_async._redis._permits import RedisPermit

__all__ = ["RedisLimiter", "RedisPermit", "RedisRateLimiter", "redact_url"]

# The outage logic under its old name, for its tests.
_Health = Health
