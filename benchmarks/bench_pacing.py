"""Pacing benchmark: which limiter keeps a key under the server's window, and at what rate.

A scaled run (default: 400 requests fired at once, limit 50 per 1 s) against local servers that
enforce a sliding or a fixed window (and, with ``--all``, an approximate two-bucket counter).
For each limiter and server model it reports, as the median of ``--runs`` runs:

- rejected: 429s the server answered;
- max in window: the most requests the server saw in any window of ``per`` seconds;
- utilization: the admitted rate after the first ``limit`` requests, as a share of the limit.

Usage::

    python benchmarks/bench_pacing.py [--runs 5] [--requests 400] [--limit 50] [--per 1.0]
                                      [--all] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiolimiter import AsyncLimiter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from ratelimit_servers import Model, WindowServer

from chatmaid_async._limiter import SlidingWindowLimiter
from chatmaid_async._limits import Limiter, RateLimit


class _NoPermit:
    async def release(self, *, sent: bool) -> None:
        """A leaky bucket has nothing to give back."""


class LeakyBucket:
    """Plain ``AsyncLimiter(N, per)`` behind the :class:`Limiter` protocol, as users wire it."""

    def __init__(self, rate_limit: RateLimit) -> None:
        self.rate_limit = rate_limit
        self._bucket = AsyncLimiter(rate_limit.requests, rate_limit.per)

    async def acquire(self) -> _NoPermit:
        """Take capacity from the bucket."""
        await self._bucket.acquire()
        return _NoPermit()

    async def hold(self, seconds: float) -> None:
        """AsyncLimiter has no notion of a server hold."""


LIMITERS: dict[str, Callable[[RateLimit], Limiter]] = {
    "sliding log (ours)": SlidingWindowLimiter,
    "AsyncLimiter(N, per)": LeakyBucket,
}
SMOOTH = "sliding log, smooth (ours)"
BASIC_MODELS: list[Model] = ["sliding", "fixed"]


# The one function to swap when the benchmark moves to the SDK client.
async def send_one(session: aiohttp.ClientSession, url: str, key: str, limiter: Limiter) -> int:
    """Send one message under the limiter; the slot counts until the reply is in."""
    permit = await limiter.acquire()
    try:
        async with session.post(
            f"{url}/v1/messages/send",
            json={"fromPhoneId": "ph_test_1", "to": "+15550100001", "content": "x"},
            headers={"Authorization": f"Bearer {key}"},
        ) as response:
            await response.read()
            return response.status
    finally:
        await permit.release(sent=True)


async def one_run(limiter: Limiter, model: Model, args: argparse.Namespace) -> dict[str, float]:
    """Fire every request at once against a fresh server; measure what the server saw."""
    key = f"sk_test_{uuid.uuid4().hex[:24]}"
    gate = asyncio.Semaphore(args.concurrency or args.requests)

    async def gated(session: aiohttp.ClientSession, url: str) -> int:
        async with gate:
            return await send_one(session, url, key, limiter)

    async with WindowServer(args.limit, args.per, model) as server:
        connector = aiohttp.TCPConnector(limit=max(100, args.limit * 2))
        async with aiohttp.ClientSession(connector=connector) as session:
            started = time.monotonic()
            await asyncio.gather(*(gated(session, server.url) for _ in range(args.requests)))
            wall = time.monotonic() - started

    return {
        "rejected": server.rejected,
        "max_in_window": server.max_in_window(key),
        "utilization": server.utilization(key),
        "wall_seconds": wall,
    }


async def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every (limiter, model) pair, ``args.runs`` times; each result keeps its runs."""
    limiters = dict(LIMITERS)
    models = list(BASIC_MODELS)
    if args.all:
        limiters[SMOOTH] = lambda rate_limit: SlidingWindowLimiter(
            RateLimit(rate_limit.requests, rate_limit.per, smooth=True)
        )
        models.append("two_bucket")

    results = []
    for model in models:
        for name, make in limiters.items():
            runs = []
            for _ in range(args.runs):
                runs.append(await one_run(make(RateLimit(args.limit, args.per)), model, args))
            median = {field: statistics.median(run[field] for run in runs) for field in runs[0]}
            results.append({"limiter": name, "model": model, "median": median, "runs": runs})
            print(f"  {model:10} {name:28} {_cells(median)}", file=sys.stderr)
    return results


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """The results as a markdown table."""
    lines = [
        f"{args.requests} requests fired at once, limit {args.limit} per {args.per:g} s, "
        f"median of {args.runs} runs",
        "",
        "| limiter | server window | rejected | max in window | utilization | wall s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for result in results:
        lines.append(f"| {result['limiter']} | {result['model']} | {_cells(result['median'])} |")
    return "\n".join(lines)


def _cells(median: dict[str, float]) -> str:
    return (
        f"{median['rejected']:g} | {median['max_in_window']:g} | "
        f"{median['utilization']:.3f} | {median['wall_seconds']:.2f}"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--per", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=0, help="0: all at once")
    parser.add_argument("--all", action="store_true", help="add smooth mode and two-bucket")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table, optionally write JSON."""
    args = parse_args(argv)
    results = asyncio.run(bench(args))
    print(table(results, args))
    if args.json:
        config = {k: v for k, v in vars(args).items() if k != "json"}
        args.json.write_text(json.dumps({"config": config, "results": results}, indent=2))


if __name__ == "__main__":
    main()
