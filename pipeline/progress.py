"""Progress for people and for CI: a tqdm bar on a terminal, a plain line every few seconds elsewhere."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

from tqdm import tqdm

from .ci import on_ci
from .plan import format_seconds
from .tally import Tally

LINE_INTERVAL_S = 10.0
BAR_INTERVAL_S = 0.5


def choose_mode(quiet: bool, stream: TextIO | None = None) -> str:
    """quiet; a bar on a terminal; plain lines in CI (its log is not a terminal) and elsewhere."""
    if quiet:
        return "quiet"
    return "bar" if (stream or sys.stderr).isatty() and not on_ci() else "lines"


def status_text(tally: Tally, average_credits: float) -> str:
    projected = tally.credits_spent + tally.credits_reserved + tally.queued * average_credits
    return (
        f"{tally.queued} queued, {tally.running} running, {tally.downloading} downloading, "
        f"{tally.completed} done, {tally.failed + tally.uncertain} failed; "
        f"{tally.credits_spent:,.0f} credits spent, {projected:,.0f} projected"
    )


class Progress:
    """Reports `tally` until stopped."""

    def __init__(self, tally: Tally, mode: str, average_credits: float, stream: TextIO | None = None):
        self.tally = tally
        self.mode = mode
        self.average_credits = average_credits
        # Looked up now, not at import: the process's stderr may have been replaced since.
        self.stream = stream or sys.stderr
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
        tally = self.tally
        done = tally.finished
        if self._bar is not None:
            self._bar.n = done
            self._bar.set_postfix_str(status_text(tally, self.average_credits), refresh=False)
            self._bar.refresh()
            return
        if self.mode == "lines":
            elapsed = time.monotonic() - tally.started
            eta = ""
            fresh = done - tally.skipped
            if fresh > 0 and done < tally.total:
                eta = f", about {format_seconds(elapsed / fresh * (tally.total - done))} left"
            print(
                f"[{format_seconds(elapsed)}] {done}/{tally.total} finished: "
                f"{status_text(tally, self.average_credits)}{eta}",
                file=self.stream,
                flush=True,
            )
