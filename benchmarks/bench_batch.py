"""Batch benchmark: ``send_many`` throughput against raw aiohttp, and its memory as N grows.

The sandbox runs in its own process (``python -m chatmaid_async.sandbox``), with an unlimited
key, so both clients meet the same server. Both use the same in-flight limit (``--concurrency``).

- **Throughput.** ``send_many`` (pacing off) and raw aiohttp post the same ``--n`` messages,
  alternating for ``--rounds`` rounds. It reports messages per second and the SDK's share of
  raw aiohttp's rate.
- **Memory.** The peak Python allocation (tracemalloc) while ``send_many`` consumes a lazy
  input of each size in ``--memory-n``. A flat peak means the input is never materialised.

Usage::

    python benchmarks/bench_batch.py [--n 100000] [--memory-n 10000,100000] [--concurrency 32]
                                     [--rounds 1] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from chatmaid_async import Chatmaid, SendRequest

PHONE = "+15550100000"
READY_TIMEOUT = 30.0


@asynccontextmanager
async def sandbox_process() -> AsyncIterator[tuple[str, str]]:
    """A standalone sandbox on a free port; yields its base URL and its unlimited test key."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatmaid_async.sandbox", "--port", "0", "--phone", PHONE,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        banner = ""
        while "Ctrl-C" not in banner:
            line = await asyncio.wait_for(process.stdout.readline(), READY_TIMEOUT)
            if not line:
                raise RuntimeError("the sandbox process exited before it was ready")
            banner += line.decode()
        url = re.search(r"listening on (\S+)", banner)
        key = re.search(r"test key:\s+(\S+)", banner)
        if url is None or key is None:
            raise RuntimeError(f"unexpected sandbox banner: {banner!r}")
        yield url[1], key[1]
    finally:
        process.terminate()
        await process.wait()


def requests(count: int, run: str) -> Iterator[SendRequest]:
    """``count`` requests, made one at a time as they are read."""
    for n in range(count):
        yield SendRequest(
            id=f"{run}-{n}", from_phone_id=PHONE, to=f"+1555010{n % 10_000:04d}", content="hi"
        )


async def via_send_many(base_url: str, key: str, count: int, concurrency: int) -> float:
    """Seconds for ``send_many`` to send ``count`` messages, every one checked."""
    async with Chatmaid(key, base_url=base_url, rate_limit=None) as client:
        started = time.perf_counter()
        ok = 0
        items = requests(count, uuid.uuid4().hex)
        async for result in client.messages.send_many(items, concurrency=concurrency):
            ok += result.ok
        elapsed = time.perf_counter() - started
    assert ok == count, f"{count - ok} sends failed"
    return elapsed


async def via_raw_aiohttp(base_url: str, key: str, count: int, concurrency: int) -> float:
    """Seconds for plain aiohttp workers to post the same ``count`` sends."""
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    items = requests(count, uuid.uuid4().hex)
    failures = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal failures
        for item in items:
            body = {
                "fromPhoneId": item.from_phone_id,
                "to": item.to,
                "content": item.content,
                "idempotencyKey": item.id[:64],
            }
            async with http.post("/v1/messages/send", json=body) as response:
                await response.read()
                failures += response.status >= 300

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url, headers=headers, connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    assert failures == 0, f"{failures} raw posts failed"
    return elapsed


async def peak_memory(base_url: str, key: str, count: int, concurrency: int) -> int:
    """Peak bytes allocated while ``send_many`` sends ``count`` messages."""
    tracemalloc.start()
    try:
        await via_send_many(base_url, key, count, concurrency)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


async def main(args: argparse.Namespace) -> dict[str, Any]:
    async with sandbox_process() as (base_url, key):
        # One short warm-up of each, so connection setup and imports are not measured.
        await via_send_many(base_url, key, 500, args.concurrency)
        await via_raw_aiohttp(base_url, key, 500, args.concurrency)

        sdk, raw = [], []
        for _ in range(args.rounds):
            sdk.append(await via_send_many(base_url, key, args.n, args.concurrency))
            raw.append(await via_raw_aiohttp(base_url, key, args.n, args.concurrency))
        memory = {n: await peak_memory(base_url, key, n, args.concurrency) for n in args.memory_n}

    sdk_rate = args.n / statistics.median(sdk)
    raw_rate = args.n / statistics.median(raw)
    return {
        "n": args.n,
        "concurrency": args.concurrency,
        "send_many_per_second": round(sdk_rate),
        "raw_aiohttp_per_second": round(raw_rate),
        "ratio": round(sdk_rate / raw_rate, 3),
        "peak_memory_bytes": memory,
    }


def report(results: dict[str, Any]) -> None:
    print(f"{results['n']} messages, {results['concurrency']} in flight, pacing off")
    print(f"  send_many    {results['send_many_per_second']:>8,} msg/s")
    print(f"  raw aiohttp  {results['raw_aiohttp_per_second']:>8,} msg/s")
    print(f"  ratio        {results['ratio']:>8.2f}")
    for count, peak in results["peak_memory_bytes"].items():
        print(f"  peak memory at {count:>7,} items: {peak / 1e6:6.2f} MB")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="messages per throughput run")
    parser.add_argument(
        "--memory-n",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[10_000, 100_000],
        help="comma-separated sizes for the memory runs",
    )
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="throughput rounds (median)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    outcome = asyncio.run(main(arguments))
    report(outcome)
    if arguments.json:
        arguments.json.write_text(json.dumps(outcome, indent=2) + "\n", encoding="utf-8")
