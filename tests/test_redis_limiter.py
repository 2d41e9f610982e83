"""The Redis limiter: one budget per key across processes, against a real Redis.

Tests marked ``redis`` use the Redis on 127.0.0.1:6379 (and, for outages, a redis-server of
their own on another port). They run in CI (``CI=true``) and fail there if Redis does not
answer; elsewhere they skip with a reason. Every test works under its own key prefix and
deletes what it wrote.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis_workers.support import (
    RedisProcess,
    free_port,
    in_ci,
    redis_answers,
    run_workers,
    utilization,
)

from chatmaid_async import Chatmaid, ChatmaidError, RateLimit, RateLimiterUnavailableError
from chatmaid_async import _limiter as local_limiter
from chatmaid_async._limits import LimiterBackend, key_fingerprint, redact_key
from chatmaid_async.errors import ConfigurationError
from chatmaid_async.redis_limiter import (
    RedisLimiter,
    RedisPermit,
    RedisRateLimiter,
    _Health,
    redact_url,
)
from chatmaid_async.sandbox import Sandbox

MAIN_REDIS = "redis://127.0.0.1:6379/0"
LOGGER = "chatmaid_async.limiter.redis"
# The scaled limit of the multi-process runs: 50 per second, sliding window.
LIMIT = RateLimit(50, per=1.0)
WORKERS = 4
CLIENTS_PER_WORKER = 2
# The longest window any test here uses, in seconds.
LONGEST_WINDOW = 5.0


def _key() -> str:
    return f"sk_test_{uuid.uuid4().hex[:24]}"


@pytest.fixture(scope="module")
def redis_url() -> str:
    """The main Redis; fails in CI and skips elsewhere when it does not answer."""
    if redis_answers():
        _wait_out_restart_hold(MAIN_REDIS)
        return MAIN_REDIS
    if in_ci():
        pytest.fail(
            "CI is set but no Redis answers on 127.0.0.1:6379: the Redis limiter tests must run "
            "in CI. Start it with: redis-server --daemonize yes --port 6379 --save ''"
        )
    pytest.skip("no Redis answers on 127.0.0.1:6379; start one to run the Redis limiter tests")


def _wait_out_restart_hold(url: str) -> None:
    # A Redis that started less than a window ago holds each new key until a window after
    # the end of the second it started in (restart_hold); the tests' windows are at most
    # LONGEST_WINDOW, and ``uptime_in_seconds`` counts from the start of that second.
    with redis.Redis.from_url(url) as client:
        uptime = float(client.info("server")["uptime_in_seconds"])
    if uptime < LONGEST_WINDOW + 1:
        time.sleep(LONGEST_WINDOW + 1 - uptime)


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; whatever is left under it is deleted afterwards."""
    unique = f"chatmaid-test:{uuid.uuid4().hex[:12]}:"
    yield unique
    with redis.Redis.from_url(redis_url) as client:
        leftover = list(client.scan_iter(match=f"{unique}*"))
        if leftover:
            client.delete(*leftover)


@pytest.fixture
async def backend(redis_url: str, prefix: str) -> AsyncIterator[RedisRateLimiter]:
    """A backend on the main Redis under the test's prefix."""
    async with RedisRateLimiter(redis_url, prefix=prefix) as made:
        yield made


@pytest.fixture
def redis_binary() -> None:
    """Tests that start and stop a redis-server of their own need the binary."""
    if RedisProcess.available():
        return
    if in_ci():
        pytest.fail("CI is set but redis-server is not on PATH; the outage tests need it")
    pytest.skip("redis-server is not on PATH; the outage tests start one of their own")


async def _keys_under(url: str, prefix: str) -> list[bytes]:
    client = aioredis.Redis.from_url(url)
    try:
        return [key async for key in client.scan_iter(match=f"{prefix}*")]
    finally:
        await client.aclose()


def _limiter(backend: RedisRateLimiter, key: str, rate_limit: RateLimit) -> RedisLimiter:
    return backend.limiter_for(key_fingerprint(key), rate_limit, name=redact_key(key))


# -- without Redis ------------------------------------------------------------------------


def test_importing_the_sdk_does_not_import_redis() -> None:
    code = "import sys, chatmaid_async; assert 'redis' not in sys.modules, 'redis imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_redis_the_module_says_which_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "try:\n"
        "    import chatmaid_async.redis_limiter\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert 'pip install "chatmaid-async[redis]"' in done.stdout


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:hunter2@cache:6379/1", "redis://***@cache:6379/1"),
        ("rediss://app:hunter2@cache.example:6380", "rediss://***@cache.example:6380"),
        ("unix:///run/redis.sock?db=0&password=hunter2", "unix:///run/redis.sock?…"),
    ],
)
def test_redact_url_hides_credentials_and_query(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_repr_shows_state_without_the_key_or_the_password() -> None:
    backend = RedisRateLimiter("redis://app:hunter2@cache:6379/0")
    key = _key()
    limiter = _limiter(backend, key, LIMIT)

    text = repr(backend) + repr(limiter)

    assert "hunter2" not in text
    assert key not in text
    assert "redis://***@cache:6379/0" in text
    assert redact_key(key) in text
    assert "redis=up" in text
    assert "50/1s" in text


def test_backend_is_a_limiter_backend() -> None:
    assert isinstance(RedisRateLimiter(MAIN_REDIS), LimiterBackend)


@pytest.mark.parametrize(
    "options",
    [
        {"on_unavailable": "ignore"},
        {"lease": 0},
        {"grace": -1},
        {"socket_timeout": 0},
        {"prefix": ""},
    ],
)
def test_bad_options_raise_configuration_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RedisRateLimiter(MAIN_REDIS, **options)


def test_a_url_that_is_not_redis_is_refused_without_echoing_the_password() -> None:
    with pytest.raises(ConfigurationError, match="redis://") as caught:
        RedisRateLimiter("http://app:hunter2@cache:6379")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("url", ["redis://app:hunter2@[::1", "redis://app:hunter2@cache:99999"])
def test_a_malformed_redis_url_is_refused_without_echoing_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError, match="Redis URL") as caught:
        RedisRateLimiter(url)
    assert "hunter2" not in str(caught.value)


# Each row: events (("fail"|"ok", at) or ("route", at, expected route)), then WARNINGs seen.
HEALTH_CASES: dict[str, tuple[list[tuple[Any, ...]], int]] = {
    "up goes to redis": ([("route", 0.0, "redis")], 0),
    "within grace waits for the next try": (
        [("fail", 0.0), ("route", 0.01, "wait"), ("route", 0.06, "redis")],
        0,
    ),
    "after grace goes local, warning once": (
        [("fail", 0.0), ("fail", 0.9), ("route", 1.01, "local"), ("route", 1.02, "local")],
        1,
    ),
    "a failed probe after grace declares": ([("fail", 0.0), ("fail", 1.2)], 1),
    "probes come back with backoff": (
        [("fail", 0.0), ("fail", 2.0), ("route", 2.5, "local"), ("route", 3.0, "redis")],
        1,
    ),
    "success ends the outage": (
        [("fail", 0.0), ("fail", 2.0), ("ok", 3.0), ("route", 3.0, "redis")],
        1,
    ),
}


@pytest.mark.parametrize("case", list(HEALTH_CASES))
def test_health_decides_where_an_acquire_goes(case: str, caplog: pytest.LogCaptureFixture) -> None:
    events, warnings = HEALTH_CASES[case]
    health = _Health("redis://x", "local", grace=1.0)
    caplog.set_level(logging.INFO, logger=LOGGER)

    for event in events:
        if event[0] == "fail":
            health.failed(event[1], ConnectionError())
        elif event[0] == "ok":
            health.succeeded(event[1])
        else:
            assert health.route(event[1])[0] == event[2], event

    assert sum(r.levelno == logging.WARNING for r in caplog.records) == warnings


def test_health_in_fail_mode_raises_after_grace() -> None:
    health = _Health("redis://x", "fail", grace=0.0)
    health.failed(0.0, ConnectionError())
    assert health.route(0.01) == ("raise", 0.0)


# -- one process, real Redis --------------------------------------------------------------


@pytest.mark.redis
async def test_an_idle_key_bursts_n_then_waits_for_release_plus_window(
    backend: RedisRateLimiter,
) -> None:
    limiter = _limiter(backend, _key(), RateLimit(5, per=0.5))

    started = time.monotonic()
    permits = [await limiter.acquire() for _ in range(5)]
    burst = time.monotonic() - started
    await asyncio.sleep(0.2)
    for permit in permits:
        await permit.release(sent=True)
    released = time.monotonic()
    sixth = await limiter.acquire()
    waited = time.monotonic() - released
    await sixth.release(sent=True)

    assert burst < 0.25
    # The slots count from their release, not their grant: a full window from the release.
    assert 0.45 <= waited <= 0.7
    assert all(isinstance(permit, RedisPermit) for permit in permits)


@pytest.mark.redis
async def test_an_unsent_release_frees_the_slot_at_once(backend: RedisRateLimiter) -> None:
    limiter = _limiter(backend, _key(), RateLimit(2, per=5.0))
    first, second = await limiter.acquire(), await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.05)
    assert not waiter.done()

    started = time.monotonic()
    await first.release(sent=False)
    third = await asyncio.wait_for(waiter, 1.0)

    assert time.monotonic() - started < 0.2
    for permit in (second, third):
        await permit.release(sent=False)


@pytest.mark.redis
async def test_a_cancelled_acquire_takes_no_slot(redis_url: str, prefix: str) -> None:
    key, rate_limit = _key(), RateLimit(3, per=5.0)
    async with RedisRateLimiter(redis_url, prefix=prefix) as backend:
        limiter = _limiter(backend, key, rate_limit)
        held = [await limiter.acquire(), await limiter.acquire()]

        # Cancelled at every point of the call, including while the script is on the wire.
        for delay in [0, 0, 0.0001, 0.0002, 0.0005, 0.001, 0.002] * 5:
            task = asyncio.create_task(limiter.acquire())
            await asyncio.sleep(delay)
            if task.cancel():
                with pytest.raises(asyncio.CancelledError):
                    await task
            else:
                await (await task).release(sent=False)
        for permit in held:
            await permit.release(sent=True)
    # Closing sent every give-back; only the two held slots were ever counted.

    client = aioredis.Redis.from_url(redis_url)
    try:
        live, ended, _ = backend.keys_for(key_fingerprint(key))
        assert await client.zcard(live) == 0
        assert await client.zcard(ended) == len(held)
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_a_closed_backend_refuses_to_acquire(redis_url: str, prefix: str) -> None:
    backend = RedisRateLimiter(redis_url, prefix=prefix)
    limiter = _limiter(backend, _key(), LIMIT)
    await (await limiter.acquire()).release(sent=False)
    await backend.aclose()
    await backend.aclose()

    with pytest.raises(ChatmaidError, match="closed"):
        await limiter.acquire()
    assert "redis=closed" in repr(backend)


@pytest.mark.redis
async def test_state_is_named_by_fingerprint_and_expires(
    backend: RedisRateLimiter, redis_url: str, prefix: str
) -> None:
    key = _key()
    limiter = _limiter(backend, key, RateLimit(3, per=0.3))
    for _ in range(3):
        await (await limiter.acquire()).release(sent=True)
    await limiter.hold(0.1)

    names = [name.decode() for name in await _keys_under(redis_url, prefix)]
    # No slot is in flight, so there is no ``live`` key.
    _live, ended, meta = backend.keys_for(key_fingerprint(key))
    assert sorted(names) == sorted([ended, meta])
    assert not any(key in name for name in names)

    # Nothing counts a window after the last release: nothing stays behind.
    await asyncio.sleep(0.35)
    assert await _keys_under(redis_url, prefix) == []


@pytest.mark.redis
async def test_two_keys_are_independent(backend: RedisRateLimiter) -> None:
    busy = _limiter(backend, _key(), RateLimit(2, per=5.0))
    other = _limiter(backend, _key(), RateLimit(2, per=5.0))
    held = [await busy.acquire(), await busy.acquire()]

    started = time.monotonic()
    mine = [await other.acquire(), await other.acquire()]

    assert time.monotonic() - started < 0.1
    for permit in held + mine:
        await permit.release(sent=False)


@pytest.mark.redis
async def test_a_hold_pauses_the_key(backend: RedisRateLimiter) -> None:
    limiter = _limiter(backend, _key(), RateLimit(10, per=1.0))
    await limiter.hold(0.3)

    started = time.monotonic()
    permit = await limiter.acquire()

    assert 0.27 <= time.monotonic() - started <= 0.5
    await permit.release(sent=False)


@pytest.mark.redis
async def test_smooth_mode_spaces_grants_across_the_key(backend: RedisRateLimiter) -> None:
    rate_limit = RateLimit(5, per=0.5, smooth=True)
    limiter = _limiter(backend, _key(), rate_limit)

    starts = []
    for _ in range(3):
        permit = await limiter.acquire()
        starts.append(time.monotonic())
        await permit.release(sent=True)

    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= rate_limit.min_spacing - 0.005


@pytest.mark.redis
async def test_a_client_of_yours_is_used_and_left_open(redis_url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        async with RedisRateLimiter(client, prefix=prefix) as backend:
            await (await _limiter(backend, _key(), LIMIT).acquire()).release(sent=False)
            assert "hunter2" not in repr(backend)
        assert await client.ping()
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_a_slot_of_a_crashed_process_frees_after_its_lease(
    redis_url: str, prefix: str
) -> None:
    key, rate_limit = _key(), RateLimit(1, per=0.2)
    async with RedisRateLimiter(redis_url, prefix=prefix, lease=0.3) as crashed:
        lost = await _limiter(crashed, key, rate_limit).acquire()
        async with RedisRateLimiter(redis_url, prefix=prefix) as survivor:
            started = time.monotonic()
            permit = await _limiter(survivor, key, rate_limit).acquire()
            waited = time.monotonic() - started
            await permit.release(sent=False)
        assert isinstance(lost, RedisPermit)
        lost._released = True  # the crashed process never releases it

    # Lease (0.3 s) plus one window (0.2 s): the attempt may have reached the API at the end.
    assert 0.45 <= waited <= 0.8


@pytest.mark.redis
def test_one_backend_serves_successive_event_loops(redis_url: str, prefix: str) -> None:
    backend = RedisRateLimiter(redis_url, prefix=prefix)
    limiter = _limiter(backend, _key(), RateLimit(10, per=1.0))

    async def one_round() -> None:
        await (await limiter.acquire()).release(sent=False)

    # The second loop gets a client of its own; the first loop's closed with its loop.
    asyncio.run(one_round())
    asyncio.run(one_round())
    gc.collect()


@pytest.mark.redis
async def test_a_client_on_the_backend_talks_to_the_sandbox(backend: RedisRateLimiter) -> None:
    async with Sandbox() as sandbox:
        key = sandbox.create_key(rate_limit=RateLimit(3, per=0.5))
        async with Chatmaid(
            key, base_url=sandbox.base_url, rate_limit=RateLimit(3, per=0.5), rate_limiter=backend
        ) as client:
            assert isinstance(client.limiter, RedisLimiter)
            await asyncio.gather(*(client.account.get() for _ in range(6)))

        assert sandbox.counters.rate_limited_total == 0


# -- several processes ----------------------------------------------------------------------


def _load_config(
    redis_url: str, prefix: str, base_url: str, key: str, requests: int, **extra: Any
) -> dict[str, Any]:
    return {
        "mode": "load",
        "redis_url": redis_url,
        "prefix": prefix,
        "base_url": base_url,
        "api_key": key,
        "requests": requests,
        "clients": CLIENTS_PER_WORKER,
        "limit": LIMIT.requests,
        "per": LIMIT.per,
        **extra,
    }


async def _run_load(
    sandbox: Sandbox,
    redis_url: str,
    prefix: str,
    *,
    during: Callable[[], Awaitable[None]] | None = None,
    late: dict[str, Any] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Five times the limit from 4 workers on one key; ``late`` is extra config of the last 2."""
    key = sandbox.create_key(rate_limit=LIMIT, window="sliding")
    shares = [len(range(n, 5 * LIMIT.requests, WORKERS)) for n in range(WORKERS)]
    configs = [
        _load_config(redis_url, prefix, sandbox.base_url, key, share, **(late or {}))
        if late is not None and n >= WORKERS // 2
        else _load_config(redis_url, prefix, sandbox.base_url, key, share)
        for n, share in enumerate(shares)
    ]
    workers = await run_workers(configs)
    try:
        if during is not None:
            await during()
        results = [await worker.result() for worker in workers]
    finally:
        for worker in workers:
            await worker.kill()
    return key, results


@pytest.mark.redis
@pytest.mark.slow
async def test_four_processes_share_one_budget_without_a_429(redis_url: str, prefix: str) -> None:
    async with Sandbox() as sandbox:
        key, results = await _run_load(sandbox, redis_url, prefix)
        counters = sandbox.counters

    starts = [stamp for result in results for stamp in result["starts"]]
    assert [result["errors"] for result in results] == [{}] * WORKERS
    assert len(starts) == 5 * LIMIT.requests
    assert counters.rate_limited_by_key.get(key, 0) == 0
    assert counters.max_in_window_by_key[key] <= LIMIT.requests
    used = utilization(starts, LIMIT.requests, LIMIT.per)
    assert used >= 0.9, f"utilization {used:.3f}"

    # A window after the last release nothing is left under the prefix.
    await asyncio.sleep(LIMIT.per + 0.1)
    assert await _keys_under(redis_url, prefix) == []


@pytest.mark.redis
async def test_a_429_in_one_process_holds_every_process(
    backend: RedisRateLimiter, redis_url: str, prefix: str
) -> None:
    async with Sandbox() as sandbox:
        key = sandbox.create_key(rate_limit=RateLimit(1, per=1.0))
        config = {
            **_load_config(redis_url, prefix, sandbox.base_url, key, 0),
            "mode": "hit429",
            "limit": 100,
            "clients": 1,
        }
        (worker,) = await run_workers([config])
        result = await worker.read_result()

        # This process never saw the 429, yet waits out the server's hint.
        limiter = _limiter(backend, key, RateLimit(100, per=1.0))
        started = time.monotonic()
        permit = await limiter.acquire()
        waited, resumed = time.monotonic() - started, time.time()
        await permit.release(sent=False)
        await worker.finish()

    assert result["retry_after"] == 1
    assert waited >= 0.5
    assert resumed - result["held_at"] >= 0.9


# -- Redis unavailable ----------------------------------------------------------------------


@pytest.mark.redis
async def test_connect_reports_an_unreachable_redis(prefix: str) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    async with RedisRateLimiter(url, prefix=prefix) as backend:
        with pytest.raises(RateLimiterUnavailableError) as caught:
            await backend.connect()
    assert "hunter2" not in str(caught.value)


@pytest.mark.redis
async def test_fail_mode_raises_the_typed_error(prefix: str) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    async with RedisRateLimiter(url, prefix=prefix, on_unavailable="fail", grace=0.2) as backend:
        limiter = _limiter(backend, _key(), LIMIT)
        started = time.monotonic()
        with pytest.raises(RateLimiterUnavailableError) as caught:
            await limiter.acquire()
        waited = time.monotonic() - started

        # Declared down: the next acquire raises at once.
        started = time.monotonic()
        with pytest.raises(RateLimiterUnavailableError):
            await limiter.acquire()

        assert time.monotonic() - started < 0.05
    assert 0.2 <= waited < 1.0
    assert "hunter2" not in str(caught.value)
    assert "on_unavailable" in str(caught.value)


@pytest.mark.redis
async def test_local_mode_falls_back_with_one_warning_and_returns_to_redis(
    redis_binary: None, prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    server = RedisProcess(tmp_path)
    key = _key()
    async with RedisRateLimiter(
        server.url, prefix=prefix, grace=0.1, restart_hold=False
    ) as backend:
        limiter = _limiter(backend, key, RateLimit(100, per=5.0))

        # Down: after the grace, slots come from this process's limiter for the key.
        for _ in range(20):
            await (await limiter.acquire()).release(sent=True)
        assert limiter._local is local_limiter.limiter_for_key(key, RateLimit(100, per=5.0))
        assert limiter._local.state().in_window == 20

        # Up again: a probe finds it and the local slots are reported to Redis.
        await server.start()
        try:
            deadline = time.monotonic() + 3.0
            while limiter._source != "redis" and time.monotonic() < deadline:
                await (await limiter.acquire()).release(sent=True)
                await asyncio.sleep(0.02)
            _, ended, _ = backend.keys_for(key_fingerprint(key))
            client = aioredis.Redis.from_url(server.url)
            try:
                reported = await client.zcard(ended)
            finally:
                await client.aclose()
        finally:
            await backend.aclose()
            await server.stop()

    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    back = [r for r in caplog.records if r.name == LOGGER and "answers again" in r.getMessage()]
    assert limiter._source == "redis"
    assert len(warnings) == 1
    assert len(back) == 1
    assert reported >= 20


async def _start_late_in_a_second(server: RedisProcess) -> tuple[float, int]:
    """Start ``server`` from x.6 of a wall-clock second, answering within that second.

    Returns the monotonic time just before it was spawned and that second (Unix time). A
    server too slow to answer within the second is started again, a few times at most.
    """
    for _ in range(5):
        await asyncio.sleep((0.6 - time.time()) % 1)
        spawned, second = time.monotonic(), int(time.time())
        await server.start()
        if int(time.time()) == second:
            break
        await server.stop()
    else:
        await server.start()
    return spawned, second


@pytest.mark.redis
async def test_a_fresh_redis_holds_a_whole_window_even_across_a_clock_second(
    redis_binary: None, tmp_path: Path
) -> None:
    # INFO's uptime_in_seconds is Redis' whole-second clock minus the second it started in:
    # 0.3 s after a start at x.7 it already says 1. Start late in a second, ask in the next.
    rate_limit = RateLimit(1, per=1.0)
    server = RedisProcess(tmp_path)
    spawned, second = await _start_late_in_a_second(server)
    try:
        await asyncio.sleep(second + 1.05 - time.time())
        async with RedisRateLimiter(server.url, prefix="chatmaid-test:") as backend:
            permit = await _limiter(backend, _key(), rate_limit).acquire()
            granted = time.monotonic()
            await permit.release(sent=False)
    finally:
        await server.stop()

    # What a previous server granted may count until a window after this one started.
    assert granted - spawned >= rate_limit.per
    # Held to the whole second above the start, no longer.
    assert granted - spawned <= 2 * rate_limit.per + 0.5


@pytest.mark.redis
@pytest.mark.slow
async def test_a_redis_restart_mid_run_keeps_the_limit(redis_binary: None, tmp_path: Path) -> None:
    server = RedisProcess(tmp_path)
    await server.start()
    # A fresh server holds a key's first window (it cannot know what a restart forgot), to the
    # whole second above its start.
    await asyncio.sleep(LIMIT.per + 1)

    # Two workers burst at once and again a window later; Redis restarts, empty, 0.1 s after
    # that second wave, while its slots still count at the API; the other two workers start
    # during the outage and find a fresh state once it is back.
    async def restart() -> None:
        await asyncio.sleep(1.1)
        await server.stop()
        await asyncio.sleep(0.3)
        await server.start()

    try:
        async with Sandbox() as sandbox:
            key, results = await _run_load(
                sandbox, server.url, "chatmaid-test:", during=restart, late={"start_after": 1.2}
            )
            counters = sandbox.counters
    finally:
        await server.stop()

    assert [result["errors"] for result in results] == [{}] * WORKERS
    assert sum(result["ok"] for result in results) == 5 * LIMIT.requests
    assert counters.rate_limited_by_key.get(key, 0) == 0
    assert counters.max_in_window_by_key[key] <= LIMIT.requests
    # The restart cost a pause, not the limit: no worker had to pace on its own.
    assert [result["warnings"] for result in results] == [0] * WORKERS
