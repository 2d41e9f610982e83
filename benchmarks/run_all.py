"""Run every benchmark and rewrite ``benchmarks/RESULTS.md`` (what ``nox -s bench`` runs).

Each benchmark runs as its own process with a timeout and writes JSON; one that fails, times
out or cannot run here is recorded as such in RESULTS.md, and the others still run. The Redis
benchmark runs only when Redis answers on 127.0.0.1:6379. Every figure is a median of several
runs, compared with a baseline measured in the same run.

Usage::

    python benchmarks/run_all.py [--quick] [--only transport,import] [--output RESULTS.md]

``--quick`` (fewer runs, smaller batches; about five minutes) is for checking the scripts, not
for publishing: RESULTS.md says when it was used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import BENCHMARKS, machine, markdown_table

RESULTS = BENCHMARKS / "RESULTS.md"
REDIS_ADDRESS = ("127.0.0.1", 6379)
_SECRET = re.compile(r"\b(sk_(?:test|live)_|whsec_)\w+")


@dataclass
class Benchmark:
    """One script, the arguments of a full and of a quick run, and how to read its output."""

    name: str
    title: str
    script: str
    about: str
    full: list[str]
    quick: list[str]
    timeout: float
    stdout: str = "markdown"  # or "text": shown as a code block
    needs: Callable[[], str | None] = lambda: None  # why it cannot run here, or None


@dataclass
class Outcome:
    """What one benchmark run produced."""

    benchmark: Benchmark
    status: str  # ok, failed, timed out, skipped
    seconds: float = 0.0
    argv: list[str] = field(default_factory=list)
    stdout: str = ""
    detail: str = ""
    data: dict[str, Any] | None = None


def _script_present(script: str) -> Callable[[], str | None]:
    return lambda: None if (BENCHMARKS / script).exists() else f"{script} is not in this checkout"


def _redis_answers() -> str | None:
    if not (BENCHMARKS / "bench_redis_limiter.py").exists():
        return "bench_redis_limiter.py is not in this checkout"
    try:
        with socket.create_connection(REDIS_ADDRESS, timeout=1.0) as connection:
            connection.sendall(b"PING\r\n")
            answered = connection.recv(16).startswith(b"+PONG")
    except OSError:
        answered = False
    return None if answered else "no Redis answering on 127.0.0.1:6379"


BENCHMARKS_TO_RUN = [
    Benchmark(
        name="transport",
        title="Transport overhead: `client.messages.send` against raw aiohttp",
        script="bench_transport.py",
        about="Baseline: a hand-written `aiohttp.ClientSession.post` of the same JSON with a "
        "uuid4 idempotency key and `await resp.json()`, in the same process and rounds.",
        full=["--runs", "7"],
        quick=["--runs", "3"],
        timeout=900,
    ),
    Benchmark(
        name="pacing",
        title="Pacing: the SDK's limiter against plain `AsyncLimiter`",
        script="bench_pacing.py",
        about="Baseline: the limit itself (at most `limit` requests in any window; utilization "
        "is the admitted rate as a share of it) and `AsyncLimiter(N, per)` in the same run.",
        full=["--runs", "5"],
        quick=["--runs", "3", "--requests", "200"],
        timeout=900,
        needs=_script_present("bench_pacing.py"),
    ),
    Benchmark(
        name="send_many",
        title="Batch: `send_many` against raw aiohttp on the sandbox",
        script="bench_send_many.py",
        about="Baseline: raw aiohttp workers posting the same messages to the same sandbox, "
        "in the same rounds.",
        full=["--sizes", "10000,100000", "--runs", "5"],
        quick=["--sizes", "2000,20000", "--runs", "3"],
        timeout=2400,
    ),
    Benchmark(
        name="import",
        title="Import time: `import chatmaid_async` against `import aiohttp`",
        script="bench_import.py",
        about="Baseline: `import aiohttp` in a fresh interpreter, paired run by run.",
        full=["--runs", "9"],
        quick=["--runs", "5"],
        timeout=300,
    ),
    Benchmark(
        name="chaos",
        title="Chaos: `send_many` through a failing sandbox, exactly once",
        script="bench_chaos.py",
        about="A correctness check under injected faults (5xx, HTML 502s, dropped connections, "
        "latency): one run, no baseline; it fails unless every item is sent exactly once.",
        full=["--items", "20000"],
        quick=["--items", "5000"],
        timeout=900,
        stdout="text",
        needs=_script_present("bench_chaos.py"),
    ),
    Benchmark(
        name="redis",
        title="Redis limiter: what sharing a key's budget through Redis costs",
        script="bench_redis_limiter.py",
        about="Baseline: the in-process limiter (acquire + release cost) and the limit itself "
        "(429s, most requests in any window, utilization).",
        full=["--runs", "5"],
        quick=["--runs", "3"],
        timeout=900,
        needs=_redis_answers,
    ),
]


def run(benchmark: Benchmark, quick: bool, scratch: Path) -> Outcome:
    """Run one benchmark as a child process; never raises."""
    reason = benchmark.needs()
    if reason is not None:
        return Outcome(benchmark, "skipped", detail=reason)

    output = scratch / f"{benchmark.name}.json"
    arguments = benchmark.quick if quick else benchmark.full
    argv = [sys.executable, str(BENCHMARKS / benchmark.script), *arguments, "--json", str(output)]
    shown = ["python", f"benchmarks/{benchmark.script}", *arguments]
    print(f"-- {benchmark.name}: {' '.join(shown)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    # Its own process group, so a timeout also ends the servers and clients it started.
    child = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = child.communicate(timeout=benchmark.timeout)
    except subprocess.TimeoutExpired:
        _end_group(child)
        seconds = time.monotonic() - started
        detail = f"no result within {benchmark.timeout:.0f} s"
        return Outcome(benchmark, "timed out", seconds, shown, detail=detail)

    seconds = time.monotonic() - started
    data = json.loads(output.read_text()) if output.exists() else None
    status = "ok" if child.returncode == 0 else "failed"
    detail = "" if status == "ok" else _tail(stderr)
    return Outcome(benchmark, status, seconds, shown, _redact(stdout), detail, data)


def _end_group(child: subprocess.Popen[str]) -> None:
    for signum, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signum)
        try:
            child.communicate(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(text: str, lines: int = 15) -> str:
    return _redact("\n".join(text.strip().splitlines()[-lines:]))


def _redact(text: str) -> str:
    # Sandbox keys are throwaway, but nothing that looks like a key goes into a published file.
    return _SECRET.sub(lambda match: match[1] + "…", text)


def summary(outcomes: dict[str, Outcome]) -> str:
    """The headline table: each figure, its baseline, the target and whether it was met."""
    rows: list[tuple[str, str, str, str]] = []
    for name, render in SUMMARIES.items():
        outcome = outcomes.get(name)
        if outcome is None or outcome.data is None:
            continue
        try:
            rows += render(outcome.data)
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            rows.append((name, "could not read its results", "", ""))
    headers = ("measure", "result (ratio to the baseline of the same run)", "target", "met")
    return markdown_table(headers, rows, align="llll")


def _transport_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    sdk, raw = data["variants"]["chatmaid_async"], data["variants"]["aiohttp"]
    targets, verdict = data["targets"], data["pass"]
    return [
        (
            "send: client CPU per request",
            f"{sdk['cpu_us_per_request']:.0f} µs vs {raw['cpu_us_per_request']:.0f} µs "
            f"raw aiohttp: **{sdk['cpu_ratio']:.2f}×**",
            f"≤ {targets['cpu_ratio_max']}×",
            _yes(verdict["cpu"]),
        ),
        (
            "send: throughput",
            f"{sdk['requests_per_second']:,.0f}/s vs {raw['requests_per_second']:,.0f}/s: "
            f"**{sdk['throughput_ratio']:.2f}×**",
            f"≥ {targets['throughput_ratio_min']}×",
            _yes(verdict["throughput"]),
        ),
    ]


def _send_many_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for size in data["sizes"]:
        sdk, raw = size["clients"]["send_many"], size["clients"]["raw aiohttp"]
        rows.append(
            (
                f"send_many, {size['count']:,} items: throughput",
                f"{sdk['per_second']:,.0f}/s vs {raw['per_second']:,.0f}/s: "
                f"**{size['throughput_ratio']:.2f}×**",
                "(reported)",
                "",
            )
        )
    peaks = ", ".join(
        f"{size['clients']['send_many']['peak_rss_mb']:.1f} MB at {size['count']:,}"
        for size in data["sizes"]
    )
    verdict = data["pass"]
    rows.append(
        (
            "send_many: client peak RSS",
            f"{peaks} (spread {data['rss_spread']:.1%})",
            "flat within 10%, < 150 MB",
            _yes(verdict["rss_flat"] and verdict["rss_small"]),
        )
    )
    return rows


def _import_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    times = data["import_ms"]
    loaded = ", ".join(data["optional_loaded"]) or "none"
    return [
        (
            "import time",
            f"{times['chatmaid_async']:.0f} ms vs {times['aiohttp']:.0f} ms `import aiohttp`: "
            f"**{data['ratio']:.2f}×** (CPU {data['cpu_ratio']:.2f}×); optional parts loaded: "
            f"{loaded}",
            f"≤ {data['ratio_max']}×, none loaded",
            _yes(data["pass"]),
        )
    ]


def _pacing_rows(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    limit = data["config"]["limit"]
    rows = []
    for result in data["results"]:
        if "ours" not in result["limiter"]:
            continue
        median = result["median"]
        baseline = _pacing_baseline(data, result["model"])
        rows.append(
            (
                f"pacing, {result['model']} window: {result['limiter']}",
                f"{median['rejected']:g} rejected, max {median['max_in_window']:g} in a window "
                f"(**{median['max_in_window'] / limit:.2f}×** the limit), utilization "
                f"**{median['utilization']:.2f}**; AsyncLimiter: {baseline}",
                "0 rejected, ≤ 1.00× the limit",
                _yes(median["rejected"] == 0 and median["max_in_window"] <= limit),
            )
        )
    return rows


def _pacing_baseline(data: dict[str, Any], model: str) -> str:
    for result in data["results"]:
        if result["model"] == model and "AsyncLimiter" in result["limiter"]:
            median = result["median"]
            return (
                f"{median['rejected']:g} rejected, max {median['max_in_window']:g}, "
                f"utilization {median['utilization']:.2f}"
            )
    return "not measured"


def _yes(passed: bool) -> str:
    return "yes" if passed else "**no**"


SUMMARIES: dict[str, Callable[[dict[str, Any]], list[tuple[str, str, str, str]]]] = {
    "transport": _transport_rows,
    "send_many": _send_many_rows,
    "pacing": _pacing_rows,
    "import": _import_rows,
}


def document(outcomes: dict[str, Outcome], facts: dict[str, Any], args: argparse.Namespace) -> str:
    """RESULTS.md as a whole."""
    command = "python benchmarks/run_all.py" + (" --quick" if args.quick else "")
    mode = (
        "**quick mode: fewer runs and smaller batches; not for publishing.**"
        if args.quick
        else "Each figure is the median of at least five runs unless its section says otherwise."
    )
    parts = [
        "# Benchmark results",
        "",
        f"Written by `{command}` (`nox -s bench`) on {facts['date']}. {mode} Ratios compare "
        "the SDK with a baseline measured in the same run, on the same machine; where both "
        "are measured in every round, the ratio is the median of the per-round ratios, so it "
        "need not equal the ratio of the two medians shown beside it. On shared cores the "
        "steady figure is CPU time; throughput moves with whatever else the machine runs.",
        "",
        "## Machine",
        "",
        _machine_table(facts),
        "",
        "## Summary",
        "",
        summary(outcomes),
    ]
    for outcome in outcomes.values():
        parts += ["", *section(outcome)]
    parts += ["", "## Runs", "", _runs_table(outcomes), ""]
    return "\n".join(parts)


def _machine_table(facts: dict[str, Any]) -> str:
    packages = ", ".join(f"{name} {version}" for name, version in facts["packages"].items())
    load = " / ".join(f"{value:g}" for value in facts["load_average"])
    rows = [
        ("CPU", f"{facts['cpu']}, {facts['cores']} cores (shared)"),
        ("OS", facts["os"]),
        ("Python", facts["python"]),
        ("packages", packages),
        ("load average at start (1 / 5 / 15 min)", load),
    ]
    return markdown_table(("", ""), rows, align="ll")


def section(outcome: Outcome) -> list[str]:
    """One benchmark's section: what it compares, how to rerun it, and its table."""
    benchmark = outcome.benchmark
    lines = [f"## {benchmark.title}", "", benchmark.about, ""]
    if outcome.argv:
        lines += [f"`{' '.join(outcome.argv)}` ({outcome.seconds:.0f} s)", ""]
    if outcome.status == "skipped":
        lines += [f"**skipped**: {outcome.detail}.", ""]
    elif outcome.status != "ok":
        lines += [f"**{outcome.status}**", "", "```text", outcome.detail, "```", ""]
    if outcome.stdout.strip():
        body = outcome.stdout.strip()
        lines += [body] if benchmark.stdout == "markdown" else ["```text", body, "```"]
    return lines


def _runs_table(outcomes: dict[str, Outcome]) -> str:
    rows = [
        (name, outcome.status, f"{outcome.seconds:.0f}", _last_line(outcome.detail))
        for name, outcome in outcomes.items()
    ]
    return markdown_table(("benchmark", "status", "seconds", "note"), rows, align="llrl")


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1].replace("|", "\\|") if lines else ""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller batches")
    parser.add_argument(
        "--only",
        type=lambda text: text.split(","),
        help="comma-separated names: " + ", ".join(b.name for b in BENCHMARKS_TO_RUN),
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, write the results; the exit status says whether all ran."""
    args = parse_args(argv)
    chosen = [b for b in BENCHMARKS_TO_RUN if args.only is None or b.name in args.only]
    facts = machine()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chatmaid-bench-") as scratch:
        outcomes = {b.name: run(b, args.quick, Path(scratch)) for b in chosen}

    args.output.write_text(document(outcomes, facts, args), encoding="utf-8")
    minutes = (time.monotonic() - started) / 60
    print(f"wrote {args.output} in {minutes:.1f} min", file=sys.stderr)
    broken = [name for name, o in outcomes.items() if o.status in ("failed", "timed out")]
    for name in broken:
        print(f"  {name}: {outcomes[name].status}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
