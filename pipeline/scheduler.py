"""The scheduler: keeps N generations in flight, and stops the run cleanly.

A generation holds one of N slots from just before its submit until the service says it is
final, because the service's limit is on running generations, not on HTTP requests. The moment
a slot frees, the next job is submitted, so the pipe stays full. Downloads happen after the
slot is released, bounded separately, so a slow download never idles a generation slot. A
generation that passes `run.timeout` keeps its slot (and its budget reservation) until the run
ends: it is still running, and will be billed. What one job does is in steps.py.

On a cluster (pipeline/cluster/), each shard runs a Scheduler whose local window is the whole
account limit, and a `SharedWindow` all shards draw from keeps the account's limit across them:
a shard with work left takes the slots a finished shard no longer needs.

Stopping: a 401/403 (or a 404 to a submit) stops everything at once: every generation id is
already in the ledger, so a rerun resumes them. A budget limit or a first Ctrl-C stops
submitting and lets generations already paid for finish. A second Ctrl-C cancels everything.
Either way no POST leaves after the stop (a submit waiting in backoff gives up), and a POST on
its way is let finish, so its answer is recorded rather than leaving its job `uncertain`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import AbortError, BudgetError
from .ledger import Ledger
from .providers.base import Generation
from .states import JobState, PollState
from .steps import Job, Lost, Steps, TimedOut
from .tally import Tally


class SharedWindow(Protocol):
    """Slots shared with other schedulers, held per job (so a restarted shard keeps its own)."""

    async def acquire(self, job_id: str) -> bool: ...  # False: no slot will ever free (all held)

    def release(self, job_id: str) -> None: ...

    def hold(self, job_id: str) -> None: ...  # the generation passed run.timeout; keep its slot


@dataclass(frozen=True)
class SchedulerOptions:
    concurrency: int
    budget: int | None = None
    resubmit_failed: int = 0
    retry_uncertain: bool = False
    # Jobs not to submit in this run whatever their state: a restarted shard's jobs that its
    # dead attempt left uncertain or failed (a rerun decides about them, as after any crash).
    hold_back: frozenset[str] = frozenset()


class Scheduler:
    def __init__(
        self,
        jobs: Iterable[Job],
        steps: Steps,
        ledger: Ledger,
        options: SchedulerOptions,
        shared: SharedWindow | None = None,
    ):
        self.jobs = {job.job_id: job for job in jobs}
        self.steps = steps
        self.ledger = ledger
        self.options = options
        self.tally: Tally = steps.tally
        self.tally.total = len(self.jobs)
        self.abort: AbortError | None = None
        self.stop_reason: str | None = None
        self._slots = asyncio.Semaphore(options.concurrency)
        self._shared = shared
        self._tasks: set[asyncio.Task] = set()
        self._submitting: set[asyncio.Task] = set()
        self._held = 0  # slots kept by generations past run.timeout
        self._published: dict[str, int] | None = None  # relative path -> size, of videos in the store

    async def run(self) -> Tally:
        work = self._work_list()
        self.tally.queued = len(work)
        try:
            for job_id, status in work:
                await self._slots.acquire()
                shared = self.stop_reason is None and self._shared is not None
                if shared and not await self._shared.acquire(job_id):
                    shared = False
                    self.stop_submitting("every slot is held by a generation past run.timeout")
                if self.stop_reason is not None:  # perhaps while waiting for the shared slot
                    self._slots.release()
                    if shared:
                        self._shared.release(job_id)
                    break
                self.tally.queued -= 1
                self._in_flight(+1)  # counted now, so queued + running add up before the task starts
                task = asyncio.create_task(self._drive(self.jobs[job_id], status))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            while self._tasks:
                await asyncio.wait(list(self._tasks))
        except asyncio.CancelledError:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            raise
        return self.tally

    def stop_submitting(self, reason: str) -> None:
        """No new submits from now on; generations already running are seen through."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.steps.client.stop_submitting()

    def stop_now(self, error: AbortError) -> None:
        """Stop as a 401 would (another shard of the run met one)."""
        self._abort(error)

    def _abort(self, error: AbortError) -> None:
        """Stop the run now, sparing only submits already on their way (see the module doc)."""
        if self.abort is None or isinstance(self.abort, BudgetError):
            self.abort = error
        self.stop_submitting(str(error))
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current and task not in self._submitting:
                task.cancel()

    def _work_list(self) -> list[tuple[str, JobState]]:
        """(job_id, status) to work on: generations to resume first (uncertain jobs whose
        generation id is known among them), then jobs to submit."""
        resume, submit = [], []
        rows = self.ledger.rows_by_id()
        for job_id in self.jobs:
            row = rows[job_id]
            status = JobState(row["status"])
            if status.has_generation or (status is JobState.UNCERTAIN and row["generation_id"]):
                # An uncertain job with a known id is polled again before anything is paid for.
                resume.append((job_id, status))
            elif status.to_submit(self.options.retry_uncertain) and job_id not in self.options.hold_back:
                submit.append((job_id, status))
            elif status is JobState.COMPLETED and self._video_missing(row):
                resume.append((job_id, JobState.GENERATED))
            else:
                self.tally.skipped += 1
                if status is JobState.COMPLETED:
                    self.tally.completed += 1
                elif status is JobState.UNCERTAIN:
                    self.tally.uncertain += 1
                elif status is JobState.FAILED:
                    self.tally.failed += 1
        return resume + submit

    def _video_missing(self, row: dict[str, Any]) -> bool:
        """A completed job's video is not where it was put (or has another size): fetch it again."""
        if self.steps.store is None:
            path = self.steps.video_dir.parent / (row["path"] or "")
            return not row["path"] or not path.is_file() or path.stat().st_size != row["bytes"]
        if self._published is None:  # one listing of the store for the whole work list
            self._published = self.steps.store.sizes(self.steps.video_dir.name)
        return not row["path"] or self._published.get(Path(row["path"]).as_posix()) != row["bytes"]

    async def _drive(self, job: Job, status: JobState) -> None:
        """Take one job from where the ledger says it is to a final state, holding a slot."""
        keep_slot = False
        slot_held = True
        try:
            resuming = status.has_generation or status is JobState.UNCERTAIN
            generation_id = self.ledger.job(job.job_id)["generation_id"] if resuming else None
            outcome = await self._generate(job, generation_id, retried=status is JobState.UNCERTAIN)
            if outcome is None:
                return
            if isinstance(outcome, TimedOut):
                keep_slot = True
                self._hold_slot_until_the_end(job.job_id)
                return
            generation_id, generation = outcome
            self._release_slot(job.job_id)
            slot_held = False
            if generation.state is PollState.FAILED:
                self.steps.fail(job, generation.error_name, generation.error_message, generation.credits)
            else:
                await self.steps.download(job, generation_id, generation)
        except AbortError as error:
            self._abort(error)
        except Exception as error:  # a bug or a full disk: record it on the job, keep the run going
            self.steps.unexpected(job, error)
        finally:
            if slot_held and not keep_slot:
                self._release_slot(job.job_id)

    async def _generate(self, job: Job, generation_id: str | None, *, retried: bool):
        """Submit (unless resuming) and poll to the end; resubmit a failed one if allowed."""
        resubmits_left = self.options.resubmit_failed
        resubmit = retried
        submitted_here = generation_id is None
        while True:
            if generation_id is None:
                submitted_here = True
                if self.stop_reason is not None or self._over_budget(job):
                    return None
                self._submitting.add(asyncio.current_task())
                try:
                    generation_id = await self.steps.submit(job, resubmit=resubmit)
                finally:
                    self._submitting.discard(asyncio.current_task())
                if generation_id is None or (
                    self.abort is not None and not isinstance(self.abort, BudgetError)
                ):
                    return None  # stopped; a rerun polls the generation if it has an id
            outcome = await self.steps.poll_until_final(job, generation_id, resumed=not submitted_here)
            if isinstance(outcome, Lost):
                # Its known id is gone for good: only now may --retry-uncertain pay for it again.
                if retried and not submitted_here and self._may_retry_uncertain(job):
                    generation_id, resubmit = None, True
                    continue
                self.steps.lost(job, outcome)
                return None
            resubmit_now = resubmits_left > 0 and self.stop_reason is None
            if isinstance(outcome, Generation) and outcome.state is PollState.FAILED and resubmit_now:
                resubmits_left -= 1
                self.tally.resubmits += 1
                generation_id, resubmit = None, True
                continue
            if isinstance(outcome, Generation):
                return generation_id, outcome
            return outcome

    def _may_retry_uncertain(self, job: Job) -> bool:
        return self.options.retry_uncertain and job.job_id not in self.options.hold_back

    def _hold_slot_until_the_end(self, job_id: str) -> None:
        """A generation past run.timeout still runs (and will be billed): its slot stays taken.

        When every slot is held that way nothing can free one, so submitting stops (the feeder
        is woken to notice) instead of waiting forever.
        """
        self._held += 1
        if self._shared:
            self._shared.hold(job_id)
        if self._held >= self.options.concurrency:
            self.stop_submitting("every slot is held by a generation past run.timeout")
            self._slots.release()

    def _in_flight(self, change: int) -> None:
        self.tally.running += change
        self.tally.peak_in_flight = max(self.tally.peak_in_flight, self.tally.running)

    def _release_slot(self, job_id: str) -> None:
        self._slots.release()
        if self._shared:
            self._shared.release(job_id)
        self._in_flight(-1)

    def _over_budget(self, job: Job) -> bool:
        """True (and submitting stops) when this job's estimate would pass the budget."""
        budget = self.options.budget
        if budget is None:
            return False
        committed = self.tally.credits_spent + self.tally.credits_reserved + job.credits_estimate
        if committed <= budget:
            return False
        if self.abort is None:
            self.abort = BudgetError(
                f"stopped submitting: the next job would bring this run to {committed:,.0f} credits, "
                f"over the budget of {budget:,}"
            )
        self.stop_submitting(str(self.abort))
        return True
