"""The two Lua scripts that keep a key's window in Redis, and how their arguments are encoded.

Per key, three Redis keys named by the key's fingerprint: ``live`` (slots in flight, by lease
deadline), ``ended`` (by end of attempt) and ``meta`` (hold, last grant). ``acquire`` grants
slots, ``release`` records ends, give-backs and holds; both read Redis' clock (``TIME``) and
set the keys to expire once nothing counts. No I/O here: the backend registers and runs them.
"""

from __future__ import annotations

import os

from chatmaid_async._redis._journal import Entry

__all__ = ["LUA_COMMON", "SCRIPTS", "ms", "new_slot", "replay_args"]

# Shared by the two scripts. KEYS: live, ended, meta. Times in milliseconds of Redis' clock.
LUA_COMMON = """
local live, ended, meta = KEYS[1], KEYS[2], KEYS[3]

local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

-- The key's hold-until and last grant. A state created within a window of the server's start
-- may have lost slots that still count (a restart without persistence): it starts held until
-- one window after the start. uptime_in_seconds counts whole seconds of Redis' clock from the
-- second it started in (1 already 0.1 s after a start at x.9), so all it tells is that the
-- start came before the end of second floor(now) - up (and, of course, before now).
local function open(now, per, guard)
  local saved = redis.call('HMGET', meta, 'hold', 'last')
  if saved[1] then return tonumber(saved[1]), tonumber(saved[2]) or -math.huge end
  local hold = 0
  if guard == '1' then
    local info = redis.call('INFO', 'server')
    local up = tonumber(string.match(info, 'uptime_in_seconds:(%d+)')) or 0
    hold = math.min((math.floor(now / 1000) - up + 1) * 1000, now) + per
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

SCRIPTS = {"acquire": _LUA_ACQUIRE, "release": _LUA_RELEASE}


def replay_args(entries: list[Entry], now: float) -> list[str | float]:
    """Journal entries as the scripts' (slot, age in ms or -1) pairs."""
    args: list[str | float] = []
    for slot, at, sent in entries:
        args += [slot, ms(now - at) if sent else -1]
    return args


def new_slot() -> str:
    return os.urandom(8).hex()


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
