"""The ``--out`` file: one JSON line per finished batch item, written as each one finishes.

A new file starts with a line naming the run's namespace (``{"namespace": "..."}``), written
before the first send, so a ``--resume`` can tell that its keys would differ even when the run
stopped before any item finished.

Each line is flushed before the next item is recorded, so a crash loses at most the records of
the items still in flight; those are resent on ``--resume`` with the same idempotency key, and
the API answers with the message it already created. A line cut short by a crash is ignored
when the file is read back.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Generator
from pathlib import Path
from typing import Any, TextIO

from chatmaid_async.batch import SendResult
from chatmaid_async.cli._input import RejectedRow
from chatmaid_async.cli._output import json_line
from chatmaid_async.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ChatmaidError,
    ValidationError,
)

__all__ = [
    "Journal",
    "Record",
    "failure_code",
    "failure_reason",
    "first_keyed_record",
    "recorded_ids",
    "recorded_namespace",
    "to_record",
]

Record = dict[str, Any]


def to_record(outcome: SendResult | RejectedRow) -> Record:
    """The JSON Lines record of one finished item."""
    if isinstance(outcome, RejectedRow):
        error = {"type": "RejectedRow", "code": outcome.code, "message": outcome.reason}
        return _record(outcome.id, ok=False, error=error)

    message = outcome.message
    if message is not None:
        return _record(
            outcome.id,
            ok=True,
            message_id=message.id,
            status=message.status,
            idempotency_key=message.idempotency_key,
        )

    exc = outcome.error
    assert exc is not None
    return _record(
        outcome.id,
        ok=False,
        idempotency_key=getattr(exc, "idempotency_key", None),
        error={"type": type(exc).__name__, "code": failure_code(exc), "message": str(exc)},
    )


def _record(
    item_id: str,
    *,
    ok: bool,
    message_id: str | None = None,
    status: str | None = None,
    idempotency_key: str | None = None,
    error: dict[str, str] | None = None,
) -> Record:
    return {
        "id": item_id,
        "ok": ok,
        "message_id": message_id,
        "status": status,
        "idempotency_key": idempotency_key,
        "error": error,
    }


def failure_code(exc: ChatmaidError) -> str:
    """A short, stable code for an error: ``invalid_to``, ``http_404``, ``timeout``…"""
    if isinstance(exc, ValidationError):
        return f"invalid_{exc.field}"
    if isinstance(exc, APIStatusError):
        return f"http_{exc.status_code}"
    if isinstance(exc, APITimeoutError):
        return "timeout"
    if isinstance(exc, APIConnectionError):
        return "connection_error"
    return type(exc).__name__


def failure_reason(record: Record) -> str:
    """What the summary groups a failed record under.

    A validation message names the field and the rule (never the row's value), so it groups
    well as it is; an API error groups by its code and type, as its details vary by row.
    """
    error = record.get("error") or {}
    if error.get("type") in ("ValidationError", "RejectedRow"):
        return str(error.get("message"))
    return f"{error.get('code')} ({error.get('type')})"


def recorded_ids(path: Path) -> set[str]:
    """The ids whose latest record in ``path`` settles them (empty if it does not exist).

    A row is settled once sent, or refused for good (a bad row, a 4xx). A row whose latest
    record is a transient failure (429, 408, 5xx, a dropped connection, a timeout) is not:
    ``--resume`` sends it again, and its idempotency key makes that safe whether or not the
    first attempt reached the API.
    """
    latest: dict[str, bool] = {}
    for record in _records(path):
        latest[record["id"]] = _settles(record)
    return {item_id for item_id, settled in latest.items() if settled}


def recorded_namespace(path: Path) -> str | None:
    """The namespace named on the first line of ``path`` (None if it names none)."""
    with contextlib.closing(_lines(path)) as lines:
        first = next(lines, "")
    try:
        header = json.loads(first)
    except ValueError:
        return None
    if not isinstance(header, dict) or "id" in header:
        return None
    namespace = header.get("namespace")
    return namespace if isinstance(namespace, str) else None


def first_keyed_record(path: Path) -> Record | None:
    """The first record in ``path`` that carries an idempotency key (None if none does)."""
    records = (r for r in _records(path) if isinstance(r.get("idempotency_key"), str))
    with contextlib.closing(records):
        return next(records, None)


def _lines(path: Path) -> Generator[str, None, None]:
    # A file that does not exist has no lines: nothing was recorded yet.
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        return
    with handle:
        yield from handle


def _records(path: Path) -> Generator[Record, None, None]:
    for line in _lines(path):
        record = _record_of(line)
        if record is not None:
            yield record


def _record_of(line: str) -> Record | None:
    # The last line may have been cut short by a kill; it has no valid record then.
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        return None
    return record


def _settles(record: Record) -> bool:
    if record.get("ok"):
        return True
    error = record.get("error")
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    return code not in _TRANSIENT_CODES and not code.startswith("http_5")


# Failures worth sending again on --resume (5xx codes are matched by prefix).
_TRANSIENT_CODES = frozenset({"http_408", "http_429", "timeout", "connection_error"})


class Journal:
    """An append-only JSON Lines file of records; ``fsync=True`` also syncs each line to disk.

    Use as a context manager. Without ``fsync`` a record survives a crash of this process
    (it is in the kernel once flushed) but not a crash of the machine.
    """

    def __init__(self, path: Path, *, namespace: str | None = None, fsync: bool = False) -> None:
        self.path = path
        self.namespace = namespace
        self._fsync = fsync
        self._handle: TextIO | None = None
        self.written = 0

    def __enter__(self) -> Journal:
        self._handle = self.path.open("a", encoding="utf-8")

        # A run killed mid-line left a partial record: start on a fresh line after it.
        if self._handle.tell() > 0 and not _ends_with_newline(self.path):
            self._handle.write("\n")
        elif self._handle.tell() == 0 and self.namespace is not None:
            self._write_line({"namespace": self.namespace})
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def append(self, record: Record) -> None:
        """Write one record and push it to the OS before returning."""
        self._write_line(record)
        self.written += 1

    def _write_line(self, document: dict[str, Any]) -> None:
        assert self._handle is not None, "use Journal as a context manager"
        self._handle.write(json_line(document) + "\n")
        self._handle.flush()
        if self._fsync:
            os.fsync(self._handle.fileno())

    def touch(self) -> None:
        """Mark the file as written now, as a sign of life for a later ``--resume``."""
        os.utime(self.path)

    def __repr__(self) -> str:
        state = "open" if self._handle is not None else "closed"
        return f"<Journal {self.path} {state} written={self.written}>"


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
