"""The vocabulary of a job: the state the ledger records, and what a poll of its generation says.

`JobState` values are the strings stored in ledgers and output tables: they never change.

    pending --> submitting --> submitted --> generated --> completed
                    |              |  \\--> timed_out (polled again on the next run)
                    |              \\--> failed (the API said so; not billed, retried on a rerun)
                    \\--> uncertain (sent, answer lost: resubmitted only with --retry-uncertain)

`PollState` is what one poll answer says of a generation (providers/ read it from the service);
it is not a job's state: a completed generation is a job still to download.
"""

from __future__ import annotations

from enum import Enum


class _Word(str, Enum):
    """A state that is its own string wherever it goes (ledger, tables, messages), as 3.11's
    StrEnum is; vidpipe supports Python 3.10."""

    def __str__(self) -> str:
        return str.__str__(self)


class JobState(_Word):
    PENDING = "pending"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    GENERATED = "generated"
    COMPLETED = "completed"
    FAILED = "failed"
    UNCERTAIN = "uncertain"
    TIMED_OUT = "timed_out"

    def to_submit(self, retry_uncertain: bool) -> bool:
        """A run submits (and pays for) a job in this state: never sent, refused, or (only when
        the user asks, after checking the account) maybe sent."""
        return self in (JobState.PENDING, JobState.FAILED) or (retry_uncertain and self is JobState.UNCERTAIN)

    @property
    def has_generation(self) -> bool:
        """A generation id is recorded that a run polls or fetches, never paying again."""
        return self in WITH_GENERATION

    @property
    def generating(self) -> bool:
        """The service may still be generating it: it holds a slot of the account's window."""
        return self in (JobState.SUBMITTED, JobState.TIMED_OUT)

    @property
    def maybe_sent(self) -> bool:
        """A submit may have reached the service without its answer reaching us (a job caught
        mid-submit becomes uncertain when the next run starts): never resent silently."""
        return self in (JobState.UNCERTAIN, JobState.SUBMITTING)

    @property
    def counts_as_failed(self) -> bool:
        """The report's and the summary's "failed": refused, or not finished in time."""
        return self in (JobState.FAILED, JobState.TIMED_OUT)

    @property
    def final(self) -> bool:
        """The run's attempt at it has ended: nothing more happens without a rerun."""
        return self is JobState.COMPLETED or self.counts_as_failed or self is JobState.UNCERTAIN


WITH_GENERATION = frozenset({JobState.SUBMITTED, JobState.GENERATED, JobState.TIMED_OUT})


def states_where(question: str) -> frozenset[JobState]:
    """The states for which the property `question` is true (for pandas' `isin`)."""
    return frozenset(state for state in JobState if getattr(state, question))


class PollState(_Word):
    """One poll's answer: running; completed (billed; its video URL may still be missing);
    failed (ended in error: not billed, safe to submit again); lost (the service no longer knows
    the id: it may have run and been billed, so the job must not be resent silently)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    LOST = "lost"

    @property
    def final(self) -> bool:
        return self in (PollState.COMPLETED, PollState.FAILED)
