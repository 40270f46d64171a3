"""The scheduler: keeps N generations in flight, and stops the run cleanly.

A generation holds one of N slots from just before its submit until the service says it is
final, because the service's limit is on running generations, not on HTTP requests. The moment
a slot frees, the next job is submitted, so the pipe stays full. Downloads happen after the
slot is released, bounded separately, so a slow download never idles a generation slot. A
generation that passes `run.timeout` keeps its slot (and its budget reservation) until the run
ends: it is still running, and will be billed. What one job does is in steps.py; what each step
ends in (outcomes.py) is counted here, the only writer of the run's Tally.

Credits: a job's estimate is reserved the moment the budget check lets its submit go (nothing
is awaited in between, so jobs started together cannot all pass on the same figures), and
released when its generation is final or given up, or when its submit ends without one. A
generation past run.timeout keeps its reservation. A completed generation's credits, as the
service reports them (else the estimate), are spent. The budget limits what this run submits,
as the check before the start does: a generation resumed from an earlier run was reserved by
that run, so its credits are shown as spent but leave this run's budget alone.

Settling (settle.py): a submit that may have arrived without its answer reaching us gives its
slot back while the service's logs are asked about it, so the other jobs go on; found, it
takes a slot again and its generation is polled; never arrived, it takes a slot and is
submitted again. A rerun starts by settling the jobs an earlier run left `uncertain`, each
without a slot until its verdict. Without a settler (the Ray engine), or when the key cannot
read its logs, such jobs stay `uncertain` as before.

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
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ..errors import AbortError, BudgetError
from ..net.http import Counters
from ..net.providers.base import Generation
from ..states import JobState, PollState
from .ledger import Ledger
from .outcomes import Completed, Ending, Interrupted, Lost, TimedOut, Uncertain
from .settle import Settled, Settler, Verdict, attempt_of
from .steps import Job, Steps
from .tally import Tally

LOOP_TURNS_TO_THE_NEXT_SUBMIT = 4  # a freed slot: the feeder wakes, starts the job, it submits
DOWNLOAD_YIELDS_AT_MOST_S = 0.25


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
        settler: Settler | None = None,
    ):
        self.jobs = {job.job_id: job for job in jobs}
        self.steps = steps
        self.ledger = ledger
        self.options = options
        self.tally = Tally(total=len(self.jobs))
        self.abort: AbortError | None = None
        self.stop_reason: str | None = None
        self._slots = asyncio.Semaphore(options.concurrency)
        self._shared = shared
        self.settler = settler
        self._holding: set[str] = set()  # jobs holding a slot now
        self._tasks: set[asyncio.Task] = set()
        self._submitting: set[asyncio.Task] = set()
        self._no_submits = asyncio.Event()  # set while no submit is on its way
        self._no_submits.set()
        self._held = 0  # slots kept by generations past run.timeout
        self._reservations: set[str] = set()  # jobs whose estimate is in credits_reserved

    async def run(self) -> Tally:
        work, to_settle = self._work_list()
        self.tally.queued = len(work)
        self.tally.credits_queued = float(sum(self.jobs[job_id].credits_estimate for job_id, _ in work))
        try:
            for job_id in to_settle:  # no slot until settled: a verdict may take minutes
                self._start(self._drive(self.jobs[job_id], JobState.UNCERTAIN, settle_first=True))
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
                self.tally.credits_queued -= self.jobs[job_id].credits_estimate
                self._holding.add(job_id)
                self._in_flight(+1)  # counted now, so queued + running add up before the task starts
                self._start(self._drive(self.jobs[job_id], status))
            while self._tasks:
                await asyncio.wait(list(self._tasks))
        except asyncio.CancelledError:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            raise
        return self.tally

    def _start(self, work) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop_submitting(self, reason: str) -> None:
        """No new submits from now on; generations already running are seen through (jobs
        waiting to be settled stay `uncertain`: the next run settles them)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.steps.stop_submitting()
        if self.settler is not None:
            self.settler.stop()

    @property
    def http_counters(self) -> Counters:
        return self.steps.http_counters

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

    def _work_list(self) -> tuple[list[tuple[str, JobState]], list[str]]:
        """(job_id, status) to work on: generations to resume first (uncertain jobs whose
        generation id is known among them), then jobs to submit; and the uncertain jobs to
        settle from the service's logs before anything else is decided about them."""
        resume, submit, settle = [], [], []
        rows = self.ledger.rows_by_id()
        for job_id in self.jobs:
            row = rows[job_id]
            status = JobState(row["status"])
            if status.has_generation or (status is JobState.UNCERTAIN and row["generation_id"]):
                # An uncertain job with a known id is polled again before anything is paid for.
                resume.append((job_id, status))
            elif self._settleable(status, row):
                settle.append(job_id)
            elif status.to_submit(self.options.retry_uncertain) and job_id not in self.options.hold_back:
                submit.append((job_id, status))
            elif status is JobState.COMPLETED and self.steps.video_missing(row):
                resume.append((job_id, JobState.GENERATED))
            else:
                self.tally.count_before(status)
        return resume + submit, settle

    def _settleable(self, status: JobState, row: dict) -> bool:
        return (
            self.settler is not None
            and status is JobState.UNCERTAIN
            and row["job_id"] not in self.options.hold_back
            and attempt_of(row) is not None
        )

    async def _drive(self, job: Job, status: JobState, *, settle_first: bool = False) -> None:
        """Take one job from where the ledger says it is to a final state, holding a slot
        (taken before this starts, or once settled)."""
        held = False  # past run.timeout: still running, so its slot and reservation stay
        try:
            resuming = status.has_generation or status is JobState.UNCERTAIN
            generation_id = self.ledger.job(job.job_id)["generation_id"] if resuming else None
            result = await self._generate(
                job, generation_id, retried=status is JobState.UNCERTAIN, settle_first=settle_first
            )
            if isinstance(result, TimedOut):
                held = True
                self._holding.discard(job.job_id)
                self._hold_slot_until_the_end(job.job_id)
            if not isinstance(result, tuple):
                if result is not None:
                    self.tally.count(result)
                return
            generation_id, generation = result
            self._release_slot(job.job_id)
            if generation.state is PollState.FAILED:
                error = generation.error_name, generation.error_message, generation.credits
                self.tally.count(self.steps.fail(job, *error))
            else:
                await self._download(job, generation_id, generation)
        except AbortError as error:
            self._abort(error)
        except Exception as error:  # a bug or a full disk: record it on the job, keep the run going
            ending = self.steps.unexpected(job, error)
            if ending is not None:
                self.tally.count(ending)
        finally:
            self._release_slot(job.job_id)
            if not held:  # cancelled, aborted or broken mid-way: nothing of it runs on our budget
                self._unreserve(job)

    async def _generate(
        self, job: Job, generation_id: str | None, *, retried: bool, settle_first: bool = False
    ) -> tuple[str, Generation] | Ending | None:
        """Submit (unless resuming) and poll to the end; resubmit a failed one if allowed.

        The final generation, with its id; or how the job ended before one; None when it was
        not submitted (the run is stopping: a rerun submits it, or polls its recorded id).
        """
        resubmits_left = self.options.resubmit_failed
        resubmit = retried
        submitted_here = generation_id is None
        reserved = False  # for a resubmit, reserved when it was decided (nothing awaited since)
        if settle_first:  # left uncertain by an earlier run
            settled = await self._settle(job)
            if settled.verdict is Verdict.FOUND:
                generation_id, submitted_here = settled.generation_id, False
            elif settled.verdict is not Verdict.NOT_ARRIVED:
                if not self._may_retry_uncertain(job):
                    return Uncertain(settled.reason or "its submit is not settled yet")
                await self._take_slot(job.job_id)  # resent as the user asked (no logs to settle it)
        while True:
            if generation_id is None:
                submitted_here = True
                if not reserved and (self.stop_reason is not None or not self._reserve(job)):
                    return None
                reserved = False
                submitted = await self._submit(job, resubmit)
                if isinstance(submitted, Uncertain) and self.settler is not None and self.stop_reason is None:
                    settled = await self._settle(job)
                    if settled.verdict is Verdict.NOT_ARRIVED:
                        resubmit = True
                        continue
                    if settled.verdict is not Verdict.FOUND:
                        return submitted
                    self._reserve_paid(job)
                    submitted = settled.generation_id
                if not isinstance(submitted, str):
                    return submitted
                generation_id = submitted
                if self.abort is not None and not isinstance(self.abort, BudgetError):
                    self._unreserve(job)  # the run ends here
                    return None  # stopped; a rerun polls the generation by its id
            outcome = await self.steps.poll_until_final(job, generation_id, resumed=not submitted_here)
            if isinstance(outcome, TimedOut):
                return outcome  # still running, and it will be billed: its reservation stays
            self._unreserve(job)  # (a resumed generation was reserved by the run that sent it)
            if isinstance(outcome, Lost):
                # Its known id is gone for good: only now may --retry-uncertain pay for it again.
                if retried and not submitted_here and self._may_retry_uncertain(job):
                    generation_id, resubmit = None, True
                    continue
                return self.steps.lost(job, outcome)
            if outcome.state is PollState.COMPLETED:
                credits = outcome.credits if outcome.credits is not None else job.credits_estimate
                self.tally.credits_spent += credits
                if submitted_here:
                    self.tally.budget_spent += credits
            # A resubmit the budget refuses leaves this failed generation to be recorded as such.
            resubmit_now = resubmits_left > 0 and self.stop_reason is None
            if outcome.state is PollState.FAILED and resubmit_now and self._reserve(job):
                reserved = True
                resubmits_left -= 1
                self.tally.resubmits += 1
                generation_id, resubmit = None, True
                continue
            return generation_id, outcome

    async def _settle(self, job: Job) -> Settled:
        """The logs' verdict on the job's last attempt, waited for without a slot; recorded,
        and with a slot taken again, when it is found or never arrived."""
        attempt = attempt_of(self.ledger.job(job.job_id))
        if attempt is None:
            return Settled(Verdict.UNAVAILABLE, reason="its submit has no client request id recorded")
        self._release_slot(job.job_id)
        self.tally.settling += 1
        try:
            settled = await self.settler.settle(attempt)
        finally:
            self.tally.settling -= 1
        if settled.verdict is Verdict.FOUND:
            self.ledger.mark_settled_found(job.job_id, settled.generation_id)
        elif settled.verdict is Verdict.NOT_ARRIVED:
            self.ledger.mark_settled_not_arrived(job.job_id)
        else:
            return settled
        await self._take_slot(job.job_id)
        return settled

    async def _take_slot(self, job_id: str) -> None:
        await self._slots.acquire()
        if self._shared is not None:
            await self._shared.acquire(job_id)
        self._holding.add(job_id)
        self._in_flight(+1)

    def _reserve_paid(self, job: Job) -> None:
        """A generation found to exist is this run's: its estimate is reserved whatever the
        budget says (it is paid for already; the budget stops only new submits)."""
        if job.job_id not in self._reservations:
            self.tally.credits_reserved += job.credits_estimate
            self._reservations.add(job.job_id)

    async def _submit(self, job: Job, resubmit: bool) -> str | Ending:
        """The submit, with the job's estimate reserved (by _reserve) until it has an id."""
        current = asyncio.current_task()
        self._submitting.add(current)
        self._no_submits.clear()
        try:
            submitted = await self.steps.submit(job, resubmit=resubmit)
        except BaseException:
            self._unreserve(job)
            raise
        finally:
            self._submitting.discard(current)
            if not self._submitting:
                self._no_submits.set()
        if isinstance(submitted, str):
            return submitted
        self._unreserve(job)
        if isinstance(submitted, Interrupted):
            self.tally.count(submitted.ending)
            raise asyncio.CancelledError
        return submitted

    async def _download(self, job: Job, generation_id: str, generation: Generation) -> None:
        self.tally.downloading += 1
        try:
            await self._after_the_submits_on_their_way()
            ending = await self.steps.download(job, generation_id, generation)
        finally:
            self.tally.downloading -= 1
        self.tally.count(ending)
        if isinstance(ending, Completed):
            await self.steps.after_completed(ending)

    async def _after_the_submits_on_their_way(self) -> None:
        """Let the submits go first, for a moment: a submit fills a slot, so every moment it
        waits is a moment of the run; a download is waited for only at the end. A wave of
        generations ending together otherwise makes the last submits of the next wave queue
        behind the downloads of this one. The job taking the freed slot reaches its submit a few
        turns of the loop after the release, hence the turns given first."""
        for _ in range(LOOP_TURNS_TO_THE_NEXT_SUBMIT):
            await asyncio.sleep(0)
        if not self._no_submits.is_set():
            with contextlib.suppress(asyncio.TimeoutError):  # one waiting on the rate: not for long
                await asyncio.wait_for(self._no_submits.wait(), DOWNLOAD_YIELDS_AT_MOST_S)

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
        """Give the job's slot back, if it holds one."""
        if job_id not in self._holding:
            return
        self._holding.discard(job_id)
        self._slots.release()
        if self._shared:
            self._shared.release(job_id)
        self._in_flight(-1)

    def _unreserve(self, job: Job) -> None:
        """Release the job's reservation, if it holds one (once, however its work ended)."""
        if job.job_id in self._reservations:
            self._reservations.discard(job.job_id)
            self.tally.credits_reserved -= job.credits_estimate

    def _reserve(self, job: Job) -> bool:
        """Reserve this job's estimate; False (and submitting stops) when it would pass the budget,
        or when a budget is set and the job's price is not known."""
        budget = self.options.budget
        committed = self.tally.budget_spent + self.tally.credits_reserved + job.credits_estimate
        if budget is not None and not job.price_known:  # its 0 estimate would let anything pass
            if self.abort is None:
                self.abort = BudgetError(
                    f"stopped submitting: job {job.job_id} ({job.request.get('model')}) has no known "
                    "price, so the budget cannot hold it; remove the budget to run it"
                )
            self.stop_submitting(str(self.abort))
            return False
        if budget is None or committed <= budget:
            self.tally.credits_reserved += job.credits_estimate
            self._reservations.add(job.job_id)
            return True
        if self.abort is None:
            self.abort = BudgetError(
                f"stopped submitting: the next job would bring this run to {committed:,.0f} credits, "
                f"over the budget of {budget:,}"
            )
        self.stop_submitting(str(self.abort))
        return False
