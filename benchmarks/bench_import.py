"""Import time: ``import chatmaid_async`` against ``import aiohttp``, in fresh interpreters.

Each run starts new interpreters with ``-X importtime`` for both imports, in turn, and reads the
cumulative microseconds of the top-level module. The ratio is paired within each run; the
report is the median. On shared cores wall time is noisy, so the CPU time of the same children
(``RUSAGE_CHILDREN``, less an empty interpreter's) is reported beside it.

It also lists which heavy optional parts a plain ``import chatmaid_async`` loads (it should load
none of them) and the costliest modules of the SDK's own import.

Usage::

    python benchmarks/bench_import.py [--runs 9] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import REPO, machine, markdown_table, median, write_json

TARGET = "chatmaid_async"
BASELINE = "aiohttp"
RATIO_MAX = 1.3
# Optional parts that must load only when used.
OPTIONAL = (
    "chatmaid_async.sandbox",
    "chatmaid_async.cli",
    "chatmaid_async.redis_limiter",
    "chatmaid_async.webhooks",
    "tenacity",
    "redis",
    "fastapi",
    "typer",
    "rich",
)
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")
# Installed packages import from bytecode. A checkout run with PYTHONDONTWRITEBYTECODE would
# compile the SDK on every import and not aiohttp, so both get cached bytecode, kept out of the
# repository.
_ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "chatmaid-bench-pycache"),
}


def import_time(module: str) -> tuple[float, float, list[tuple[str, int, int]]]:
    """Cumulative import µs of ``module``, the child's CPU seconds, and every module's line."""
    before = _children_cpu()
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env=_ENV,
    )
    cpu = _children_cpu() - before
    modules = []
    for match in _LINE.finditer(completed.stderr):
        self_us, cumulative_us, _, name = match.groups()
        modules.append((name, int(self_us), int(cumulative_us)))
    top = next(cumulative for name, _, cumulative in reversed(modules) if name == module)
    return top, cpu, modules


def startup_cpu() -> float:
    """CPU seconds of an interpreter that imports nothing (subtracted from the others)."""
    before = _children_cpu()
    subprocess.run([sys.executable, "-c", "pass"], check=True, cwd=REPO, env=_ENV)
    return _children_cpu() - before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def loaded_optional_parts() -> list[str]:
    """Which of the optional parts ``import chatmaid_async`` pulls in."""
    probe = f"import sys, json, {TARGET}; print(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env=_ENV,
    )
    modules = set(json.loads(completed.stdout))
    return [name for name in OPTIONAL if name in modules]


def own_modules(modules: list[tuple[str, int, int]], limit: int = 8) -> list[dict[str, Any]]:
    """The SDK's costliest modules by their own (self) import time."""
    own = [entry for entry in modules if entry[0].startswith(TARGET)]
    own.sort(key=lambda entry: entry[1], reverse=True)
    return [{"module": name, "self_us": s, "cumulative_us": c} for name, s, c in own[:limit]]


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """``args.runs`` paired runs of both imports."""
    # One unmeasured import of each writes the bytecode cache.
    for module in (BASELINE, TARGET):
        import_time(module)
    runs = []
    for number in range(args.runs):
        empty = startup_cpu()
        # Alternate which goes first, so neither always meets a warmer disk cache.
        order = (BASELINE, TARGET) if number % 2 == 0 else (TARGET, BASELINE)
        measured = {module: import_time(module) for module in order}
        runs.append(
            {
                module: {"import_us": us, "cpu_ms": max(cpu - empty, 0.0) * 1e3}
                for module, (us, cpu, _) in measured.items()
            }
        )
        print(f"  run {number + 1}: {runs[-1]}", file=sys.stderr)
    _, _, modules = import_time(TARGET)
    return summarize(runs, modules, args)


def summarize(runs: list[dict[str, Any]], modules: list, args: argparse.Namespace) -> dict:
    """Medians and paired ratios."""

    def figure(module: str, field: str) -> float:
        return median(run[module][field] for run in runs)

    def ratio(field: str) -> float:
        return median(run[TARGET][field] / run[BASELINE][field] for run in runs)

    loaded = loaded_optional_parts()
    return {
        "config": {"runs": args.runs},
        "machine": machine(),
        "import_ms": {module: figure(module, "import_us") / 1e3 for module in (BASELINE, TARGET)},
        "cpu_ms": {module: figure(module, "cpu_ms") for module in (BASELINE, TARGET)},
        "ratio": ratio("import_us"),
        "cpu_ratio": ratio("cpu_ms"),
        "ratio_max": RATIO_MAX,
        "pass": ratio("import_us") <= RATIO_MAX and not loaded,
        "optional_loaded": loaded,
        "own_modules": own_modules(modules),
        "runs": runs,
    }


def markdown(result: dict[str, Any]) -> str:
    """The result as the table RESULTS.md shows."""
    rows = [
        (
            f"`import {module}`" + (" (baseline)" if module == BASELINE else ""),
            f"{result['import_ms'][module]:.0f}",
            "1.00" if module == BASELINE else f"**{result['ratio']:.2f}**",
            f"{result['cpu_ms'][module]:.0f}",
            "1.00" if module == BASELINE else f"**{result['cpu_ratio']:.2f}**",
        )
        for module in (BASELINE, TARGET)
    ]
    headers = ("import", "-X importtime ms", "vs baseline", "CPU ms", "CPU vs baseline")
    loaded = ", ".join(result["optional_loaded"]) or "none"
    own = ", ".join(
        f"{entry['module']} {entry['self_us'] / 1e3:.1f} ms" for entry in result["own_modules"][:4]
    )
    verdict = "met" if result["pass"] else "NOT met"
    return "\n".join(
        [
            f"Fresh interpreters, median of {result['config']['runs']} paired runs. Target: "
            f"at most {RATIO_MAX}× `import aiohttp` with no optional part loaded ({verdict}).",
            "",
            markdown_table(headers, rows),
            "",
            f"Optional parts loaded by `import chatmaid_async`: {loaded}. "
            f"Costliest own modules (self time): {own}.",
        ]
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="paired runs (median)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the table."""
    args = parse_args(argv)
    result = bench(args)
    print(markdown(result))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
