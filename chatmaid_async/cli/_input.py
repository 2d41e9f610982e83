"""Reading a batch file row by row: CSV with a header, or JSON Lines.

Rows are streamed from the open file, never loaded whole. A row that cannot become a send
request (no id, unreadable JSON, no sender) comes out as a :class:`RejectedRow` with a reason
code, so the batch records it as a failure instead of stopping.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TextIO

import attrs

from chatmaid_async.batch import SendRequest

__all__ = [
    "FORMATS",
    "InputError",
    "RejectedRow",
    "Row",
    "count_rows",
    "detect_format",
    "read_rows",
]

Format = Literal["csv", "jsonl"]
FORMATS: tuple[Format, ...] = ("csv", "jsonl")

JSONL_SUFFIXES = (".jsonl", ".ndjson")
REQUIRED_COLUMNS = ("id", "to")
CONTENT_COLUMNS = ("content", "media_url", "media_urls")


class InputError(Exception):
    """The file as a whole cannot be read as a batch (bad header, unknown format)."""


@attrs.frozen(slots=True)
class RejectedRow:
    """A row that is recorded as a failure without being sent.

    ``id`` is the row's id, or ``line:N`` when it has none.
    """

    id: str
    code: str
    reason: str


Row = SendRequest | RejectedRow


def detect_format(path: Path, requested: str | None) -> Format:
    """The file's format: ``requested`` if given, else by extension (CSV unless .jsonl)."""
    if requested is not None:
        if requested not in FORMATS:
            raise InputError(f"--format must be one of {', '.join(FORMATS)}, not {requested!r}")
        return requested
    return "jsonl" if path.suffix.lower() in JSONL_SUFFIXES else "csv"


def count_rows(path: Path, fmt: Format) -> int:
    """How many data rows the file holds; one streaming pass, for the progress bar's total."""
    with _open(path) as handle, _utf8_only(path):
        if fmt == "csv":
            reader = csv.reader(handle)
            next(reader, None)
            return sum(1 for record in reader if record)
        return sum(1 for line in handle if line.strip())


def read_rows(path: Path, fmt: Format, default_from: str | None) -> Iterator[Row]:
    """Yield one :class:`SendRequest` or :class:`RejectedRow` per data row, lazily.

    ``default_from`` is the sender for rows without a ``from`` value. Raises
    :class:`InputError` before the first row when a CSV header lacks required columns.
    """
    with _open(path) as handle, _utf8_only(path):
        if fmt == "csv":
            yield from _csv_rows(handle, default_from)
        else:
            yield from _jsonl_rows(handle, default_from)


@contextlib.contextmanager
def _utf8_only(path: Path) -> Iterator[None]:
    try:
        yield
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not UTF-8 (byte {exc.start}); save it as UTF-8 and run again"
        ) from None


def _open(path: Path) -> TextIO:
    # utf-8-sig drops the byte-order mark spreadsheet programs put at the start of a CSV.
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _csv_rows(handle: Iterator[str], default_from: str | None) -> Iterator[Row]:
    reader = csv.DictReader(handle)
    columns = [name.strip() for name in reader.fieldnames or ()]
    _check_header(columns, default_from)
    reader.fieldnames = columns

    for record in reader:
        line = reader.line_num
        if None in record:
            yield RejectedRow(_row_id(record, line), "malformed_row", "more cells than columns")
            continue
        yield _to_request(record, line, default_from)


def _check_header(columns: list[str], default_from: str | None) -> None:
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise InputError(f"the CSV header lacks column(s) {', '.join(missing)}")
    if not any(name in columns for name in CONTENT_COLUMNS):
        raise InputError("the CSV header needs a content or media_url column")
    if "from" not in columns and default_from is None:
        raise InputError("the CSV has no from column: pass --from with the sender number")


def _jsonl_rows(handle: Iterator[str], default_from: str | None) -> Iterator[Row]:
    for line, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError:
            yield RejectedRow(f"line:{line}", "malformed_row", "not a JSON object")
            continue
        if not isinstance(record, dict):
            yield RejectedRow(f"line:{line}", "malformed_row", "not a JSON object")
            continue
        yield _to_request(record, line, default_from)


def _to_request(record: Mapping[str, object], line: int, default_from: str | None) -> Row:
    """Turn one row into a send request; only what the SDK cannot check is rejected here.

    The number and content rules are left to the SDK, so a bad row fails the same way a bad
    ``send`` would, and is never sent.
    """
    item_id = _row_id(record, line)
    if item_id.startswith("line:"):
        return RejectedRow(item_id, "missing_id", "the row has no id")

    sender = _text(record.get("from")) or default_from
    if sender is None:
        return RejectedRow(item_id, "missing_from", "no from value and no --from given")
    return SendRequest(
        id=item_id,
        from_phone_id=sender,
        to=_text(record.get("to")) or "",
        content=_text(record.get("content")),
        media_urls=_media_urls(record),
    )


def _row_id(record: Mapping[Any, object], line: int) -> str:
    value = record.get("id")
    if isinstance(value, bool) or value is None:
        return f"line:{line}"
    text = str(value).strip()
    return text or f"line:{line}"


def _text(value: object) -> str | None:
    # An empty cell means "not given", so a row with only media sends no caption.
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _media_urls(record: Mapping[str, object]) -> list[str] | None:
    listed = record.get("media_urls")
    if isinstance(listed, list):
        return [str(url) for url in listed] or None
    single = _text(record.get("media_url"))
    return None if single is None else [single.strip()]
