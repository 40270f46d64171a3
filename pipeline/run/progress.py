"""Progress for people and for CI: a tqdm bar on a terminal, a plain line every few seconds elsewhere.

The text is built here, not by tqdm: its rate and time left would count the jobs an earlier run
finished (a resumed run of 40 jobs with 22 done before showed 6 jobs/s after 3 s). Rate and
time left come from this run's own work (`pace`), and the line fits the terminal: below
`WIDE_COLUMNS` the bar is dropped and the counts are shortened, never cut off.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import TextIO

from tqdm import tqdm

from ..ci import on_ci
from .plan import format_seconds
from .tally import Tally

LINE_INTERVAL_S = 10.0
BAR_INTERVAL_S = 0.5
WIDE_COLUMNS = 120  # room for the bar and the full counts
FALLBACK_COLUMNS = 80


def choose_mode(quiet: bool, stream: TextIO | None = None) -> str:
    """quiet; a bar on a terminal; plain lines in CI (its log is not a terminal) and elsewhere."""
    if quiet:
        return "quiet"
    return "bar" if (stream or sys.stderr).isatty() and not on_ci() else "lines"


def pace(tally: Tally, now: float) -> tuple[float | None, float | None]:
    """(jobs per second, seconds left), from the jobs this run finished; None until one has."""
    elapsed = now - tally.started
    fresh = tally.finished - tally.skipped
    if fresh <= 0 or elapsed <= 0:
        return None, None
    rate = fresh / elapsed
    return rate, max(tally.total - tally.finished, 0) / rate


def status_text(tally: Tally, average_credits: float) -> str:
    """The counts, which add up to the total: queued + running + downloading + settling (when
    there are some) + finished."""
    # The queued jobs' own estimates when the scheduler counts them (a mix of models differs
    # from the average); so a run's first line projects what plan estimated.
    queued = tally.credits_queued if tally.credits_queued is not None else tally.queued * average_credits
    projected = tally.credits_spent + tally.credits_reserved + queued
    failed = tally.failed + tally.uncertain
    return (
        f"{tally.queued} queued, {tally.running} running, {tally.downloading} downloading, "
        + (f"{tally.settling} settling, " if tally.settling else "")
        + f"{tally.completed} done, {failed} failed; "
        f"{tally.credits_spent:,.0f} credits spent, {projected:,.0f} projected"
    )


def pace_text(tally: Tally, now: float) -> str:
    """`1 min 5 s, about 18 s left, 2.1 jobs/s`: elapsed time, then what this run's pace says."""
    elapsed = format_seconds(now - tally.started)
    rate, left = pace(tally, now)
    if rate is None or left is None:
        return elapsed
    if tally.finished >= tally.total:
        return f"{elapsed}, {rate:.1f} jobs/s"
    return f"{elapsed}, about {format_seconds(left)} left, {rate:.1f} jobs/s"


def bar_line(tally: Tally, average_credits: float, now: float, columns: int) -> str:
    """The tqdm bar_format for a terminal `columns` wide: the bar and full counts when there is
    room, else the counts alone, shortest pieces last to go, so the line never wraps."""
    if columns >= WIDE_COLUMNS:
        text = f"[{pace_text(tally, now)}] {status_text(tally, average_credits)}"
        return "{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} " + _literal(text)
    _, left = pace(tally, now)
    pieces = [
        f"{tally.finished}/{tally.total}: {tally.completed} done, {tally.failed + tally.uncertain} failed",
        f", {tally.running + tally.downloading} running, {tally.queued} queued",
        f", {tally.settling} settling" if tally.settling else "",
        f"; {_short_number(tally.credits_spent)} credits",
        f"; {_clock(left)} left" if left else "",
    ]
    text = pieces[0]
    for piece in pieces[1:]:
        if len(text) + len(piece) < columns:
            text += piece
    return _literal(text[: columns - 1])


def _literal(text: str) -> str:
    """Text inside a tqdm bar_format, shown as it is."""
    return text.replace("{", "{{").replace("}", "}}")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _short_number(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


class Progress:
    """Reports `tally` until stopped."""

    def __init__(
        self,
        tally: Tally,
        mode: str,
        average_credits: float,
        stream: TextIO | None = None,
        columns: int | None = None,
    ):
        self.tally = tally
        self.mode = mode
        self.average_credits = average_credits
        # Looked up now, not at import: the process's stderr may have been replaced since.
        self.stream = stream or sys.stderr
        self.columns = columns  # None: the terminal's width, measured at each update
        self._bar: tqdm | None = None

    async def run(self) -> None:
        if self.mode == "quiet":
            return
        if self.mode == "bar":
            self._bar = tqdm(total=self.tally.total, file=self.stream, unit="job", dynamic_ncols=True)
        try:
            while True:
                self.update()
                await asyncio.sleep(BAR_INTERVAL_S if self._bar else LINE_INTERVAL_S)
        finally:
            self.update()
            if self._bar is not None:
                self._bar.close()

    def update(self) -> None:
        tally, now = self.tally, time.monotonic()
        if self._bar is not None:
            self._bar.bar_format = bar_line(tally, self.average_credits, now, self._columns())
            self._bar.n = tally.finished
            self._bar.refresh()
            return
        if self.mode == "lines":
            print(
                f"[{pace_text(tally, now)}] {tally.finished}/{tally.total} finished: "
                f"{status_text(tally, self.average_credits)}",
                file=self.stream,
                flush=True,
            )

    def _columns(self) -> int:
        if self.columns is not None:
            return self.columns
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return FALLBACK_COLUMNS
