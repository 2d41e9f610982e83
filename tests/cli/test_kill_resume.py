"""The batch as a separate process: killed with SIGKILL and resumed, or stopped with Ctrl-C.

The sandbox runs in the test process, outside the command, so it outlives the kill and its
counters are the proof: every valid row created exactly one message.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections import Counter
from pathlib import Path

from chatmaid_async import RateLimit
from chatmaid_async.cli._batch import HEARTBEAT
from chatmaid_async.cli._options import EXIT_BATCH_FAILED, EXIT_INTERRUPTED
from chatmaid_async.sandbox import Sandbox

from .conftest import PHONE

LIMIT = RateLimit(100, 1.0)
VALID = 300
BAD = 3
CONCURRENCY = 32


def write_rows(path: Path) -> None:
    # The bad rows come last, so the resumed run is the one that records them.
    good = [f"r{n:04d},+1555010{n:04d},message {n}" for n in range(VALID)]
    bad = [f"bad{n},1555010{n:04d},no plus" for n in range(BAD)]
    path.write_text("id,to,content\n" + "\n".join(good + bad) + "\n", encoding="utf-8")


def complete_records(out: Path) -> list[dict[str, object]]:
    """Every whole item record in ``out`` (not a line cut short by the kill, nor the line
    naming the namespace)."""
    found = []
    for line in out.read_text(encoding="utf-8").splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if "id" in document:
            found.append(document)
    return found


async def start_batch(
    rows: Path, out: Path, sandbox: Sandbox, key: str, *extra: str
) -> asyncio.subprocess.Process:
    env = {**os.environ, "CHATMAID_API_KEY": key, "CHATMAID_BASE_URL": sandbox.base_url}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatmaid_async", "batch", str(rows), "--out", str(out),
        "--from", PHONE, "--rate", f"{LIMIT.requests}/{LIMIT.per:g}", "--no-progress",
        "--concurrency", str(CONCURRENCY), *extra,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def line_count(out: Path) -> int:
    return len(out.read_text(encoding="utf-8").splitlines()) if out.exists() else 0


async def wait_for_records(out: Path, count: int, process: asyncio.subprocess.Process) -> None:
    while line_count(out) < count:
        assert process.returncode is None, "the batch ended before it could be stopped"
        await asyncio.sleep(0.01)


async def test_a_batch_killed_halfway_and_resumed_sends_every_row_exactly_once(
    tmp_path: Path,
) -> None:
    rows, out = tmp_path / "rows.csv", tmp_path / "out.jsonl"
    write_rows(rows)

    async with Sandbox() as sandbox:
        sandbox.add_phone(PHONE, connected=True)
        key = sandbox.create_key(rate_limit=LIMIT)

        first = await start_batch(rows, out, sandbox, key)
        await wait_for_records(out, 120, first)
        first.kill()
        await first.communicate()
        # Let the server finish requests that arrived just before the kill.
        await asyncio.sleep(0.2)
        created_at_kill = sandbox.counters.messages_created
        recorded_at_kill = sum(1 for r in complete_records(out) if r["ok"])

        second = await start_batch(rows, out, sandbox, key, "--resume")
        stdout, stderr = await second.communicate()
        counters = sandbox.counters

    assert first.returncode == -signal.SIGKILL
    assert second.returncode == EXIT_BATCH_FAILED, stderr.decode()
    assert recorded_at_kill < VALID
    # The kill lost at most the records of the sends in flight...
    assert 0 <= created_at_kill - recorded_at_kill <= CONCURRENCY
    # ...and resending those found the messages the server already had.
    assert counters.messages_created == VALID
    assert counters.duplicates_prevented == created_at_kill - recorded_at_kill
    assert counters.rate_limited_total == 0
    records = complete_records(out)
    assert Counter(r["id"] for r in records) == Counter(
        [f"r{n:04d}" for n in range(VALID)] + [f"bad{n}" for n in range(BAD)]
    )
    assert sum(1 for r in records if r["ok"]) == VALID
    assert f"{VALID - recorded_at_kill} requests" in stdout.decode()


async def test_ctrl_c_stops_cleanly_with_what_finished_recorded(tmp_path: Path) -> None:
    rows, out = tmp_path / "rows.csv", tmp_path / "out.jsonl"
    write_rows(rows)

    async with Sandbox() as sandbox:
        sandbox.add_phone(PHONE, connected=True)
        key = sandbox.create_key(rate_limit=LIMIT)

        batch = await start_batch(rows, out, sandbox, key)
        await wait_for_records(out, 50, batch)
        batch.send_signal(signal.SIGINT)
        stdout, stderr = await batch.communicate()
        await asyncio.sleep(0.2)
        created = sandbox.counters.messages_created
        await asyncio.sleep(0.3)
        created_later = sandbox.counters.messages_created

    assert batch.returncode == EXIT_INTERRUPTED, stderr.decode()
    text = out.read_text(encoding="utf-8")
    assert text.endswith("\n")
    header, *records = [json.loads(line) for line in text.splitlines()]
    assert header == {"namespace": "rows"}
    assert len({r["id"] for r in records}) == len(records) < VALID
    # Sends stopped with the command; at most those in flight were created unrecorded.
    assert created_later == created
    assert 0 <= created - len(records) <= CONCURRENCY
    assert "Batch interrupted" in stdout.decode()
    assert "interrupted" in stderr.decode()
    assert "Traceback" not in stderr.decode()


async def test_a_run_resumed_within_a_window_waits_for_the_stopped_runs_requests(
    tmp_path: Path,
) -> None:
    # The first run fills the key's window; the resumed process, started well inside that
    # window, knows nothing of those requests but what its --out file's age tells it.
    limit = RateLimit(20, 3.0)
    rows, out = tmp_path / "rows.csv", tmp_path / "out.jsonl"
    body = [f"r{n:02d},+1555010{n:04d},message {n}" for n in range(2 * limit.requests)]
    rows.write_text("id,to,content\n" + "\n".join(body[: limit.requests]) + "\n", "utf-8")

    async with Sandbox() as sandbox:
        sandbox.add_phone(PHONE, connected=True)
        key = sandbox.create_key(rate_limit=limit)
        rate = ("--rate", f"{limit.requests}/{limit.per:g}")

        first = await start_batch(rows, out, sandbox, key, *rate)
        await first.communicate()
        rows.write_text("id,to,content\n" + "\n".join(body) + "\n", "utf-8")
        resumed = await start_batch(rows, out, sandbox, key, "--resume", *rate)
        _, stderr = await resumed.communicate()
        counters = sandbox.counters

    assert first.returncode == resumed.returncode == 0, stderr.decode()
    assert counters.messages_created == 2 * limit.requests
    assert counters.rate_limited_total == 0
    notes = " ".join(stderr.decode().split())
    waited = re.search(r"waiting ([\d.]+) s for its requests to leave the API's window", notes)
    assert waited is not None, notes
    # A window from the first run's last send, which was at most a heartbeat after its end.
    assert limit.per - 1.0 < float(waited.group(1)) <= limit.per + HEARTBEAT


async def test_a_run_killed_with_a_paced_burst_in_flight_resumes_without_429s(
    tmp_path: Path,
) -> None:
    # Slow answers: the second burst goes out a window after the first one's answers, the last
    # thing written to --out, and is in flight when the run is killed. What --out tells the
    # resumed run must cover those requests too, though none of them was ever recorded.
    limit, latency = RateLimit(10, 4.0), 2.0
    rows, out = tmp_path / "rows.csv", tmp_path / "out.jsonl"
    body = [f"r{n:02d},+1555010{n:04d},message {n}" for n in range(2 * limit.requests)]
    rows.write_text("id,to,content\n" + "\n".join(body) + "\n", "utf-8")

    async with Sandbox() as sandbox:
        sandbox.add_phone(PHONE, connected=True)
        key = sandbox.create_key(rate_limit=limit)
        sandbox.set_faults(latency=latency)
        rate = ("--rate", f"{limit.requests}/{limit.per:g}")

        first = await start_batch(rows, out, sandbox, key, *rate)
        while sandbox.counters.requests_total < 2 * limit.requests:
            assert first.returncode is None, "the first run ended before its second burst"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        first.kill()
        await first.wait()
        recorded_before_resume = len(complete_records(out))

        resumed = await start_batch(rows, out, sandbox, key, "--resume", *rate)
        _, stderr = await resumed.communicate()
        counters = sandbox.counters

    assert recorded_before_resume == limit.requests
    assert resumed.returncode == 0, stderr.decode()
    assert counters.rate_limited_total == 0
    assert counters.messages_created == 2 * limit.requests
