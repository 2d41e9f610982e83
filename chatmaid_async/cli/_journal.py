"""The ``--out`` file: one JSON line per finished batch item, written as each one finishes.

Each line is flushed before the next item is recorded, so a crash loses at most the records of
the items still in flight; those are resent on ``--resume`` with the same idempotency key, and
the API answers with the message it already created. A line cut short by a crash is ignored
when the file is read back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

from chatmaid_async.batch import SendResult
from chatmaid_async.cli._input import RejectedRow
from chatmaid_async.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ChatmaidError,
    ValidationError,
)

__all__ = ["Journal", "Record", "failure_code", "failure_reason", "recorded_ids", "to_record"]

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
    """The ids that already have a record in ``path`` (empty if it does not exist)."""
    ids: set[str] = set()
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        return ids
    with handle:
        for line in handle:
            item_id = _id_of(line)
            if item_id is not None:
                ids.add(item_id)
    return ids


def _id_of(line: str) -> str | None:
    # The last line may have been cut short by a kill; it has no valid record then.
    try:
        record = json.loads(line)
    except ValueError:
        return None
    item_id = record.get("id") if isinstance(record, dict) else None
    return item_id if isinstance(item_id, str) else None


class Journal:
    """An append-only JSON Lines file of records; ``fsync=True`` also syncs each line to disk.

    Use as a context manager. Without ``fsync`` a record survives a crash of this process
    (it is in the kernel once flushed) but not a crash of the machine.
    """

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = path
        self._fsync = fsync
        self._handle: TextIO | None = None
        self.written = 0

    def __enter__(self) -> Journal:
        self._handle = self.path.open("a", encoding="utf-8")

        # A run killed mid-line left a partial record: start on a fresh line after it.
        if self._handle.tell() > 0 and not _ends_with_newline(self.path):
            self._handle.write("\n")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def append(self, record: Record) -> None:
        """Write one record and push it to the OS before returning."""
        assert self._handle is not None, "use Journal as a context manager"
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        if self._fsync:
            os.fsync(self._handle.fileno())
        self.written += 1

    def __repr__(self) -> str:
        state = "open" if self._handle is not None else "closed"
        return f"<Journal {self.path} {state} written={self.written}>"


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
