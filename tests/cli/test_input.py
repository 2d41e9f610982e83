"""Reading batch files: CSV and JSON Lines, streamed, with bad rows turned into rejections."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from chatmaid_async import SendRequest
from chatmaid_async.cli._input import (
    InputError,
    RejectedRow,
    count_rows,
    detect_format,
    read_rows,
)
from chatmaid_async.cli._journal import Journal, recorded_ids

EXAMPLE = Path(__file__).parents[2] / "examples" / "recipients.csv"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "requested", "expected"),
    [
        ("a.csv", None, "csv"),
        ("a.jsonl", None, "jsonl"),
        ("a.NDJSON", None, "jsonl"),
        ("a.txt", None, "csv"),
        ("a.txt", "jsonl", "jsonl"),
    ],
)
def test_the_format_comes_from_the_option_or_the_extension(
    name: str, requested: str | None, expected: str
) -> None:
    assert detect_format(Path(name), requested) == expected


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(InputError, match="csv, jsonl"):
        detect_format(Path("a.csv"), "xml")


def test_csv_rows_become_requests_with_the_default_sender(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "b.csv",
        "\ufeffid,to,content,media_url,from\n"
        "1,+15557654321,hello,,\n"
        "2,+15557654322,,https://example.com/a.jpg,+15550100001\n",
    )

    rows = list(read_rows(path, "csv", "+15550100000"))

    assert rows == [
        SendRequest("1", "+15550100000", "+15557654321", "hello", None),
        SendRequest("2", "+15550100001", "+15557654322", None, ["https://example.com/a.jpg"]),
    ]


def test_jsonl_rows_accept_numbers_as_ids_and_lists_of_media(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "b.jsonl",
        '{"id": 7, "to": "+15557654321", "content": "hi"}\n'
        "\n"
        '{"id": "x", "to": "+15557654321", "media_urls": ["https://example.com/a.jpg"]}\n'
        "not json\n"
        '{"to": "+15557654321", "content": "no id"}\n',
    )

    rows = list(read_rows(path, "jsonl", "+15550100000"))

    assert rows[0] == SendRequest("7", "+15550100000", "+15557654321", "hi", None)
    assert rows[1] == SendRequest(
        "x", "+15550100000", "+15557654321", None, ["https://example.com/a.jpg"]
    )
    assert rows[2] == RejectedRow("line:4", "malformed_row", "not a JSON object")
    assert rows[3] == RejectedRow("line:5", "missing_id", "the row has no id")


@pytest.mark.parametrize(
    ("header", "default_from", "message"),
    [
        ("to,content", "+15550100000", "lacks column"),
        ("id,to", "+15550100000", "content or media_url"),
        ("id,to,content", None, "--from"),
    ],
)
def test_a_csv_header_without_what_a_send_needs_is_an_input_error(
    tmp_path: Path, header: str, default_from: str | None, message: str
) -> None:
    path = write(tmp_path, "b.csv", f"{header}\n")

    with pytest.raises(InputError, match=message):
        list(read_rows(path, "csv", default_from))


def test_rows_are_streamed_not_loaded_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("id,to,content\n")
        for n in range(20_000):
            handle.write(f"{n},+1555010{n % 10_000:04d},message number {n} for you\n")

    tracemalloc.start()
    try:
        rows = sum(1 for _ in read_rows(path, "csv", "+15550100000"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert rows == 20_000
    assert peak < path.stat().st_size / 4


def test_the_example_file_has_a_few_hundred_rows_and_a_few_bad_ones() -> None:
    rows = list(read_rows(EXAMPLE, "csv", "+15550100000"))

    assert count_rows(EXAMPLE, "csv") == len(rows) == 200
    sends = [r for r in rows if isinstance(r, SendRequest)]
    assert len([r for r in sends if not r.to.startswith("+")]) == 2
    assert len([r for r in sends if any(c.isalpha() for c in r.to)]) == 2
    assert len([r for r in sends if not r.content and not r.media_urls]) == 1
    assert len([r for r in sends if len(r.content or "") > 4096]) == 1


def test_recorded_ids_ignore_a_line_cut_short_by_a_kill(tmp_path: Path) -> None:
    out = write(tmp_path, "out.jsonl", '{"id": "a", "ok": true}\n{"id": "b", "ok": tr')

    assert recorded_ids(out) == {"a"}
    with Journal(out) as journal:
        journal.append({"id": "c", "ok": True})
    assert recorded_ids(out) == {"a", "c"}
    assert out.read_text().splitlines()[-1] == '{"id": "c", "ok": true}'


def test_resume_settles_sent_and_refused_rows_and_retries_transient_failures(
    tmp_path: Path,
) -> None:
    def failed(item_id: str, code: str, kind: str) -> str:
        return json.dumps({"id": item_id, "ok": False, "error": {"type": kind, "code": code}})

    lines = [
        json.dumps({"id": "sent", "ok": True}),
        failed("bad-row", "invalid_to", "RejectedRow"),
        failed("refused", "http_400", "BadRequestError"),
        failed("server-down", "http_503", "InternalServerError"),
        failed("dropped", "connection_error", "APIConnectionError"),
        failed("slow", "timeout", "APITimeoutError"),
        failed("limited", "http_429", "RateLimitError"),
        failed("later-sent", "http_502", "InternalServerError"),
        json.dumps({"id": "later-sent", "ok": True}),
    ]
    out = write(tmp_path, "out.jsonl", "\n".join(lines) + "\n")

    assert recorded_ids(out) == {"sent", "bad-row", "refused", "later-sent"}


def test_a_file_that_is_not_utf8_is_an_input_error_not_a_crash(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.csv"
    legacy.write_bytes(b"id,to,content\r\n1,+15557654321,caf\xe9\r\n")

    with pytest.raises(InputError, match="not UTF-8"):
        count_rows(legacy, "csv")
    with pytest.raises(InputError, match="not UTF-8"):
        list(read_rows(legacy, "csv", "+15550100000"))
