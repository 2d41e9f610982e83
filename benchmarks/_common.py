"""What the benchmark scripts share: statistics, CPU and memory readings, machine facts, servers.

The machines these run on are shared and noisy, so the steady figure is CPU time
(``getrusage``), not wall time, and every script reports medians of several runs. Servers run in
child processes so the client's CPU reading holds the client alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import importlib.metadata
import itertools
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
READY_TIMEOUT = 30.0
PACKAGES = ("chatmaid-async", "aiohttp", "attrs", "cattrs", "tenacity", "httpx", "uvloop")
# A send answer shaped like the API's (contract §4.1), so decoding costs what it costs in use.
MESSAGE_TEMPLATE = {
    "from": "+15550100000",
    "isGroup": False,
    "groupId": None,
    "mediaUrls": [],
    "environment": "test",
    "status": "sent",
    "errorCode": None,
    "errorMessage": None,
    "createdAt": "2026-01-01T00:00:00.000Z",
    "sentAt": "2026-01-01T00:00:00.000Z",
    "deliveredAt": None,
    "readAt": None,
    "failedAt": None,
}


def median(values: Iterable[float]) -> float:
    """The median; one place so every script rounds the same way."""
    return float(statistics.median(list(values)))


def cpu_seconds() -> float:
    """User plus system CPU seconds this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (Linux reports ru_maxrss in KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024 / 1024
    return kib * scale


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds another process has used (Linux only; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Fields 14 and 15 of /proc/PID/stat (utime, stime) sit at 11 and 12 after the name.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    """Where and with what a result was measured."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: _version(name) for name in PACKAGES},
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        match = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        if match:
            return match[1].strip()
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def write_json(path: Path | None, result: dict[str, Any]) -> None:
    """Write a script's result where run_all asked for it (``--json``)."""
    if path is not None:
        path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def markdown_table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None
) -> str:
    """A markdown table; ``align`` has an ``l`` or ``r`` per column (default: figures after a
    left-aligned first column)."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = {"l": "---", "r": "---:"}
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(rule[side] for side in align) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


@contextlib.contextmanager
def child_server(argv: Sequence[str], ready_marker: str) -> Iterator[tuple[str, int]]:
    """Start a server process; yield the output up to ``ready_marker`` and its pid.

    The child's stdout is read line by line until the marker shows, so the caller can parse
    the URL (and key) it printed. The child is terminated on exit, whatever happened.
    """
    process = subprocess.Popen(
        [sys.executable, *argv], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    assert process.stdout is not None
    try:
        banner = _read_until(process, ready_marker)
        yield banner, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _read_until(process: subprocess.Popen[str], marker: str) -> str:
    # A server that dies or hangs before it is ready must fail the benchmark, not stall it.
    assert process.stdout is not None
    banner = ""
    with _alarm(READY_TIMEOUT):
        while marker not in banner:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"the server exited before it was ready: {banner!r}")
            banner += line
    return banner


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    import signal

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"no ready line within {seconds:g}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def minimal_server() -> Iterator[tuple[str, int]]:
    """A bare aiohttp server answering POST /v1/messages/send; yields its URL and pid."""
    argv = [str(BENCHMARKS / "_common.py"), "serve-minimal"]
    with child_server(argv, "listening on") as (banner, pid):
        match = re.search(r"listening on (\S+)", banner)
        assert match, banner
        yield match[1], pid


@contextlib.contextmanager
def sandbox_server() -> Iterator[tuple[str, str, int]]:
    """The SDK's sandbox in its own process; yields its URL, its unlimited test key and pid."""
    argv = [str(BENCHMARKS / "_common.py"), "serve-sandbox"]
    with child_server(argv, "test key:") as (banner, pid):
        url = re.search(r"listening on (\S+)", banner)
        key = re.search(r"test key:\s+(\S+)", banner)
        assert url, banner
        assert key, banner
        yield url[1], key[1], pid


def serve_sandbox() -> None:
    """Run the sandbox until terminated (the child side of :func:`sandbox_server`).

    The same server as ``python -m chatmaid_async.sandbox``, on uvloop when installed: the
    sandbox is the slower side of a batch benchmark, and the faster it answers, the more the
    figures say about the client.
    """
    from chatmaid_async.sandbox import SandboxReady, serve

    def announce(ready: SandboxReady) -> None:
        # A throwaway key of a throwaway server, handed to the parent through a pipe.
        print(f"sandbox listening on {ready.base_url}", flush=True)
        print(f"test key: {ready.api_key}", flush=True)

    _run_fast(serve("127.0.0.1", 0, on_ready=announce, phone_number="+15550100000"))


def _run_fast(main: Coroutine[Any, Any, None]) -> None:
    # Servers are cheap on purpose: uvloop when present, so the client stays the bottleneck.
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def serve_minimal() -> None:
    """Run the minimal server until terminated (the child side of :func:`minimal_server`)."""
    from aiohttp import web

    ids = itertools.count(1)

    async def send(request: web.Request) -> web.Response:
        body = await request.json()
        message = {
            "id": f"msg_{next(ids):024d}",
            "to": body["to"],
            "content": body.get("content"),
            **MESSAGE_TEMPLATE,
        }
        text = json.dumps({"success": True, "data": message}, separators=(",", ":"))
        return web.Response(status=201, text=text, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/messages/send", send)
        # No signal handlers: SIGTERM from the parent ends the process at once, quietly.
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"minimal server listening on http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    _run_fast(main())


if __name__ == "__main__":
    {"serve-minimal": serve_minimal, "serve-sandbox": serve_sandbox}[sys.argv[1]]()
