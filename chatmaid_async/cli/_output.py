"""Showing results: rich tables for people, JSON for programs.

JSON output is the API's own object (camelCase, as the server sent it), one document per
command, or one object per line for commands that stream. Tables show the fields a person
looks at first; ``--json`` has everything.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
from rich.console import Console
from rich.table import Table

from chatmaid_async.models import (
    Account,
    Group,
    InboundMessage,
    Message,
    Page,
    PhoneNumber,
    PhoneNumberStatus,
    Usage,
)

if TYPE_CHECKING:
    from attrs import AttrsInstance

__all__ = ["Output", "to_json"]

# Long message text is cut in tables; the full text is in --json.
CONTENT_WIDTH = 40

Model = Message | InboundMessage | Group | PhoneNumber | PhoneNumberStatus | Account | Usage

# The table columns of each model in a listing: (header, attribute).
COLUMNS: dict[type, tuple[tuple[str, str], ...]] = {
    Message: (
        ("id", "id"),
        ("status", "status"),
        ("to", "to"),
        ("content", "content"),
        ("created", "created_at"),
    ),
    InboundMessage: (
        ("id", "id"),
        ("from", "from_number"),
        ("to", "to"),
        ("type", "type"),
        ("content", "content"),
        ("received", "received_at"),
    ),
    Group: (("id", "id"), ("name", "name"), ("announcements", "is_community_announce")),
    PhoneNumber: (
        ("id", "id"),
        ("number", "phone_number"),
        ("name", "display_name"),
        ("status", "connection_status"),
        ("environment", "environment"),
    ),
}


def to_json(model: Model) -> dict[str, Any]:
    """The API's JSON of a model, plus the idempotency key a send used."""
    document = dict(model.raw) if model.raw else _plain(model)
    if isinstance(model, Message) and model.idempotency_key is not None:
        document.setdefault("idempotencyKey", model.idempotency_key)
    return document


def _plain(model: Model) -> dict[str, Any]:
    # A model built by hand has no raw JSON; its fields are the next best thing.
    return attrs.asdict(
        model,
        filter=lambda a, _: a.name != "raw",
        value_serializer=lambda _, __, v: v.isoformat() if isinstance(v, datetime) else v,
    )


def json_line(value: object, encoding: str = "utf-8") -> str:
    """``value`` as one line of JSON, readable as it is where ``encoding`` can hold it.

    Where it cannot (a lone surrogate, as JSON's ``"\\ud83d"`` reads, is no UTF-8), the
    line escapes every character beyond ASCII instead; either reads back to the same value.
    """
    line = json.dumps(value, ensure_ascii=False, default=str)
    try:
        line.encode(encoding)
    except UnicodeEncodeError:
        return json.dumps(value, default=str)
    return line


class Output:
    """Where a command writes: tables or JSON on stdout, notes and errors on stderr."""

    def __init__(self, *, json_output: bool) -> None:
        self.json = json_output
        # Consoles look up sys.stdout/stderr when they write, so test runners can capture.
        self.out = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False)

    def note(self, text: str) -> None:
        """A line for people, on stderr, so stdout stays clean for pipes and --json."""
        self.err.print(text, markup=False)

    def error(self, text: str) -> None:
        """An error line on stderr."""
        self.err.print(f"error: {text}", style="red", markup=False)

    def document(self, value: object) -> None:
        """One JSON document (or one JSON Lines record) on stdout."""
        sys.stdout.write(json_line(value, sys.stdout.encoding or "utf-8") + "\n")
        sys.stdout.flush()

    def item(self, model: Model) -> None:
        """One model: a field/value table, or its JSON."""
        if self.json:
            self.document(to_json(model))
            return
        self.out.print(_detail_table(model))

    def items(self, models: Sequence[Model], title: str) -> None:
        """A list of models: one table, or one JSON array."""
        if self.json:
            self.document([to_json(model) for model in models])
            return
        self.out.print(_list_table(models, title))

    def page(self, page: Page[Any], title: str) -> None:
        """One page of a listing, with where it sits."""
        info = page.pagination
        if self.json:
            self.document(
                {"data": [to_json(m) for m in page.data], "pagination": attrs.asdict(info)}
            )
            return
        self.out.print(_list_table(page.data, title))
        pages = f" of {info.total_pages}" if info.total_pages is not None else ""
        total = f", {info.total} in all" if info.total is not None else ""
        self.note(f"page {info.page}{pages}{total}")

    def stream_item(self, model: Model) -> None:
        """One item of a listing walked page by page: a JSON line, or a table row's text."""
        if self.json:
            self.document(to_json(model))
            return
        self.out.print(_row_text(model), markup=False)


def _detail_table(model: Model) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    # Fields the server did not send are left out; --json shows exactly what it sent.
    for name, value in _fields(model):
        if value is not None:
            table.add_row(name, _cell(value, full=True))
    return table


def _fields(model: AttrsInstance) -> Iterable[tuple[str, object]]:
    for field in attrs.fields(type(model)):
        if field.name == "raw":
            continue
        value = getattr(model, field.name)
        if attrs.has(type(value)):
            yield from ((f"{field.name}.{k}", v) for k, v in _fields(value))
        else:
            yield field.name, value


def _list_table(models: Sequence[Model], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    if not models:
        table.add_column("(none)")
        return table
    columns = COLUMNS[type(models[0])]
    for header, _ in columns:
        table.add_column(header, overflow="fold")
    for model in models:
        table.add_row(*(_cell(getattr(model, attribute)) for _, attribute in columns))
    return table


def _row_text(model: Model) -> str:
    columns = COLUMNS[type(model)]
    return "  ".join(_cell(getattr(model, attribute)) for _, attribute in columns)


def _cell(value: object, *, full: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, Mapping):
        return json.dumps(dict(value))
    text = str(value)
    if not full and len(text) > CONTENT_WIDTH:
        return text[: CONTENT_WIDTH - 1] + "…"
    return text
