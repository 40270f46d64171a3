"""What one job's steps (steps.py) end in, as values the scheduler counts (Tally.count). Pure.

submit  -> a generation id, or an Ending: Failed (refused, or its image unreadable),
           Uncertain (it may have arrived), NotTaken (nothing was taken: back to pending);
           Interrupted(Ending) when the run was cancelled during it
poll    -> the final Generation, TimedOut (still running: it keeps its slot) or Lost (the
           id was given up: the job becomes Uncertain unless --retry-uncertain resends it)
download -> Completed or Failed (paid for but not fetched: a rerun fetches it)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Completed:
    """The video is in place (published, with a store): the job is completed."""

    video: Path  # the local file
    relative: Path  # where the ledger says it is, from the output folder


@dataclass(frozen=True)
class Failed:
    """The job did not complete; a rerun takes it up again."""

    message: str


@dataclass(frozen=True)
class Uncertain:
    """A submit may have been received (and billed): never resent silently."""

    message: str


@dataclass(frozen=True)
class TimedOut:
    """The generation did not finish within run.timeout: it still runs, and will be billed."""

    message: str


@dataclass(frozen=True)
class NotTaken:
    """The service took nothing of this submit: the job is `pending` again, counted nowhere."""


@dataclass(frozen=True)
class Lost:
    """The service kept answering that it does not know the generation (or nonsense)."""

    message: str


Ending = Completed | Failed | Uncertain | TimedOut | NotTaken


@dataclass(frozen=True)
class Interrupted:
    """The run was cancelled while the submit was under way: the job ended as `ending`."""

    ending: Ending
