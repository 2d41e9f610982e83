"""``chatmaid batch`` in-process: records, bad rows, resume, the limiter wait, the summary."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chatmaid_async import RateLimit
from chatmaid_async.cli._batch import HEARTBEAT, BatchOptions, _wait_out_previous_run
from chatmaid_async.cli._options import EXIT_BATCH_FAILED, EXIT_OK, EXIT_USAGE
from chatmaid_async.sandbox import Sandbox

from .conftest import PHONE, invoke, invoke_async
from .test_input import EXAMPLE

EXAMPLE_VALID = 194


def records(path: Path) -> list[dict[str, Any]]:
    """The item records of ``path``, without the line naming the namespace."""
    documents = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [document for document in documents if "id" in document]


def lines(stdout: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The records and the summary of ``batch --json`` output."""
    documents = [json.loads(line) for line in stdout.splitlines()]
    return documents[:-1], documents[-1]["summary"]


def write_csv(tmp_path: Path, rows: int, *, bad: int = 0) -> Path:
    path = tmp_path / "rows.csv"
    body = [f"r{n},+1555010{n:04d},message {n}" for n in range(rows)]
    body += [f"bad{n},1555010{n:04d},no plus" for n in range(bad)]
    path.write_text("id,to,content\n" + "\n".join(body) + "\n", encoding="utf-8")
    return path


def test_the_example_file_on_the_embedded_sandbox(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"

    result = invoke(
        "batch", str(EXAMPLE), "--sandbox", "--sandbox-rate", "100/0.5", "--out", str(out),
        "--json",
    )  # fmt: skip

    assert result.exit_code == EXIT_BATCH_FAILED, result.output
    streamed, summary = lines(result.stdout)
    written = records(out)
    assert streamed == written
    assert Counter(r["id"] for r in written) == Counter({f"r{n:04d}": 1 for n in range(1, 201)})
    assert summary["sent"] == EXAMPLE_VALID
    assert summary["failed"] == 6
    assert summary["failed_by_reason"] == {
        "to: must be an E.164 number like +15551234567 or a group id ending in @g.us": 4,
        "content: give content or media_urls (neither was given)": 1,
        "content: must be at most 4096 characters": 1,
    }


def test_bad_rows_are_recorded_with_a_reason(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"

    invoke("batch", str(EXAMPLE), "--sandbox", "--sandbox-rate", "off", "--out", str(out))

    failed = {r["id"]: r for r in records(out) if not r["ok"]}
    assert set(failed) == {"r0023", "r0057", "r0088", "r0121", "r0150", "r0176"}
    assert failed["r0023"]["error"]["code"] == "invalid_to"
    assert failed["r0121"]["error"]["message"] == "content: must be at most 4096 characters"
    assert all(r["message_id"] is None for r in failed.values())


async def test_bad_rows_are_never_sent_and_good_ones_once(sandbox: Sandbox, key: str) -> None:
    args = ["batch", str(EXAMPLE), "--api-key", key, "--base-url", sandbox.base_url]

    result = await invoke_async(*args, "--from", PHONE, "--rate", "off", "--no-progress")

    assert result.exit_code == EXIT_BATCH_FAILED, result.output
    assert sandbox.counters.messages_created == EXAMPLE_VALID
    assert sandbox.counters.requests_by_key[key] == EXAMPLE_VALID
    assert sandbox.counters.validation_errors_total == 0


async def test_resume_sends_only_what_is_not_recorded(
    sandbox: Sandbox, key: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    rows = write_csv(tmp_path, 60)
    conn = ["--api-key", key, "--base-url", sandbox.base_url, "--from", PHONE, "--rate", "off"]
    await invoke_async("batch", str(rows), "--out", str(out), *conn)

    # As if the first run had died after 20 records (and the namespace line), halfway through
    # writing the 21st.
    kept = out.read_text(encoding="utf-8").splitlines(keepends=True)[:21]
    out.write_text("".join(kept) + '{"id": "r0', encoding="utf-8")
    resumed = await invoke_async("batch", str(rows), "--out", str(out), "--resume", *conn)

    assert resumed.exit_code == EXIT_OK, resumed.output
    assert "40 requests" in resumed.stdout
    assert sandbox.counters.messages_created == 60
    assert sandbox.counters.duplicates_prevented == 40
    complete = [json.loads(line) for line in out.read_text().splitlines() if line.endswith("}")]
    assert complete[0] == {"namespace": "rows"}
    assert Counter(r["id"] for r in complete[1:]) == Counter({f"r{n}": 1 for n in range(60)})


async def test_a_row_whose_id_holds_a_lone_surrogate_is_recorded_and_resumed(
    sandbox: Sandbox, key: str, tmp_path: Path
) -> None:
    # A JSON Lines id written "\ud83d" reads as a lone surrogate, which UTF-8 cannot hold.
    rows = tmp_path / "rows.jsonl"
    ids = ["plain", "row-\\ud83d", "caf\u00e9"]
    rows.write_text(
        "".join(f'{{"id": "{i}", "to": "+15550100001", "content": "hi"}}\n' for i in ids),
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    conn = ["--api-key", key, "--base-url", sandbox.base_url, "--from", PHONE, "--rate", "off"]

    first = await invoke_async("batch", str(rows), "--out", str(out), "--json", *conn)
    resumed = await invoke_async("batch", str(rows), "--out", str(out), "--resume", *conn)

    assert first.exit_code == EXIT_OK, first.output
    assert resumed.exit_code == EXIT_OK, resumed.output
    assert sorted(r["id"] for r in records(out)) == sorted(["plain", "row-\ud83d", "caf\u00e9"])
    assert "café" in out.read_text(encoding="utf-8")
    assert sandbox.counters.messages_created == 3
    assert sandbox.counters.requests_by_key[key] == 3


async def test_a_resume_from_a_renamed_file_is_refused_before_anything_is_sent(
    sandbox: Sandbox, key: str, tmp_path: Path
) -> None:
    # The namespace defaults to the file's name: under a new name the rows whose results were
    # lost in flight would go out again under new idempotency keys, as new messages.
    out = tmp_path / "out.jsonl"
    rows = write_csv(tmp_path, 30)
    conn = ["--api-key", key, "--base-url", sandbox.base_url, "--from", PHONE, "--rate", "off"]
    await invoke_async("batch", str(rows), "--out", str(out), *conn)
    kept = out.read_text(encoding="utf-8").splitlines(keepends=True)[:11]
    out.write_text("".join(kept), encoding="utf-8")
    renamed = rows.rename(tmp_path / "rows-final.csv")
    requests_before = sandbox.counters.requests_total

    refused = await invoke_async("batch", str(renamed), "--out", str(out), "--resume", *conn)
    requests_refused = sandbox.counters.requests_total - requests_before
    named = ["--namespace", "rows"]
    resumed = await invoke_async(
        "batch", str(renamed), "--out", str(out), "--resume", *named, *conn
    )

    assert refused.exit_code == EXIT_USAGE, refused.output
    assert "namespace" in refused.stderr
    assert "'rows-final'" in refused.stderr
    assert requests_refused == 0
    assert resumed.exit_code == EXIT_OK, resumed.output
    assert sandbox.counters.messages_created == 30
    assert sandbox.counters.duplicates_prevented == 20


async def test_a_resume_from_a_renamed_file_is_refused_though_no_result_was_recorded(
    sandbox: Sandbox, key: str, tmp_path: Path
) -> None:
    # Killed before any answer came back: --out holds only what the run wrote before sending,
    # while every row may have reached the API under the first file's namespace.
    out = tmp_path / "out.jsonl"
    rows = write_csv(tmp_path, 10)
    conn = ["--api-key", key, "--base-url", sandbox.base_url, "--from", PHONE, "--rate", "off"]
    await invoke_async("batch", str(rows), "--out", str(out), *conn)
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(line for line in lines if '"id"' not in line), encoding="utf-8")
    renamed = rows.rename(tmp_path / "rows-final.csv")
    requests_before = sandbox.counters.requests_total

    refused = await invoke_async("batch", str(renamed), "--out", str(out), "--resume", *conn)

    assert refused.exit_code == EXIT_USAGE, refused.output
    assert "'rows'" in refused.stderr
    assert sandbox.counters.requests_total == requests_before


def test_a_resume_without_its_out_file_says_every_row_will_be_sent(tmp_path: Path) -> None:
    out = tmp_path / "typo.jsonl"

    result = invoke(
        "batch", str(write_csv(tmp_path, 5)), "--sandbox", "--out", str(out), "--resume"
    )

    assert result.exit_code == EXIT_OK, result.output
    assert f"{out} does not exist" in " ".join(result.stderr.split())
    assert len(records(out)) == 5


def test_out_needs_resume_to_be_reused_and_resume_needs_out(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "r0001", "ok": true}\n', encoding="utf-8")

    reused = invoke("batch", str(EXAMPLE), "--sandbox", "--out", str(out))
    no_out = invoke("batch", str(EXAMPLE), "--sandbox", "--resume")

    assert reused.exit_code == no_out.exit_code == EXIT_USAGE
    assert "--resume" in reused.stderr
    assert "--out" in no_out.stderr


def test_jsonl_rows_without_an_id_or_with_a_repeated_one_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"id": "a", "to": "+15557654321", "content": "hi"}\n'
        '{"id": "a", "to": "+15557654322", "content": "again"}\n'
        '{"to": "+15557654323", "content": "who"}\n'
        "[1, 2]\n",
        encoding="utf-8",
    )

    result = invoke("batch", str(path), "--sandbox", "--json")

    streamed, summary = lines(result.stdout)
    outcomes = Counter((r["id"], r["error"]["code"] if r["error"] else "ok") for r in streamed)
    assert outcomes == Counter(
        [("a", "ok"), ("a", "duplicate_id"), ("line:3", "missing_id"), ("line:4", "malformed_row")]
    )
    assert summary["sent"] == 1
    assert summary["failed"] == 3


def test_time_waiting_on_the_limit_is_measured(tmp_path: Path) -> None:
    rows = write_csv(tmp_path, 40)

    paced = invoke("batch", str(rows), "--sandbox", "--sandbox-rate", "20/1", "--json")
    free = invoke("batch", str(rows), "--sandbox", "--sandbox-rate", "off", "--json")

    _, summary = lines(paced.stdout)
    # 20 at once, the next 20 once the first have left the window: about one second blocked.
    assert summary["elapsed_seconds"] >= 1.0
    assert 0.7 <= summary["limit_wait_seconds"] <= summary["elapsed_seconds"]
    assert summary["limit_allows"] == 40
    _, unpaced = lines(free.stdout)
    assert unpaced["limit_wait_seconds"] == 0


def test_people_get_a_progress_bar_and_a_summary(tmp_path: Path) -> None:
    rows = write_csv(tmp_path, 30, bad=2)

    result = invoke("batch", str(rows), "--sandbox", "--sandbox-rate", "20/0.5")

    assert result.exit_code == EXIT_BATCH_FAILED
    assert "32/32" in result.stderr
    assert "limit wait" in result.stderr
    for text in ("Batch finished", "sent", "30", "failed", "must be an E.164", "20 per 0.5 s"):
        assert text in result.stdout


class _Holds:
    """A limiter stand-in that records the holds asked of it."""

    def __init__(self) -> None:
        self.holds: list[float] = []

    async def hold(self, seconds: float) -> None:
        self.holds.append(seconds)


class _Notes:
    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, text: str) -> None:
        self.notes.append(text)


WINDOW = 10.0


@pytest.mark.parametrize(
    ("modified_ago", "rest_of_window"),
    [
        (0.5, 9.5),  # stopped half a second ago
        (-3600.0, WINDOW),  # written "in the future" (the clock went back): as if just now
        (WINDOW + HEARTBEAT + 0.5, None),  # its last requests have left the window
    ],
)
async def test_a_resume_holds_until_the_stopped_runs_last_requests_leave_the_window(
    tmp_path: Path, modified_ago: float, rest_of_window: float | None
) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "r0", "ok": true}\n', encoding="utf-8")
    modified = time.time() - modified_ago
    os.utime(out, (modified, modified))
    limiter, output = _Holds(), _Notes()
    session = SimpleNamespace(client=SimpleNamespace(limiter=limiter))
    options = BatchOptions(path=tmp_path / "rows.csv", fmt="csv", out=out, resume=True)

    await _wait_out_previous_run(session, options, output, RateLimit(100, WINDOW))  # type: ignore[arg-type]

    if rest_of_window is None:
        assert limiter.holds == output.notes == []
    else:
        # The stopped run may have sent up to a heartbeat after it last touched --out.
        assert limiter.holds == [pytest.approx(rest_of_window + HEARTBEAT, abs=0.2)]
        assert "-" not in output.notes[0].split("sending")[1]
