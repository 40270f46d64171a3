"""Live counts of a run, for progress lines and the summary.

The scheduler is the only writer: it feeds the jobs' endings to `count`, and keeps the window
and credit counts itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..states import JobState
from .outcomes import Completed, Ending, Failed, NotTaken, TimedOut, Uncertain


@dataclass
class Tally:
    total: int = 0
    queued: int = 0
    running: int = 0
    downloading: int = 0
    completed: int = 0
    failed: int = 0
    uncertain: int = 0
    skipped: int = 0  # final before this run started
    credits_spent: float = 0.0
    credits_reserved: float = 0.0  # estimates of generations this run submitted, running now
    credits_queued: float | None = None  # estimates of the queued jobs (None: not counted, see progress)
    budget_spent: float = 0.0  # the part of credits_spent this run submitted: what run.budget limits
    resubmits: int = 0
    settling: int = 0  # maybe-sent submits waiting for the service's logs (settle.py), slot given back
    peak_in_flight: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.uncertain

    def count(self, ending: Ending) -> None:
        """One job ended this run."""
        match ending:
            case Completed():
                self.completed += 1
            case Failed() | TimedOut():
                self.failed += 1
            case Uncertain():
                self.uncertain += 1
            case NotTaken():
                pass

    def count_before(self, state: JobState) -> None:
        """One job this run leaves alone, as an earlier run left it."""
        self.skipped += 1
        if state is JobState.COMPLETED:
            self.completed += 1
        elif state is JobState.UNCERTAIN:
            self.uncertain += 1
        elif state is JobState.FAILED:
            self.failed += 1
