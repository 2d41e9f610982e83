"""Redis limiter benchmark: what sharing a key's budget through Redis costs, and what it keeps.

Two measurements, each the median of ``--runs`` runs:

- overhead: one task doing acquire + release (``sent=True``) back to back, with a limit too
  high to wait, on the in-process limiter and on the Redis limiter; median and p99 in
  microseconds per pair, and the difference (the added cost of going through Redis);
- shared run: ``--workers`` processes with two clients each send five times the limit on one
  key to the sandbox (sliding window, ``--limit`` per ``--per`` seconds); the 429s it
  answered, the most requests it saw in any window, and the utilization (the rate after the
  first burst, as a share of the limit, from when requests left the clients).

Needs Redis on ``--redis`` (default redis://127.0.0.1:6379/0). Usage::

    python benchmarks/bench_redis_limiter.py [--runs 5] [--pairs 2000] [--workers 4]
                                             [--limit 50] [--per 1.0] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from redis_workers.support import run_workers, utilization

from chatmaid_async._limiter import SlidingWindowLimiter
from chatmaid_async._limits import Limiter, RateLimit
from chatmaid_async.redis_limiter import RedisRateLimiter
from chatmaid_async.sandbox import Sandbox

# High enough that no acquire of the overhead loop ever waits.
UNBOUNDED = RateLimit(10**9, per=60.0)
WARM_UP_PAIRS = 200


async def time_pairs(limiter: Limiter, pairs: int) -> list[float]:
    """Microseconds of each acquire + release, one after another."""
    for _ in range(WARM_UP_PAIRS):
        await (await limiter.acquire()).release(sent=True)
    spent = []
    for _ in range(pairs):
        started = time.perf_counter()
        permit = await limiter.acquire()
        await permit.release(sent=True)
        spent.append((time.perf_counter() - started) * 1e6)
    return spent


async def overhead_run(args: argparse.Namespace) -> dict[str, float]:
    """One run of the overhead loop on both limiters."""
    local = await time_pairs(SlidingWindowLimiter(UNBOUNDED), args.pairs)
    prefix = f"chatmaid-bench:{uuid.uuid4().hex[:8]}:"
    async with RedisRateLimiter(args.redis, prefix=prefix) as backend:
        await backend.connect()
        limiter = backend.limiter_for(uuid.uuid4().hex, UNBOUNDED, name="bench")
        shared = await time_pairs(limiter, args.pairs)
    await _delete_prefix(args.redis, prefix)
    return {
        "local_median_us": statistics.median(local),
        "local_p99_us": _p99(local),
        "redis_median_us": statistics.median(shared),
        "redis_p99_us": _p99(shared),
        "added_median_us": statistics.median(shared) - statistics.median(local),
        "added_p99_us": _p99(shared) - _p99(local),
    }


async def shared_run(args: argparse.Namespace) -> dict[str, float]:
    """One run of worker processes sharing one key through Redis against the sandbox."""
    rate_limit = RateLimit(args.limit, per=args.per)
    total = 5 * args.limit
    prefix = f"chatmaid-bench:{uuid.uuid4().hex[:8]}:"
    async with Sandbox() as sandbox:
        key = sandbox.create_key(rate_limit=rate_limit, window="sliding")
        configs = [
            {
                "mode": "load",
                "redis_url": args.redis,
                "prefix": prefix,
                "base_url": sandbox.base_url,
                "api_key": key,
                "requests": len(range(n, total, args.workers)),
                "clients": 2,
                "limit": args.limit,
                "per": args.per,
            }
            for n in range(args.workers)
        ]
        started = time.monotonic()
        workers = await run_workers(configs)
        results = [await worker.result() for worker in workers]
        wall = time.monotonic() - started
        counters = sandbox.counters
    await _delete_prefix(args.redis, prefix)

    starts = [stamp for result in results for stamp in result["starts"]]
    return {
        "rejected": counters.rate_limited_by_key.get(key, 0),
        "max_in_window": counters.max_in_window_by_key.get(key, 0),
        "utilization": utilization(starts, args.limit, args.per),
        "errors": sum(sum(result["errors"].values()) for result in results),
        "wall_seconds": wall,
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement, ``args.runs`` times; keeps the runs and their medians."""
    overhead = [await overhead_run(args) for _ in range(args.runs)]
    print(f"  overhead: {_median(overhead)}", file=sys.stderr)
    shared = [await shared_run(args) for _ in range(args.runs)]
    print(f"  shared run: {_median(shared)}", file=sys.stderr)
    return {
        "overhead": {"median": _median(overhead), "runs": overhead},
        "shared": {"median": _median(shared), "runs": shared},
    }


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    """The results as two markdown tables."""
    cost, run = results["overhead"]["median"], results["shared"]["median"]
    return "\n".join(
        [
            f"acquire + release, one task, {args.pairs} pairs, median of {args.runs} runs",
            "",
            "| limiter | median µs | p99 µs |",
            "|---|---:|---:|",
            f"| in-process | {cost['local_median_us']:.1f} | {cost['local_p99_us']:.1f} |",
            f"| Redis | {cost['redis_median_us']:.1f} | {cost['redis_p99_us']:.1f} |",
            f"| added by Redis | {cost['added_median_us']:.1f} | {cost['added_p99_us']:.1f} |",
            "",
            f"{args.workers} processes × 2 clients, {5 * args.limit} requests on one key, "
            f"sandbox sliding window {args.limit} per {args.per:g} s, median of {args.runs} runs",
            "",
            "| 429s | max in window | utilization | errors | wall s |",
            "|---:|---:|---:|---:|---:|",
            f"| {run['rejected']:g} | {run['max_in_window']:g} | {run['utilization']:.3f} "
            f"| {run['errors']:g} | {run['wall_seconds']:.2f} |",
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--per", type=float, default=1.0)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the tables, optionally write JSON."""
    args = parse_args(argv)
    results = asyncio.run(bench(args))
    print(table(results, args))
    if args.json:
        config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        args.json.write_text(json.dumps({"config": config, "results": results}, indent=2))


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {field: statistics.median(run[field] for run in runs) for field in runs[0]}


async def _delete_prefix(url: str, prefix: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


if __name__ == "__main__":
    main()
