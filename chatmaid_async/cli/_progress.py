"""The batch progress bar: done/total, rate, ETA, elapsed, and time spent waiting on the limit."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from chatmaid_async.cli._pacing import LimitWaitMeter, Pace

__all__ = ["batch_progress"]


class RateColumn(ProgressColumn):
    """Items per second over the last window of the key's limit."""

    max_refresh = None

    def __init__(self, pace: Pace) -> None:
        super().__init__()
        self._pace = pace

    def render(self, task: Task) -> Text:
        """Render the rate, or a dash before there is one."""
        rate = self._pace.rate
        text = "-/s" if rate is None else f"{rate:.1f}/s"
        return Text(text, style="progress.data.speed")


class EtaColumn(ProgressColumn):
    """Time left, from when the key's window frees its slots.

    Rich's own ETA assumes a steady speed, and freezes while the limiter holds sends back.
    """

    max_refresh = None

    def __init__(self, pace: Pace) -> None:
        super().__init__()
        self._pace = pace

    def render(self, task: Task) -> Text:
        """Render ``eta H:MM:SS``, or dashes when it cannot be told yet."""
        remaining = task.remaining
        eta = None if remaining is None else self._pace.eta(remaining)
        if eta is None:
            return Text("eta -:--:--", style="progress.remaining")
        return Text(f"eta {timedelta(seconds=round(eta))}", style="progress.remaining")


class LimitWaitColumn(ProgressColumn):
    """Seconds the batch has spent blocked on the rate limiter (live)."""

    # The wait grows while nothing completes, so redraw it on every refresh.
    max_refresh = None

    def __init__(self, meter: LimitWaitMeter) -> None:
        super().__init__()
        self._meter = meter

    def render(self, task: Task) -> Text:
        """Render the wait so far."""
        if not self._meter.available:
            return Text("no limit", style="dim")
        return Text(f"limit wait {self._meter.waited:.1f}s", style="yellow")


def batch_progress(
    console: Console, meter: LimitWaitMeter, pace: Pace, *, enabled: bool
) -> Progress:
    """A rich progress display for a batch, drawn on ``console`` (stderr)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(pace),
        EtaColumn(pace),
        TimeElapsedColumn(),
        LimitWaitColumn(meter),
        console=console,
        disable=not enabled,
        refresh_per_second=8,
    )
