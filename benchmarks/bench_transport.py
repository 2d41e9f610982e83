"""Transport overhead: ``client.messages.send`` against a hand-written aiohttp post.

A minimal aiohttp server runs in a child process (uvloop when installed), so this process's CPU
reading is the client's alone. In each round every variant sends ``--requests`` messages with
``--concurrency`` in flight, pacing off, after a warm-up that opens its connections. The sends
come in bursts that take turns with the other variants on the same event loop, so all meet the
same load, and each figure is compared with the baseline of the same round:

- ``aiohttp``: ``ClientSession.post`` of the same JSON with a uuid4 idempotency key, then
  ``await resp.json()`` (the baseline);
- ``chatmaid_async``: ``client.messages.send`` (``rate_limit=None``);
- ``httpx``: the same post with ``httpx.AsyncClient`` (reference);
- the aiohttp baseline and the SDK again on uvloop (reference; compared with the same
  baseline on asyncio).

CPU per request (``getrusage``) is the steady figure on shared cores; throughput is noisier.
``--profile`` runs the SDK once under cProfile instead and prints where its time goes.

Usage::

    python benchmarks/bench_transport.py [--runs 7] [--requests 5000] [--concurrency 64]
                                         [--json results.json] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import importlib.util
import pstats
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    cpu_seconds,
    machine,
    markdown_table,
    median,
    minimal_server,
    process_cpu_seconds,
    write_json,
)

from chatmaid_async import Chatmaid

KEY = "sk_test_benchmark0000000000000000"
PHONE = "+15550100000"
TO = "+15557654321"
CONTENT = "Hello from the transport benchmark"
SEND = "/v1/messages/send"
BASELINE = "aiohttp"
SDK = "chatmaid_async"
CPU_RATIO_MAX = 1.2
THROUGHPUT_RATIO_MIN = 0.9

Sender = Callable[[], Awaitable[None]]
Client = Callable[[str], AbstractAsyncContextManager[Sender]]


@asynccontextmanager
async def raw_aiohttp(url: str) -> AsyncIterator[Sender]:
    """The baseline: what a user would write by hand with aiohttp."""
    headers = {"Authorization": f"Bearer {KEY}", "Accept": "application/json"}
    endpoint = url + SEND
    async with aiohttp.ClientSession(headers=headers) as session:

        async def send() -> None:
            body = {"fromPhoneId": PHONE, "to": TO, "content": CONTENT}
            body["idempotencyKey"] = str(uuid.uuid4())
            async with session.post(endpoint, json=body) as response:
                await response.json()
                _check(response.status)

        yield send


@asynccontextmanager
async def chatmaid(url: str) -> AsyncIterator[Sender]:
    """The SDK with pacing off, as a batch job would run it."""
    async with Chatmaid(KEY, base_url=url, rate_limit=None) as client:

        async def send() -> None:
            await client.messages.send(PHONE, TO, CONTENT)

        yield send


@asynccontextmanager
async def raw_httpx(url: str) -> AsyncIterator[Sender]:
    """The same post with httpx, for reference."""
    import httpx

    headers = {"Authorization": f"Bearer {KEY}", "Accept": "application/json"}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    endpoint = url + SEND
    async with httpx.AsyncClient(headers=headers, limits=limits) as client:

        async def send() -> None:
            body = {"fromPhoneId": PHONE, "to": TO, "content": CONTENT}
            body["idempotencyKey"] = str(uuid.uuid4())
            response = await client.post(endpoint, json=body)
            response.json()
            _check(response.status_code)

        yield send


# Reference clients too slow to send the full count in a reasonable time, and their count.
FEWER_REQUESTS = {"httpx": 1000}
# Each variant's sends in a round come in this many bursts, taking turns with the others.
BURSTS = 10


def _check(status: int) -> None:
    # A server error would make the figures meaningless, so it stops the benchmark.
    if status != 201:
        raise RuntimeError(f"the minimal server answered {status}")


# name -> (client, event loop)
VARIANTS: dict[str, tuple[Client, str]] = {
    BASELINE: (raw_aiohttp, "asyncio"),
    SDK: (chatmaid, "asyncio"),
    "httpx": (raw_httpx, "asyncio"),
    "aiohttp + uvloop": (raw_aiohttp, "uvloop"),
    "chatmaid_async + uvloop": (chatmaid, "uvloop"),
}


async def drive(send: Sender, count: int, concurrency: int) -> None:
    """``count`` sends by ``concurrency`` workers, each starting a send as its last one ends."""
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await send()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class Tally:
    """One variant's sends in a round, added up burst by burst."""

    def __init__(self) -> None:
        self.requests = 0
        self.cpu = 0.0
        self.wall = 0.0
        self.server_cpu: float | None = 0.0

    async def burst(self, send: Sender, count: int, concurrency: int, server_pid: int) -> None:
        """Time ``count`` sends and add them to the tally."""
        server_before = process_cpu_seconds(server_pid)
        cpu_before, started = cpu_seconds(), time.perf_counter()
        await drive(send, count, concurrency)
        self.wall += time.perf_counter() - started
        self.cpu += cpu_seconds() - cpu_before
        self.requests += count

        server_after = process_cpu_seconds(server_pid)
        if server_before is None or server_after is None or self.server_cpu is None:
            self.server_cpu = None
        else:
            self.server_cpu += server_after - server_before

    def figures(self) -> dict[str, float | None]:
        """CPU per request, requests per second and the server's CPU share."""
        share = None if self.server_cpu is None else self.server_cpu / self.wall
        return {
            "cpu_us_per_request": self.cpu / self.requests * 1e6,
            "requests_per_second": self.requests / self.wall,
            "server_cpu_share": share,
        }


async def measure_group(
    clients: dict[str, Client], url: str, server_pid: int, args: argparse.Namespace
) -> dict[str, dict]:
    """One round of the variants that share an event loop, in interleaved bursts.

    Load on a shared machine drifts within seconds. Each variant's sends come in ``BURSTS``
    bursts, taking turns with the others (forwards, then backwards), so every variant meets
    the same conditions and their ratios hold still far better than with one run each.
    """
    async with contextlib.AsyncExitStack() as stack:
        senders = {
            name: await stack.enter_async_context(client(url)) for name, client in clients.items()
        }
        for send in senders.values():
            await drive(send, args.warmup, args.concurrency)
        gc.collect()

        tallies = {name: Tally() for name in senders}
        for number in range(BURSTS):
            order = list(senders) if number % 2 == 0 else list(reversed(senders))
            for name in order:
                count = requests_for(name, args) // BURSTS
                await tallies[name].burst(senders[name], count, args.concurrency, server_pid)
    return {name: tally.figures() for name, tally in tallies.items()}


def requests_for(name: str, args: argparse.Namespace) -> int:
    """Sends per round for one variant (fewer for a reference too slow for the full count)."""
    return min(args.requests, FEWER_REQUESTS.get(name, args.requests))


def run_on(loop: str, coroutine: Coroutine[Any, Any, dict]) -> dict:
    """Run a coroutine on a fresh asyncio or uvloop event loop."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def available_variants() -> dict[str, tuple[Client, str]]:
    """Every variant whose optional package (httpx, uvloop) is installed."""
    variants = dict(VARIANTS)
    for name, module in (("httpx", "httpx"), ("uvloop", "uvloop")):
        try:
            __import__(module)
        except ImportError:
            variants = {k: v for k, v in variants.items() if name not in k}
    return variants


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Every variant, ``args.runs`` rounds; a round measures each event loop's group."""
    variants = available_variants()
    groups: dict[str, dict[str, Client]] = {}
    for name, (client, loop) in variants.items():
        groups.setdefault(loop, {})[name] = client

    rounds: list[dict[str, dict]] = []
    with minimal_server() as (url, server_pid):
        for number in range(args.runs):
            rounds.append({})
            for loop, clients in groups.items():
                rounds[-1].update(run_on(loop, measure_group(clients, url, server_pid, args)))
            for name in variants:
                brief = _brief(rounds[-1][name])
                print(f"  round {number + 1} {name:24} {brief}", file=sys.stderr)
    return summarize(list(variants), rounds, args)


def summarize(names: list[str], rounds: list[dict[str, dict]], args: argparse.Namespace) -> dict:
    """Medians per variant, and ratios to the baseline paired round by round."""
    summary = {}
    for name in names:
        runs = [round_[name] for round_ in rounds]
        shares = [run["server_cpu_share"] for run in runs if run["server_cpu_share"] is not None]
        summary[name] = {
            "cpu_us_per_request": median(run["cpu_us_per_request"] for run in runs),
            "requests_per_second": median(run["requests_per_second"] for run in runs),
            **paired_ratios(rounds, name, BASELINE),
            "server_cpu_share": median(shares) if shares else None,
        }
    sdk = summary[SDK]
    uvloop_pair = (f"{SDK} + uvloop", f"{BASELINE} + uvloop")
    same_loop = paired_ratios(rounds, *uvloop_pair) if set(uvloop_pair) <= set(names) else None
    return {
        "config": {k: v for k, v in vars(args).items() if k not in ("json", "profile", "top")},
        "machine": machine(),
        "variants": summary,
        "rounds": rounds,
        "targets": {"cpu_ratio_max": CPU_RATIO_MAX, "throughput_ratio_min": THROUGHPUT_RATIO_MIN},
        "pass": {
            "cpu": sdk["cpu_ratio"] <= CPU_RATIO_MAX,
            "throughput": sdk["throughput_ratio"] >= THROUGHPUT_RATIO_MIN,
        },
        "uvloop_sdk_vs_uvloop_baseline": same_loop,
        "notes": notes(names, args, same_loop),
    }


def paired_ratios(rounds: list[dict[str, dict]], name: str, baseline: str) -> dict[str, float]:
    """Median CPU and throughput ratios of ``name`` to ``baseline``, round by round."""

    def ratio(field: str) -> float:
        return median(r[name][field] / r[baseline][field] for r in rounds)

    return {
        "cpu_ratio": ratio("cpu_us_per_request"),
        "throughput_ratio": ratio("requests_per_second"),
    }


def notes(
    names: list[str], args: argparse.Namespace, same_loop: dict[str, float] | None
) -> list[str]:
    """What a reader needs to read the reference rows right."""
    found = []
    if same_loop is not None:
        found.append(
            "The uvloop rows are compared with the asyncio baseline; against `aiohttp + uvloop` "
            f"the SDK on uvloop measures {same_loop['cpu_ratio']:.2f}× the CPU and "
            f"{same_loop['throughput_ratio']:.2f}× the throughput."
        )
    for name, count in FEWER_REQUESTS.items():
        if name in names and count < args.requests:
            found.append(
                f"{name}: {count:,} sends per run (it is too slow for {args.requests:,})."
            )
    if "httpx" in names and importlib.util.find_spec("sniffio") is None:
        # httpcore 1.0 tries `import sniffio` on every lock; without it, each try walks sys.path.
        found.append(
            "httpx: sniffio is not installed here (anyio 4.16 no longer needs it), and httpcore "
            "tries to import it several times per request; a failed import searches sys.path "
            "each time, which is much of httpx's cost in this table."
        )
    return found


def markdown(result: dict[str, Any]) -> str:
    """The result as the table RESULTS.md shows."""
    config = result["config"]
    rows = []
    for name, figures in result["variants"].items():
        share = figures["server_cpu_share"]
        rows.append(
            (
                name + (" (baseline)" if name == BASELINE else ""),
                f"{figures['cpu_us_per_request']:.0f}",
                f"**{figures['cpu_ratio']:.2f}**",
                f"{figures['requests_per_second']:,.0f}",
                f"**{figures['throughput_ratio']:.2f}**",
                "n/a" if share is None else f"{share:.0%}",
            )
        )
    headers = (
        "client",
        "CPU µs/request",
        "CPU vs baseline",
        "requests/s",
        "throughput vs baseline",
        "server CPU busy",
    )
    verdict = result["pass"]
    return "\n".join(
        [
            f"{config['requests']:,} sends, {config['concurrency']} in flight, pacing off, "
            f"against a minimal aiohttp server in its own process; median of "
            f"{config['runs']} rounds, ratios paired within each round. Targets for "
            f"chatmaid_async: CPU ≤ {CPU_RATIO_MAX}× ({_mark(verdict['cpu'])}), "
            f"throughput ≥ {THROUGHPUT_RATIO_MIN}× ({_mark(verdict['throughput'])}).",
            "",
            markdown_table(headers, rows),
            *(
                ["", *(f"- {note}" for note in result.get("notes", []))]
                if result.get("notes")
                else []
            ),
        ]
    )


def _mark(passed: bool) -> str:
    return "met" if passed else "NOT met"


def _brief(run: dict) -> str:
    return f"{run['cpu_us_per_request']:6.0f} µs CPU/request {run['requests_per_second']:7.0f}/s"


def profile(args: argparse.Namespace, client: Client = chatmaid) -> None:
    """Run the SDK once under cProfile and print the top costs in µs per request."""
    profiler = cProfile.Profile()

    async def profiled(url: str) -> None:
        async with client(url) as send:
            await drive(send, args.warmup, args.concurrency)
            profiler.enable()
            await drive(send, args.requests, args.concurrency)
            profiler.disable()

    with minimal_server() as (url, _):
        asyncio.run(profiled(url))
    entries = profile_entries(pstats.Stats(profiler), args.requests)
    total = sum(entry[1] for entry in entries)
    print(f"cProfile, {args.requests:,} sends: {total:.0f} µs/request in all (its own overhead")
    print("inflates every figure; compare them with each other, not with the benchmark)")
    sections = (
        ("top by own time", entries),
        ("the SDK's own functions by own time", [e for e in entries if _is_sdk(e[0])]),
        ("top by cumulative time", sorted(entries, key=lambda entry: entry[2], reverse=True)),
    )
    for title, rows in sections:
        print(f"\n== {title}, µs per request ==")
        for where, own, cumulative, calls in rows[: args.top]:
            print(f"{own:7.1f} own {cumulative:8.1f} cum {calls:6.2f} calls  {where}")


def _is_sdk(where: str) -> bool:
    # Generated attrs and cattrs code for the SDK's models counts as the SDK's.
    return where.startswith("chatmaid_async") or "chatmaid_async." in where


def profile_entries(stats: pstats.Stats, requests: int) -> list[tuple[str, float, float, float]]:
    """(function, own µs, cumulative µs, calls) per request, costliest own time first."""
    entries = []
    for (file, line, function), figures in stats.stats.items():  # type: ignore[attr-defined]
        calls, _, own, cumulative = figures[:4]
        where = f"{_short(file)}:{line}({function})"
        per_request = (own / requests * 1e6, cumulative / requests * 1e6, calls / requests)
        entries.append((where, *per_request))
    return sorted(entries, key=lambda entry: entry[1], reverse=True)


def _short(file: str) -> str:
    # The SDK's modules keep their package path, so its own rows are easy to pick out.
    path = Path(file)
    if "chatmaid_async" in path.parts:
        return "/".join(path.parts[path.parts.index("chatmaid_async") :])
    return "/".join(path.parts[-2:]) if len(path.parts) >= 2 else file


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="rounds (median)")
    parser.add_argument("--requests", type=int, default=5000, help="sends per timed run")
    parser.add_argument("--concurrency", type=int, default=64, help="sends in flight")
    parser.add_argument("--warmup", type=int, default=500, help="untimed sends first")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--profile", action="store_true", help="profile the SDK instead")
    parser.add_argument("--top", type=int, default=25, help="rows per profile section")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or the profile) and print the table."""
    args = parse_args(argv)
    if args.profile:
        profile(args)
        return
    result = bench(args)
    print(markdown(result))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
