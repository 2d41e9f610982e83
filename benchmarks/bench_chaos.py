"""Chaos benchmark: ``send_many`` through a failing sandbox, checked for exactly-once delivery.

The sandbox injects 5xx answers, HTML 502 pages, connections dropped after the send was
stored, and random latency, on the send path only. The client's pacing is off and its retries
are generous, so the run is bound by the faults and the retries, not by a rate limit. At the end
the sandbox checks that it holds exactly one message per input id (by the idempotency key each
id maps to) and the client checks that every id got exactly one successful result.

The sandbox runs in a child process by default, so client and server each get a core;
``--in-process`` serves it from the client's own event loop instead (as the test suite does).

Usage::

    python benchmarks/bench_chaos.py [--items 100000] [--concurrency 64] [--seed 1]
                                     [--error-503 0.10] [--drop-after 0.05] [--html-502 0.02]
                                     [--latency-ms 20] [--in-process] [--json results.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from chatmaid_async import Chatmaid, RetryPolicy, SendRequest
from chatmaid_async.batch import idempotency_key_for
from chatmaid_async.sandbox import Sandbox

PHONE = "+15550100000"
RECIPIENT = "+15557654321"
SEND = "/v1/messages/send"
ID_PREFIX = "chaos"
READY_TIMEOUT = 30.0
# With about 17% of attempts failing, twelve retries lose an item with odds near 1e-10.
RETRY = RetryPolicy(max_retries=12, base_delay=0.01, max_delay=0.1)


def item_ids(count: int) -> Iterator[str]:
    return (f"{ID_PREFIX}-{n}" for n in range(count))


def requests(phone: str, count: int) -> Iterator[SendRequest]:
    """The batch, made one item at a time as ``send_many`` reads it."""
    for item_id in item_ids(count):
        yield SendRequest(id=item_id, from_phone_id=phone, to=RECIPIENT, content=item_id)


def fault_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "latency": (0.0, args.latency_ms / 1000),
        "error_503": args.error_503,
        "drop_after": args.drop_after,
        "html_502": args.html_502,
        "paths": [SEND],
        "seed": args.seed,
    }


def server_report(sandbox: Sandbox, count: int) -> dict[str, Any]:
    """The sandbox's counters, and how its messages map back onto the input ids."""
    id_of_key = {idempotency_key_for(item_id): item_id for item_id in item_ids(count)}
    stored = Counter(id_of_key.get(m.idempotency_key) for m in sandbox.messages.values())
    counters = sandbox.counters
    return {
        "requests": counters.requests_total,
        "messages_created": counters.messages_created,
        "duplicates_prevented": counters.duplicates_prevented,
        "faults_by_kind": dict(counters.faults_by_kind),
        "ids_missing": sum(1 for item_id in id_of_key.values() if stored[item_id] == 0),
        "ids_stored_twice": sum(1 for item_id, n in stored.items() if item_id and n > 1),
        "messages_not_from_the_batch": stored[None],
    }


async def serve_sandbox(conn: Connection, faults: dict[str, Any], count: int) -> None:
    """Child process: serve a faulty sandbox until the client asks for the report."""
    async with Sandbox(seed=faults["seed"], status_delays=(None, None)) as sandbox:
        key = sandbox.create_key()
        phone = sandbox.add_phone(PHONE, connected=True)
        sandbox.set_faults(**faults)
        conn.send({"base_url": sandbox.base_url, "key": key, "phone": phone})
        await asyncio.to_thread(conn.recv)
        conn.send(server_report(sandbox, count))


def sandbox_process_main(conn: Connection, faults: dict[str, Any], count: int) -> None:
    asyncio.run(serve_sandbox(conn, faults, count))


@asynccontextmanager
async def sandbox_elsewhere(
    args: argparse.Namespace,
) -> AsyncIterator[tuple[dict[str, str], Any]]:
    """A sandbox in a child process; yields its address and a function returning its report."""
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(
        target=sandbox_process_main, args=(child, fault_settings(args), args.items), daemon=True
    )
    process.start()
    try:
        if not await asyncio.to_thread(parent.poll, READY_TIMEOUT):
            raise RuntimeError("the sandbox process did not start")

        async def report() -> dict[str, Any]:
            parent.send("report")
            result: dict[str, Any] = await asyncio.to_thread(parent.recv)
            return result

        yield parent.recv(), report
    finally:
        process.join(timeout=READY_TIMEOUT)
        if process.is_alive():
            process.terminate()


@asynccontextmanager
async def sandbox_here(args: argparse.Namespace) -> AsyncIterator[tuple[dict[str, str], Any]]:
    """A sandbox on this event loop."""
    faults = fault_settings(args)
    async with Sandbox(seed=args.seed, status_delays=(None, None)) as sandbox:
        address = {
            "base_url": sandbox.base_url,
            "key": sandbox.create_key(),
            "phone": sandbox.add_phone(PHONE, connected=True),
        }
        sandbox.set_faults(**faults)

        async def report() -> dict[str, Any]:
            return server_report(sandbox, args.items)

        yield address, report


async def main(args: argparse.Namespace) -> dict[str, Any]:
    serve = sandbox_here if args.in_process else sandbox_elsewhere
    async with serve(args) as (address, report):
        seen: Counter[str] = Counter()
        failed = 0
        async with Chatmaid(
            address["key"], base_url=address["base_url"], rate_limit=None, retry=RETRY
        ) as client:
            started = time.perf_counter()
            batch = requests(address["phone"], args.items)
            async for result in client.messages.send_many(batch, concurrency=args.concurrency):
                seen[result.id] += 1
                failed += not result.ok
            elapsed = time.perf_counter() - started
        server = await report()

    expected = set(item_ids(args.items))
    return {
        "items": args.items,
        "concurrency": args.concurrency,
        "faults": {k: v for k, v in fault_settings(args).items() if k != "paths"},
        "elapsed_s": round(elapsed, 2),
        "items_per_second": round(args.items / elapsed),
        "retries": server["requests"] - args.items,
        "failed_results": failed,
        "ids_without_a_result": len(expected - seen.keys()),
        "ids_with_several_results": sum(1 for n in seen.values() if n > 1),
        "results_for_unknown_ids": len(seen.keys() - expected),
        **server,
    }


def exactly_once(results: dict[str, Any]) -> bool:
    return (
        results["failed_results"] == 0
        and results["ids_without_a_result"] == 0
        and results["ids_with_several_results"] == 0
        and results["results_for_unknown_ids"] == 0
        and results["ids_missing"] == 0
        and results["ids_stored_twice"] == 0
        and results["messages_not_from_the_batch"] == 0
        and results["messages_created"] == results["items"]
    )


def report(results: dict[str, Any]) -> None:
    faults = results["faults_by_kind"]
    print(f"{results['items']:,} sends, {results['concurrency']} in flight, pacing off")
    print(f"  elapsed               {results['elapsed_s']:>10.2f} s")
    print(f"  throughput            {results['items_per_second']:>10,} items/s")
    print(f"  retries               {results['retries']:>10,}")
    for kind, count in sorted(faults.items()):
        print(f"    {kind:<19} {count:>10,}")
    print(f"  duplicates prevented  {results['duplicates_prevented']:>10,}")
    print(f"  messages created      {results['messages_created']:>10,}")
    print(f"  failed results        {results['failed_results']:>10,}")
    verdict = "yes" if exactly_once(results) else "NO"
    print(f"  exactly once          {verdict:>10}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="messages to send")
    parser.add_argument("--concurrency", type=int, default=64, help="sends in flight")
    parser.add_argument("--seed", type=int, default=1, help="fault RNG seed")
    parser.add_argument("--error-503", type=float, default=0.10, help="share of 503 answers")
    parser.add_argument("--drop-after", type=float, default=0.05, help="share dropped after")
    parser.add_argument("--html-502", type=float, default=0.02, help="share of HTML 502s")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="latency 0..this, ms")
    parser.add_argument("--in-process", action="store_true", help="serve on the client's loop")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    # One warning per retry would flood the terminal; the sandbox counts the retries instead.
    logging.getLogger("chatmaid_async").setLevel(logging.ERROR)
    outcome = asyncio.run(main(arguments))
    report(outcome)
    if arguments.json:
        arguments.json.write_text(json.dumps(outcome, indent=2) + "\n", encoding="utf-8")
    sys.exit(0 if exactly_once(outcome) else 1)
