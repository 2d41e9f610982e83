"""A worker process: Chatmaid clients that share one key's budget through Redis.

Run as ``python tests/redis_workers/worker.py '<json config>'``. It warms up (Redis connection
and scripts, HTTP connections), prints ``ready``, waits for ``go`` on stdin, runs, prints one
JSON line of results and exits. Modes:

- ``load``: ``requests`` calls to ``GET /v1/account``, all at once ``start_after`` seconds
  after ``go``, spread over ``clients`` clients; reports successes, errors by type, when each
  request left (Unix time, as aiohttp started it) and limiter WARNINGs.
- ``hit429``: three calls at once on a key the server allows one request per second, so it
  answers 429 (and the client holds the key in Redis); reports when, and the hint.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

import aiohttp

from chatmaid_async import Chatmaid, ChatmaidError, RateLimit, RateLimitError
from chatmaid_async.redis_limiter import RedisRateLimiter


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def _wait_for_go() -> None:
    print("ready", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() != "go":
        raise SystemExit(f"expected 'go', got {line!r}")


async def _load(
    config: dict[str, Any], clients: list[Chatmaid], starts: list[float]
) -> dict[str, Any]:
    ok = 0
    errors: dict[str, int] = {}
    await asyncio.sleep(config.get("start_after", 0.0))
    starts.clear()

    async def one(client: Chatmaid) -> None:
        nonlocal ok
        try:
            await client.account.get()
            ok += 1
        except ChatmaidError as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

    await asyncio.gather(*(one(clients[i % len(clients)]) for i in range(config["requests"])))
    return {"ok": ok, "errors": errors, "starts": starts}


def _recording(starts: list[float]) -> aiohttp.TraceConfig:
    async def on_request_start(*_: object) -> None:
        starts.append(time.time())

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request_start)
    return trace


async def _hit429(clients: list[Chatmaid]) -> dict[str, Any]:
    # Sent together, before any answer can tell the client the quota is used up.
    outcomes = await asyncio.gather(
        *(clients[0].account.get() for _ in range(3)), return_exceptions=True
    )
    for outcome in outcomes:
        if isinstance(outcome, RateLimitError):
            return {"held_at": time.time(), "retry_after": outcome.retry_after}
    return {"held_at": None, "outcomes": [type(outcome).__name__ for outcome in outcomes]}


async def _warm(session: aiohttp.ClientSession, base_url: str) -> None:
    # Open the connections the run will use; a path outside the API takes no rate capacity.
    async def one() -> None:
        async with session.get(f"{base_url}/warm-up") as response:
            await response.read()

    await asyncio.gather(*(one() for _ in range(WARM_CONNECTIONS)))


# About the most requests one worker has in flight at once (its share of a burst).
WARM_CONNECTIONS = 16


async def main(config: dict[str, Any]) -> None:
    warnings = _Count()
    logging.getLogger("chatmaid_async.limiter.redis").addHandler(warnings)
    backend = RedisRateLimiter(
        config["redis_url"],
        prefix=config["prefix"],
        grace=config.get("grace", 1.0),
        restart_hold=config.get("restart_hold", True),
    )
    starts: list[float] = []
    session = aiohttp.ClientSession(trace_configs=[_recording(starts)])
    rate_limit = RateLimit(config["limit"], per=config["per"])
    clients = [
        Chatmaid(
            config["api_key"],
            base_url=config["base_url"],
            rate_limit=rate_limit,
            rate_limiter=backend,
            max_retries=0,
            session=session,
        )
        for _ in range(config.get("clients", 1))
    ]
    try:
        await backend.connect()
        await _warm(session, config["base_url"])
        await _wait_for_go()
        if config["mode"] == "load":
            result = await _load(config, clients, starts)
        else:
            result = await _hit429(clients)
        result["warnings"] = warnings.count
        print(json.dumps(result), flush=True)
    finally:
        for client in clients:
            await client.aclose()
        await session.close()
        await backend.aclose()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
