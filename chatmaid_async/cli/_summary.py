"""The closing summary of a batch: sent, failed by reason, elapsed, and the achieved rate."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from chatmaid_async.cli._batch import BatchTally
from chatmaid_async.cli._output import Output
from chatmaid_async.cli._pacing import allowed_requests
from chatmaid_async.cli._session import format_rate

__all__ = ["show_summary", "summary_json"]


def summary_json(tally: BatchTally) -> dict[str, Any]:
    """The summary as one JSON object (the last line of ``batch --json``)."""
    limit = tally.rate_limit
    return {
        "summary": {
            "rows": tally.rows,
            "skipped": tally.skipped,
            "sent": tally.sent,
            "failed": tally.failed,
            "failed_by_reason": dict(tally.failures),
            "statuses": dict(tally.statuses),
            "requests": tally.requests,
            "elapsed_seconds": round(tally.elapsed, 3),
            "limit_wait_seconds": round(tally.waited, 3),
            "achieved_per_second": round(_rate(tally), 3),
            "limit": None if limit is None else {"requests": limit.requests, "per": limit.per},
            "limit_allows": None if limit is None else allowed_requests(limit, tally.elapsed),
            "interrupted": tally.interrupted,
        }
    }


def show_summary(tally: BatchTally, output: Output) -> None:
    """Print the summary: a JSON line with ``--json``, else a short table on stdout."""
    if output.json:
        output.document(summary_json(tally))
        return

    verb = "interrupted after" if tally.interrupted else "finished in"
    table = Table(title=f"Batch {verb} {tally.elapsed:.1f} s", title_justify="left", box=None)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    table.add_column("")

    table.add_row("sent", str(tally.sent), _statuses(tally))
    table.add_row("failed", str(tally.failed), "")
    for reason, count in tally.failures.most_common():
        table.add_row("", str(count), reason)
    if tally.skipped:
        table.add_row("skipped", str(tally.skipped), "already recorded (--resume)")
    if tally.interrupted:
        table.add_row(
            "not done", str(tally.rows - tally.skipped - tally.done), "rerun with --resume"
        )
    table.add_row("rate", f"{_rate(tally):.2f}/s", _rate_note(tally))
    output.out.print(table)


def _statuses(tally: BatchTally) -> str:
    return ", ".join(f"{status} {count}" for status, count in tally.statuses.most_common())


def _rate(tally: BatchTally) -> float:
    return tally.requests / tally.elapsed if tally.elapsed > 0 else 0.0


def _rate_note(tally: BatchTally) -> str:
    """The achieved rate against the key's limit, and how long the limit held the batch."""
    limit = tally.rate_limit
    if limit is None:
        return f"{tally.requests} requests; no rate limit"
    allowed = allowed_requests(limit, tally.elapsed)
    share = tally.requests / allowed
    return (
        f"{tally.requests} requests, {share:.0%} of the {allowed} that {format_rate(limit)} "
        f"allows in {tally.elapsed:.1f} s; {tally.waited:.1f} s waiting on the limit"
    )
