"""``chatmaid batch``: stream a file of messages through ``send_many``, recording each result.

The steps: read the ids already recorded (``--resume``), count the rows still to do, then
stream the file into ``send_many`` while a journal line is written for every finished item.
Rows the SDK refuses (bad number, content too long, no content or media) come back from
``send_many`` as validation failures and are never sent; rows that cannot even become a
request (no id, a repeated id, unreadable JSON) are recorded as they are read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import attrs

from chatmaid_async import RateLimit, SendRequest, SendResult
from chatmaid_async.batch import idempotency_key_for
from chatmaid_async.cli._input import Format, RejectedRow, Row, read_rows
from chatmaid_async.cli._journal import (
    Journal,
    Record,
    failure_reason,
    first_keyed_record,
    recorded_ids,
    recorded_namespace,
    to_record,
)
from chatmaid_async.cli._output import Output
from chatmaid_async.cli._pacing import Pace, metered
from chatmaid_async.cli._progress import batch_progress
from chatmaid_async.cli._session import Session, UsageProblem
from chatmaid_async.errors import APIStatusError

__all__ = ["BatchOptions", "BatchTally", "check_out_file", "run_batch"]

# While a run may be sending, --out is touched at least this often (seconds), so its age tells
# a later --resume how long ago the stopped run could last have sent a request.
HEARTBEAT = 1.0


@attrs.frozen(slots=True)
class BatchOptions:
    """What ``chatmaid batch`` was asked to do."""

    path: Path
    fmt: Format
    out: Path | None = None
    resume: bool = False
    concurrency: int = 32
    namespace: str = ""
    default_from: str | None = None
    fsync: bool = False
    progress: bool = True


@attrs.define
class BatchTally:
    """Running totals of one batch run, for the progress bar and the closing summary."""

    rate_limit: RateLimit | None
    rows: int = 0
    skipped: int = 0
    sent: int = 0
    failures: Counter[str] = attrs.Factory(Counter)
    statuses: Counter[str] = attrs.Factory(Counter)
    requests: int = 0
    started: float = attrs.Factory(time.monotonic)
    elapsed: float = 0.0
    waited: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> int:
        """Items recorded as failures in this run."""
        return sum(self.failures.values())

    @property
    def done(self) -> int:
        """Items recorded in this run."""
        return self.sent + self.failed

    def count(self, record: Record) -> None:
        """Add one finished item."""
        if record["ok"]:
            self.sent += 1
            self.statuses[str(record["status"])] += 1
        else:
            self.failures[failure_reason(record)] += 1


def check_out_file(options: BatchOptions) -> None:
    """Refuse combinations that would record or send an item twice, or resume from nothing."""
    if options.resume and options.out is None:
        raise UsageProblem("--resume needs --out: it skips the ids recorded there")
    out = options.out
    if out is not None and not options.resume and out.exists() and out.stat().st_size > 0:
        raise UsageProblem(
            f"{out} already has records: pass --resume to continue that run, or choose "
            "another --out"
        )
    if options.resume and out is not None:
        _check_namespace(out, options.namespace)


def _check_namespace(out: Path, namespace: str) -> None:
    # Rows lost in flight are resent on --resume; under another namespace their keys differ,
    # and the API would take them as new messages. (Rows carry no keys of their own.)
    recorded = recorded_namespace(out)
    if recorded is not None:
        if recorded != namespace:
            raise UsageProblem(
                f"{out} was written under the namespace {recorded!r}, not {namespace!r}: the "
                "rows still to send would get new idempotency keys and could be sent twice. "
                f"The namespace defaults to the input file's name; pass --namespace {recorded}"
            )
        return

    # A file from before namespaces were written down: its keys tell.
    record = first_keyed_record(out)
    if record is None or record["idempotency_key"] == idempotency_key_for(
        str(record["id"]), namespace
    ):
        return
    raise UsageProblem(
        f"{out} was written under another namespace than {namespace!r}, so the rows still "
        "to send would get new idempotency keys and could be sent twice. The namespace "
        "defaults to the input file's name without its extension: pass --namespace with "
        "the first run's (its file name, if the file was renamed or copied)"
    )


async def run_batch(
    session: Session, options: BatchOptions, output: Output, tally: BatchTally
) -> None:
    """Send every row of the file not yet recorded, and record each result.

    ``tally`` is filled in as items finish, so a caller that sees this coroutine cancelled
    (Ctrl-C) still has the totals of what was recorded. Cancellation stops the sends in
    flight; their rows are resent on ``--resume``, under the same idempotency keys.
    """
    done = recorded_ids(options.out) if options.resume and options.out else set()
    tally.rows, todo = _count(options, done)
    tally.skipped = tally.rows - todo
    if tally.skipped:
        output.note(f"resuming: {tally.skipped} rows already recorded in {options.out}")
    elif options.resume and options.out and not options.out.exists():
        output.note(f"resuming: {options.out} does not exist, so every row will be sent")
    if todo:
        await _wait_out_previous_run(session, options, output, tally.rate_limit)

    journal = (
        Journal(options.out, namespace=options.namespace, fsync=options.fsync)
        if options.out
        else None
    )
    pace = Pace(tally.rate_limit)
    async with metered(session.client.limiter) as meter:
        bar = batch_progress(output.err, meter, pace, enabled=options.progress and not output.json)
        task = bar.add_task("sending", total=todo)

        def record(outcome: SendResult | RejectedRow) -> None:
            entry = to_record(outcome)
            if journal is not None:
                journal.append(entry)
            if output.json:
                output.document(entry)
            tally.count(entry)
            reached_api = _reached_api(outcome)
            tally.requests += reached_api
            pace.finished(request=reached_api)
            bar.advance(task)

        tally.started = time.monotonic()
        try:
            with bar, journal or contextlib.nullcontext():
                async with _heartbeat(journal):
                    await _send_all(session, options, done, record)
        except asyncio.CancelledError:
            tally.interrupted = True
            raise
        finally:
            tally.elapsed = time.monotonic() - tally.started
            meter.stop()
            tally.waited = meter.waited


async def _wait_out_previous_run(
    session: Session, options: BatchOptions, output: Output, rate_limit: RateLimit | None
) -> None:
    """Hold the first sends of a run resumed while the stopped run's requests still count.

    The API counts each request for a window, but the stopped run's limiter died with it;
    without the hold the resumed run's first burst would draw 429s. The stopped run touched
    ``--out`` every :data:`HEARTBEAT` seconds while it could send, so its last request went out
    at most that long after ``--out`` was last modified.
    """
    limiter = session.client.limiter
    if not options.resume or options.out is None or rate_limit is None or limiter is None:
        return
    try:
        modified = options.out.stat().st_mtime
    except FileNotFoundError:
        return

    # A clock set back since then makes --out look written in the future: take it as now.
    since = max(0.0, time.time() - modified)
    hold = rate_limit.per + HEARTBEAT - since
    if hold > 0:
        output.note(
            f"resuming: the run that wrote {options.out} was sending {since:.1f} s ago; "
            f"waiting {hold:.1f} s for its requests to leave the API's window"
        )
        await limiter.hold(hold)


@contextlib.asynccontextmanager
async def _heartbeat(journal: Journal | None) -> AsyncIterator[None]:
    """Touch the journal every :data:`HEARTBEAT` seconds until the block ends."""
    if journal is None:
        yield
        return

    async def beat() -> None:
        while True:
            # A missing sign of life costs a resumed run some 429s at worst; the run goes on.
            with contextlib.suppress(OSError):
                journal.touch()
            await asyncio.sleep(HEARTBEAT)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _count(options: BatchOptions, done: set[str]) -> tuple[int, int]:
    # One streaming pass, so the bar has a total and a bad header fails before any send.
    rows = todo = 0
    for row in read_rows(options.path, options.fmt, options.default_from):
        rows += 1
        todo += row.id not in done
    return rows, todo


async def _send_all(
    session: Session,
    options: BatchOptions,
    done: set[str],
    record: Callable[[SendResult | RejectedRow], None],
) -> None:
    rows = read_rows(options.path, options.fmt, options.default_from)
    feed = _requests(rows, done, record)
    results = session.client.messages.send_many(
        feed, concurrency=options.concurrency, namespace=options.namespace
    )

    # Closing send_many when recording fails cancels the sends still in flight instead of
    # leaving them to the garbage collector.
    async with contextlib.aclosing(results):
        async for result in results:
            record(result)


def _requests(
    rows: Iterator[Row], done: set[str], reject: Callable[[RejectedRow], None]
) -> Iterator[SendRequest]:
    """The rows to send, read lazily; rejected and repeated rows are recorded, not yielded.

    ``seen`` holds ids only (not rows), so memory grows by an id per row at most.
    """
    seen: set[str] = set()
    for row in rows:
        if row.id in done:
            continue
        if row.id in seen:
            reject(RejectedRow(row.id, "duplicate_id", "this id appears earlier in the file"))
            continue
        seen.add(row.id)
        if isinstance(row, RejectedRow):
            reject(row)
            continue
        yield row


def _reached_api(outcome: SendResult | RejectedRow) -> bool:
    if isinstance(outcome, RejectedRow):
        return False
    return outcome.message is not None or isinstance(outcome.error, APIStatusError)
