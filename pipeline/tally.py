"""Live counts of a run, for progress lines and the summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


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
    credits_reserved: float = 0.0  # estimates of generations running now
    resubmits: int = 0
    peak_in_flight: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.uncertain
