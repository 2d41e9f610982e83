"""Batch: ``send_many`` against raw aiohttp on the sandbox, and the client's peak memory.

The sandbox runs in its own process with an unlimited key. Every measurement runs in a fresh
client process, so its peak RSS (``ru_maxrss``) belongs to that one batch: ``send_many`` with
pacing off, or raw aiohttp workers posting the same JSON (uuid4 idempotency keys), both with
``--concurrency`` sends in flight. Each size gets ``--runs`` rounds of both, in alternating
order, and every run gets a fresh sandbox, so each client meets an empty server.

Reported per size: messages per second and client CPU per message (medians), their ratios to
raw aiohttp paired within each round, and the median peak RSS of the ``send_many`` process.
The input is a generator, so a flat peak across sizes means nothing grows with the batch.

Usage::

    python benchmarks/bench_send_many.py [--sizes 10000,100000] [--runs 5]
                                         [--concurrency 64] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    cpu_seconds,
    machine,
    markdown_table,
    median,
    peak_rss_mb,
    sandbox_server,
    write_json,
)

from chatmaid_async import Chatmaid, SendRequest

PHONE = "+15550100000"
CONTENT = "Hello from the batch benchmark"
SEND = "/v1/messages/send"
SDK = "send_many"
BASELINE = "raw aiohttp"
RSS_LIMIT_MB = 150.0
RSS_SPREAD_MAX = 0.10
CHILD_TIMEOUT = 900.0


def recipients(count: int) -> Iterator[str]:
    """``count`` E.164 recipients, made as they are read (none of the sandbox's failing ones)."""
    return (f"+1666{n % 10_000_000:07d}" for n in range(count))


def batch(count: int) -> Iterator[SendRequest]:
    """The batch as a lazy input: nothing is materialised up front."""
    run = uuid.uuid4().hex[:12]
    for number, to in enumerate(recipients(count)):
        yield SendRequest(id=f"{run}-{number}", from_phone_id=PHONE, to=to, content=CONTENT)


async def via_send_many(url: str, count: int, concurrency: int) -> None:
    """Send the batch with ``send_many``; every item must succeed."""
    failed = 0
    async with Chatmaid(base_url=url, rate_limit=None) as client:
        async for result in client.messages.send_many(batch(count), concurrency=concurrency):
            failed += not result.ok
    _check(failed)


async def via_raw_aiohttp(url: str, count: int, concurrency: int) -> None:
    """Post the same messages with plain aiohttp workers sharing one lazy input."""
    key = os.environ["CHATMAID_API_KEY"]
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    items = recipients(count)
    failed = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failed
        for to in items:
            body = {"fromPhoneId": PHONE, "to": to, "content": CONTENT}
            body["idempotencyKey"] = str(uuid.uuid4())
            async with session.post(url + SEND, json=body) as response:
                await response.json()
                failed += response.status >= 300

    async with aiohttp.ClientSession(headers=headers) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    _check(failed)


def _check(failed: int) -> None:
    # A failing send is not comparable with a successful one: the benchmark stops.
    if failed:
        raise RuntimeError(f"{failed} sends failed")


CLIENTS = {SDK: via_send_many, BASELINE: via_raw_aiohttp}


def child(args: argparse.Namespace) -> None:
    """The child side: one batch, then its figures as JSON on stdout."""
    send = CLIENTS[args.child]
    cpu_before, started = cpu_seconds(), time.perf_counter()
    asyncio.run(send(args.url, args.count, args.concurrency))
    wall = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    figures = {
        "per_second": args.count / wall,
        "cpu_us_per_message": cpu / args.count * 1e6,
        "peak_rss_mb": peak_rss_mb(),
    }
    print(json.dumps(figures))


def run_child(client: str, url: str, key: str, count: int, concurrency: int) -> dict[str, float]:
    """One batch in a fresh process (the key travels in the environment, not in argv)."""
    argv = [__file__, "--child", client, "--url", url]
    argv += ["--count", str(count), "--concurrency", str(concurrency)]
    completed = subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        check=True,
        timeout=CHILD_TIMEOUT,
        env={**os.environ, "CHATMAID_API_KEY": key},
    )
    figures: dict[str, float] = json.loads(completed.stdout.splitlines()[-1])
    return figures


def run_on_fresh_sandbox(client: str, count: int, args: argparse.Namespace) -> dict[str, float]:
    """One batch against a sandbox of its own.

    A sandbox that already stores a batch answers the next one faster (it has grown its
    tables, and its garbage collector runs less often on a larger heap), so sharing one
    would favour whichever client runs second.
    """
    with sandbox_server() as (url, key, _):
        return run_child(client, url, key, count, args.concurrency)


def bench_size(count: int, args: argparse.Namespace) -> dict[str, Any]:
    """``args.runs`` rounds of both clients at one size, each run on a fresh sandbox."""
    rounds = []
    for number in range(args.runs):
        order = [SDK, BASELINE] if number % 2 == 0 else [BASELINE, SDK]
        rounds.append({client: run_on_fresh_sandbox(client, count, args) for client in order})
        print(f"  {count:>7,} round {number + 1}: {_brief(rounds[-1])}", file=sys.stderr)

    def figure(client: str, field: str) -> float:
        return median(r[client][field] for r in rounds)

    def ratio(field: str) -> float:
        return median(r[SDK][field] / r[BASELINE][field] for r in rounds)

    return {
        "count": count,
        "clients": {
            client: {field: figure(client, field) for field in rounds[0][client]}
            for client in (SDK, BASELINE)
        },
        "throughput_ratio": ratio("per_second"),
        "cpu_ratio": ratio("cpu_us_per_message"),
        "rounds": rounds,
    }


def _brief(round_: dict[str, dict[str, float]]) -> str:
    return "  ".join(
        f"{client} {figures['per_second']:6.0f}/s {figures['peak_rss_mb']:5.1f} MB"
        for client, figures in round_.items()
    )


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Every size; then whether the peak stayed flat and small."""
    sizes = [bench_size(count, args) for count in args.sizes]
    peaks = [size["clients"][SDK]["peak_rss_mb"] for size in sizes]
    spread = max(peaks) / min(peaks) - 1
    return {
        "config": {k: v for k, v in vars(args).items() if k in ("sizes", "runs", "concurrency")},
        "machine": machine(),
        "sizes": sizes,
        "rss_spread": spread,
        "pass": {"rss_flat": spread <= RSS_SPREAD_MAX, "rss_small": max(peaks) < RSS_LIMIT_MB},
    }


def markdown(result: dict[str, Any]) -> str:
    """The result as the table RESULTS.md shows."""
    rows = []
    for size in result["sizes"]:
        sdk, raw = size["clients"][SDK], size["clients"][BASELINE]
        rows.append(
            (
                f"{size['count']:,}",
                f"{sdk['per_second']:,.0f}",
                f"{raw['per_second']:,.0f}",
                f"**{size['throughput_ratio']:.2f}**",
                f"**{size['cpu_ratio']:.2f}**",
                f"{sdk['peak_rss_mb']:.1f}",
                f"{raw['peak_rss_mb']:.1f}",
            )
        )
    headers = (
        "items",
        "send_many msg/s",
        "raw aiohttp msg/s (baseline)",
        "throughput vs baseline",
        "client CPU/msg vs baseline",
        "send_many peak RSS MB",
        "raw aiohttp peak RSS MB",
    )
    config, verdict = result["config"], result["pass"]
    return "\n".join(
        [
            f"Pacing off, {config['concurrency']} in flight, against the sandbox in its own "
            f"process; every run in a fresh client process, median of {config['runs']} rounds. "
            f"Peak RSS across sizes differs by {result['rss_spread']:.1%} (target ≤ "
            f"{RSS_SPREAD_MAX:.0%}: {_mark(verdict['rss_flat'])}; under {RSS_LIMIT_MB:.0f} MB: "
            f"{_mark(verdict['rss_small'])}).",
            "",
            markdown_table(headers, rows),
        ]
    )


def _mark(passed: bool) -> str:
    return "met" if passed else "NOT met"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--child`` and its arguments are internal)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[10_000, 100_000],
        help="comma-separated batch sizes",
    )
    parser.add_argument("--runs", type=int, default=5, help="rounds per size (median)")
    parser.add_argument("--concurrency", type=int, default=64, help="sends in flight")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", choices=sorted(CLIENTS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table (or, as a child, one batch)."""
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    result = bench(args)
    print(markdown(result))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
