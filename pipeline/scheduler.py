"""The scheduler: keeps N generations in flight, polls them, downloads what they made.

A generation holds one of N slots from just before its submit until the service says it is
final, because the service's limit is on running generations, not on HTTP requests. The
moment a slot frees, the next job is submitted, so the pipe stays full. Downloads happen after
the slot is released, bounded separately, so a slow download never idles a generation slot.

For each job the ledger is written before every network action that depends on it:
`submitting` before the POST, the generation id right after, `generated` before the download,
`completed` after the file is in place.

Polling: the first wait is `poll_interval`, or, once some generations have finished, 80-90%
of their median duration (a generation that typically takes 25 s is not asked about at 2, 5
and 9.5 s); after that waits back off from `poll_interval` to `poll_max_interval`. Waits have
+-20% jitter so thousands of jobs do not poll in lockstep; the first one only ever shortens,
so a finished generation is not noticed late.

Stopping: a 401/403 stops everything at once (every generation id is already recorded, so a
rerun resumes them); a budget limit or a first Ctrl-C stops submitting and lets generations
already paid for finish; a second Ctrl-C cancels everything, leaving a consistent ledger.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ledger as states
from .download import Downloader
from .errors import (
    AbortError,
    BudgetError,
    DownloadError,
    ExpiredUrlError,
    GenerationLostError,
    MaybeSentError,
    RejectedError,
    RequestError,
)
from .http import ApiClient
from .ledger import Ledger
from .plan import poll_delays
from .providers.base import COMPLETED, FAILED, Generation

DOWNLOAD_ATTEMPTS = 4
POLL_JITTER = 0.2
FIRST_WAIT_SHARE = 0.9
FIRST_WAIT_SAMPLE = 50


@dataclass(frozen=True)
class Job:
    """What the scheduler needs to know about one job."""

    job_id: str
    request: dict[str, Any]  # API fields; local image paths are read at submit time
    filename: str
    credits_estimate: int


@dataclass(frozen=True)
class SchedulerOptions:
    concurrency: int
    poll_first_s: float
    poll_cap_s: float
    timeout_s: float
    budget: int | None = None
    resubmit_failed: int = 0
    download_parallel: int = 8


@dataclass
class Tally:
    """Live counts for progress lines and the summary."""

    total: int = 0
    queued: int = 0
    running: int = 0
    downloading: int = 0
    completed: int = 0
    failed: int = 0
    uncertain: int = 0
    skipped: int = 0
    credits_spent: float = 0.0
    credits_reserved: float = 0.0
    resubmits: int = 0
    peak_in_flight: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.uncertain


class Scheduler:
    def __init__(
        self,
        jobs: list[Job],
        client: ApiClient,
        downloader: Downloader,
        ledger: Ledger,
        video_dir: Path,
        options: SchedulerOptions,
        prepare_request: Callable[[dict[str, Any]], dict[str, Any]],
        rng: random.Random | None = None,
    ):
        self.jobs = {job.job_id: job for job in jobs}
        self.client = client
        self.downloader = downloader
        self.ledger = ledger
        self.video_dir = video_dir
        self.options = options
        self.prepare_request = prepare_request
        self.tally = Tally(total=len(jobs))
        self.abort: AbortError | None = None
        self.stop_reason: str | None = None
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(options.concurrency)
        self._tasks: set[asyncio.Task] = set()
        self._submitting: set[asyncio.Task] = set()
        self._durations: list[float] = []  # seconds from submit to final, for the first wait

    # --- the feeder ---------------------------------------------------------------------

    async def run(self) -> Tally:
        work = self._work_list()
        self.tally.queued = len(work)
        try:
            for job_id, status in work:
                await self._slots.acquire()
                if self.stop_reason is not None:
                    self._slots.release()
                    break
                self.tally.queued -= 1
                task = asyncio.create_task(self._drive(self.jobs[job_id], status))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
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

    def _abort(self, error: AbortError) -> None:
        """Stop the run now. A submit already on the wire is let finish, so its answer (an id, or
        the same refusal) is recorded instead of leaving the job `uncertain`."""
        if self.abort is None or isinstance(self.abort, BudgetError):
            self.abort = error
        self.stop_submitting(str(error))
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current and task not in self._submitting:
                task.cancel()

    def _work_list(self) -> list[tuple[str, str]]:
        """(job_id, status) to work on: generations to resume first, then jobs to submit."""
        resume, submit = [], []
        rows = self.ledger.rows_by_id()
        for job_id in self.jobs:
            row = rows[job_id]
            status = row["status"]
            if status in states.WITH_GENERATION:
                resume.append((job_id, status))
            elif status in (states.PENDING, states.FAILED):
                submit.append((job_id, status))
            elif status == states.COMPLETED and self._video_missing(row):
                resume.append((job_id, states.GENERATED))
            else:
                self.tally.skipped += 1
                if status == states.COMPLETED:
                    self.tally.completed += 1
                elif status == states.UNCERTAIN:
                    self.tally.uncertain += 1
        return resume + submit

    def _video_missing(self, row: dict[str, Any]) -> bool:
        path = self.video_dir.parent / (row["path"] or "")
        return not row["path"] or not path.is_file() or path.stat().st_size != row["bytes"]

    # --- one job ------------------------------------------------------------------------

    async def _drive(self, job: Job, status: str) -> None:
        slot_held = True
        self._in_flight(+1)
        try:
            row = self.ledger.job(job.job_id)
            generation_id = row["generation_id"] if status in states.WITH_GENERATION else None
            resubmits_left = self.options.resubmit_failed
            resubmit = False
            while True:
                if generation_id is None:
                    generation_id = await self._submit(job, resubmit=resubmit)
                    if generation_id is None:
                        return
                generation = await self._poll_until_final(job, generation_id)
                if generation is None:
                    return
                if generation.state == FAILED and resubmits_left > 0 and self.stop_reason is None:
                    resubmits_left -= 1
                    self.tally.resubmits += 1
                    generation_id, resubmit = None, True
                    continue
                break
            self._slots.release()
            self._in_flight(-1)
            slot_held = False
            if generation.state == FAILED:
                self._finish_failed(job, generation.error_name, generation.error_message, generation.credits)
                return
            await self._download(job, generation_id, generation)
        except AbortError as error:
            self._abort(error)
        except asyncio.CancelledError:
            raise
        finally:
            if slot_held:
                self._slots.release()
                self._in_flight(-1)

    def _in_flight(self, change: int) -> None:
        self.tally.running += change
        self.tally.peak_in_flight = max(self.tally.peak_in_flight, self.tally.running)

    async def _submit(self, job: Job, *, resubmit: bool) -> str | None:
        """POST the job. Returns its generation id, or None when the job ended here."""
        if self._over_budget(job):
            self.ledger.mark_pending(job.job_id)
            return None
        try:
            body = await asyncio.to_thread(self.prepare_request, job.request)
        except (OSError, ValueError) as error:
            self._finish_failed(job, "input", f"cannot read the job's image: {error}")
            return None
        self.tally.credits_reserved += job.credits_estimate
        self.ledger.mark_submitting(job.job_id, resubmit=resubmit)
        task = asyncio.current_task()
        self._submitting.add(task)
        try:
            submitted = await self.client.submit(body, client_request_id=job.job_id)
        except MaybeSentError as error:
            self.tally.credits_reserved -= job.credits_estimate
            self.ledger.mark_uncertain(job.job_id, f"the submit may have been received: {error}")
            self.tally.uncertain += 1
            return None
        except AbortError:
            self.tally.credits_reserved -= job.credits_estimate
            self.ledger.mark_pending(job.job_id)  # 401/403: the service did not take it
            raise
        except RequestError as error:
            self.tally.credits_reserved -= job.credits_estimate
            name = f"http_{error.status}" if error.status else "request"
            self._finish_failed(job, name, str(error))
            return None
        except asyncio.CancelledError:
            self.ledger.mark_uncertain(job.job_id, "the run was cancelled while the submit was being sent")
            self.tally.uncertain += 1
            raise
        finally:
            self._submitting.discard(task)
        self.ledger.mark_submitted(job.job_id, submitted.generation_id)
        if self.abort is not None and not isinstance(self.abort, BudgetError):
            return None  # the run is stopping; the next run polls this generation
        return submitted.generation_id

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

    async def _poll_until_final(self, job: Job, generation_id: str) -> Generation | None:
        """Poll until the generation is final. None when the job ended otherwise (lost, timed out)."""
        started = time.monotonic()
        polls = 0
        first = self._first_wait() * self._rng.uniform(1 - POLL_JITTER / 2, 1)
        later = poll_delays(self.options.poll_first_s, self.options.poll_cap_s)
        waits = itertools.chain([first], (delay * self._jitter() for delay in later))
        try:
            for wait in waits:
                await asyncio.sleep(wait)
                try:
                    generation = await self.client.poll(generation_id)
                except GenerationLostError as error:
                    self._release_reservation(job)
                    self.ledger.mark_uncertain(job.job_id, str(error))
                    self.tally.uncertain += 1
                    return None
                except (RejectedError, MaybeSentError, RequestError):
                    generation = None  # retries are spent; try again at the next poll
                polls += 1
                if generation is not None and generation.state in (COMPLETED, FAILED):
                    self._durations.append(time.monotonic() - started)
                    self._release_reservation(job)
                    if generation.state == COMPLETED:
                        self._record_spend(job, generation.credits)
                        self.ledger.mark_generated(
                            job.job_id, generation.video_url, generation.credits, time.monotonic() - started
                        )
                    return generation
                if time.monotonic() - started > self.options.timeout_s:
                    self._release_reservation(job)
                    self.ledger.mark_timed_out(
                        job.job_id,
                        f"not finished after {self.options.timeout_s:.0f} s; a rerun polls it again",
                    )
                    self.tally.failed += 1
                    return None
        finally:
            if polls:
                self.ledger.add_polls(job.job_id, polls)
        return None

    def _jitter(self) -> float:
        return self._rng.uniform(1 - POLL_JITTER, 1 + POLL_JITTER)

    def _first_wait(self) -> float:
        if not self._durations:
            return self.options.poll_first_s
        recent = sorted(self._durations[-FIRST_WAIT_SAMPLE:])
        return max(self.options.poll_first_s, FIRST_WAIT_SHARE * recent[len(recent) // 2])

    def _release_reservation(self, job: Job) -> None:
        self.tally.credits_reserved -= job.credits_estimate

    def _record_spend(self, job: Job, credits: float | None) -> None:
        self.tally.credits_spent += credits if credits is not None else job.credits_estimate

    def _finish_failed(self, job: Job, name: str | None, message: str | None, credits: float | None = None):
        self.ledger.mark_failed(job.job_id, name or "error", message or "failed", credits)
        self.tally.failed += 1

    async def _download(self, job: Job, generation_id: str, generation: Generation) -> None:
        path = self.video_dir / job.filename
        url, size = generation.video_url, generation.video_bytes
        problem = "the service gave no fresh video URL"
        self.tally.downloading += 1
        try:
            for attempt in range(DOWNLOAD_ATTEMPTS):
                if url is None:
                    fresh = await self._fresh_url(generation_id)
                    if fresh is None:
                        break
                    url, size = fresh.video_url, fresh.video_bytes
                    self.ledger.mark_generated(job.job_id, url, fresh.credits, None)
                try:
                    downloaded = await self.downloader.fetch(url, path, size)
                except ExpiredUrlError as error:
                    problem, url = str(error), None  # poll again for a freshly signed URL
                    continue
                except DownloadError as error:
                    problem = str(error)
                    if attempt >= 1:
                        url = None  # the same link failed twice: ask for a fresh one
                    await asyncio.sleep(self._rng.uniform(0.2, 1.0) * 2**attempt)
                    continue
                relative = downloaded.path.relative_to(self.video_dir.parent)
                self.ledger.mark_completed(job.job_id, str(relative), downloaded.size, downloaded.sha256)
                self.tally.completed += 1
                return
            # The generation is paid for: it stays `generated`, and a rerun downloads it.
            self.ledger.mark_download_failed(job.job_id, problem)
            self.tally.failed += 1
        finally:
            self.tally.downloading -= 1

    async def _fresh_url(self, generation_id: str) -> Generation | None:
        try:
            generation = await self.client.poll(generation_id)
        except AbortError:
            raise
        except RequestError:
            return None
        return generation if generation.state == COMPLETED and generation.video_url else None
