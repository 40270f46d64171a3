"""The steps of one job: submit, poll until final, download. Each step is recorded in the ledger
before the network action that depends on it.

- submit: the intent (`submitting`) is recorded the moment each POST attempt leaves (after any
  rate-limit or backoff wait), and the generation id right after the answer. An attempt the
  service refused, or one never sent, leaves the job `pending`; one that may have arrived
  without an id reaching us makes it `uncertain`, never resent silently.
- poll: at the waits of cadence.py. The first generation to finish wakes the waits of those
  started with it, which then poll when the typical duration says (not at their next growing
  wait). One bad answer (a 404, status `unknown`, a 4xx, a body that is not a poll answer)
  proves nothing: the id is polled on, at the same growing waits, until `LOST_AFTER_POLLS`
  bad answers in a row have spanned `LOST_AFTER_CAPS` x `poll_max_interval` (a minute by
  default). Only then is the id given up (`Lost`): the generation may have run and been
  billed, so the scheduler makes the job `uncertain`, and a rerun polls the id again.
- download: streamed and checked by `Downloader`; an expired or bad link is replaced by
  polling again. A generation that is paid for but could not be fetched stays `generated`, so
  a rerun fetches it. With a store (output.dir as a URL) the checked video is uploaded, and
  its local copy deleted, before the job is marked completed; a failed upload is a failed
  download.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .aio import sleep_unless
from .cadence import Cadence, Durations
from .download import Downloader
from .errors import (
    AbortError,
    DownloadError,
    ExpiredUrlError,
    GenerationLostError,
    MaybeSentError,
    RejectedError,
    RequestError,
    StoppedError,
    StoreError,
)
from .http import ApiClient
from .ledger import GenerationFacts, Ledger
from .posters import POSTER_DIR, extract_poster, poster_path_for
from .providers.base import Generation
from .states import JobState, PollState
from .storage import Store
from .tally import Tally

DOWNLOAD_ATTEMPTS = 4
LOST_AFTER_POLLS = 5  # bad answers in a row before a generation id is given up...
LOST_AFTER_CAPS = 4  # ...spanning at least this many poll_max_intervals


@dataclass(frozen=True)
class TimedOut:
    """The generation did not finish within run.timeout: it still runs, and will be billed."""

    message: str


@dataclass(frozen=True)
class Lost:
    """The service kept answering that it does not know the generation (or nonsense)."""

    message: str


@dataclass
class BadAnswers:
    """One generation's streak of bad poll answers: the id is given up (`Lost`) only after
    `polls` of them in a row, spanning at least `span_s` seconds. A real answer ends the streak;
    a transient failure (no answer at all) neither ends nor lengthens it."""

    span_s: float
    polls: int = LOST_AFTER_POLLS
    count: int = 0
    since: float = 0.0

    def answered(self) -> None:
        self.count = 0

    def bad(self, problem: str, now: float) -> Lost | None:
        if self.count == 0:
            self.since = now
        self.count += 1
        lasted = now - self.since
        if self.count >= self.polls and lasted >= self.span_s:
            return Lost(f"{problem} ({self.count} bad answers in a row over {lasted:.0f} s)")
        return None


@dataclass(frozen=True)
class Job:
    """What the steps need to know about one job."""

    job_id: str
    request: dict[str, Any]  # API fields; local image paths are read at submit time
    filename: str
    credits_estimate: int


@dataclass(frozen=True)
class StepOptions:
    poll_first_s: float
    poll_cap_s: float
    timeout_s: float


def _clock() -> float:
    """The running loop's clock: monotonic, and the one a test can fake."""
    return asyncio.get_running_loop().time()


class Steps:
    def __init__(
        self,
        client: ApiClient,
        downloader: Downloader,
        ledger: Ledger,
        video_dir: Path,
        options: StepOptions,
        prepare_request: Callable[[dict[str, Any]], dict[str, Any]],
        tally: Tally,
        rng: random.Random,
        *,
        store: Store | None = None,
    ):
        self.client = client
        self.downloader = downloader
        self.ledger = ledger
        self.video_dir = video_dir
        self.options = options
        self.prepare_request = prepare_request
        self.tally = tally
        self._rng = rng
        # Where finished videos are published; None: they stay in video_dir (a local run).
        self.store = store
        self._cadence = Cadence(options.poll_first_s, options.poll_cap_s)
        self._durations = Durations()  # seconds from submit to final, of this run's generations
        self._first_duration = asyncio.Event()  # set once a generation's duration is known
        self._facts: dict[str, GenerationFacts] = {}  # final polls not yet written (see poll_until_final)

    # --- submit -------------------------------------------------------------------------

    async def submit(self, job: Job, *, resubmit: bool = False) -> str | None:
        """POST the job. Returns its generation id, or None when the job stops here."""
        try:
            body = await asyncio.to_thread(self.prepare_request, job.request)
        except (OSError, ValueError) as error:
            self.fail(job, "input", f"cannot read the job's image: {error}")
            return None
        attempt = _Attempt(self.ledger, job.job_id, resubmit)
        self.tally.credits_reserved += job.credits_estimate
        try:
            submitted = await self.client.submit(body, client_request_id=job.job_id, hooks=attempt)
        except StoppedError:
            self._release(job)
            self._not_taken(job, attempt)
            return None
        except MaybeSentError as error:
            self._release(job)
            self._uncertain(job, f"the submit may have been received: {error}")
            return None
        except AbortError:
            self._release(job)
            self._not_taken(job, attempt)  # 401/403/404: the service did not take it
            raise
        except RequestError as error:  # refused (4xx) or never taken (retries spent): not billed
            self._release(job)
            self.fail(job, f"http_{error.status}" if error.status else "request", str(error))
            return None
        except asyncio.CancelledError:
            self._release(job)
            if attempt.in_transit:
                self._uncertain(job, "the run was stopped while the submit was on its way")
            else:
                self._not_taken(job, attempt)
            raise
        self.ledger.mark_submitted(job.job_id, submitted.generation_id)
        return submitted.generation_id

    # --- poll ---------------------------------------------------------------------------

    async def poll_until_final(
        self, job: Job, generation_id: str, *, resumed: bool = False
    ) -> Generation | Lost | TimedOut:
        """The final Generation; TimedOut; or Lost when the id kept being refused (the caller
        decides what the job becomes: see the module doc).

        A completed generation's facts stay in memory (`facts`) until the job's last write, which
        saves a ledger write per job; the generation id is already recorded, so nothing is lost.
        """
        started = _clock()
        facts = self._facts.setdefault(job.job_id, GenerationFacts())
        streak = BadAnswers(span_s=LOST_AFTER_CAPS * self.options.poll_cap_s)
        running_at = None  # seconds after `started` of the last poll that said "still running"
        waits = self._cadence.waits(self._rng)
        while True:
            await self._pause(waits.next(_clock() - started, self._durations.typical()), started)
            problem = None
            try:
                # A poll's whole exchange ends by the job's timeout, however slowly the server answers.
                generation = await self.client.poll(generation_id, deadline=started + self.options.timeout_s)
            except (GenerationLostError, RejectedError) as error:
                generation, problem = None, f"polling generation {generation_id} failed: {error}"
            except RequestError:
                generation = None  # retries are spent for now; ask again at the next poll
            facts.polls += 1
            if generation is not None and generation.state is PollState.LOST:
                generation, problem = None, f"generation {generation_id}: {generation.error_message}"
            if generation is not None:
                streak.answered()
            elif problem is not None:
                lost = streak.bad(problem, _clock())
                if lost is not None:
                    self._release(job)
                    return lost
            if generation is not None and generation.state.final:
                # A resumed job's clock started at resume: its duration would be wrong, so it is
                # neither recorded nor used to pace other polls.
                seconds = None if resumed else _clock() - started
                if seconds is not None:
                    self._durations.learn(seconds, running_at)
                    self._first_duration.set()
                self._release(job)
                if generation.state is PollState.COMPLETED:
                    self.tally.credits_spent += (
                        generation.credits if generation.credits is not None else job.credits_estimate
                    )
                    facts.video_url, facts.credits, facts.seconds = (
                        generation.video_url,
                        generation.credits,
                        seconds,
                    )
                return generation
            if generation is not None:
                running_at = _clock() - started
            if _clock() - started > self.options.timeout_s:
                # Still running, and it will be billed: its reservation stays until the run ends.
                message = f"not finished after {self.options.timeout_s:.0f} s; a rerun polls it again"
                self.ledger.mark_timed_out(job.job_id, message, polls=self._take_facts(job).polls)
                self.tally.failed += 1
                return TimedOut(message)

    async def _pause(self, wait: float, started: float) -> None:
        """Sleep `wait` s before a poll; while no duration is known yet, wake when the first one
        is, and poll when a known duration says to (the first generations tell the others)."""
        if self._first_duration.is_set():
            await asyncio.sleep(wait)
            return
        deadline = _clock() + wait  # never later than planned
        if await sleep_unless(self._first_duration, wait):
            first = started + self._cadence.first_wait(self._durations.typical() or 0.0, self._rng)
            await asyncio.sleep(max(0.0, min(deadline, first) - _clock()))

    # --- download -----------------------------------------------------------------------

    async def download(self, job: Job, generation_id: str, generation: Generation) -> None:
        path = self.video_dir / job.filename
        url, size = generation.video_url, generation.video_bytes
        facts = self._facts.setdefault(job.job_id, GenerationFacts())
        problem = "the service gave no video URL"
        self.tally.downloading += 1
        downloading = True  # in the tally's `downloading` count, until it moves to another
        try:
            for attempt in range(DOWNLOAD_ATTEMPTS):
                if url is None:
                    fresh = await self._fresh_url(generation_id)
                    facts.polls += 1
                    if fresh is None:
                        break
                    url, size = fresh.video_url, fresh.video_bytes
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
                facts.video_url = url
                if self.store is not None:
                    try:
                        await self._publish(downloaded.path, relative)
                    except StoreError as error:
                        problem = str(error)  # like a failed download: a rerun fetches it again
                        break
                self.ledger.mark_completed(
                    job.job_id, str(relative), downloaded.size, downloaded.sha256, self._take_facts(job)
                )
                self.tally.downloading -= 1
                downloading = False
                self.tally.completed += 1  # the poster below is not part of the job's work
                if self.store is None:
                    await self._poster(downloaded.path, relative)
                return
            # Paid for but not fetched: it stays `generated`, and a rerun fetches it.
            facts.video_url = url or facts.video_url
            self.ledger.mark_download_failed(job.job_id, problem, self._take_facts(job))
            self.tally.failed += 1
        except asyncio.CancelledError:
            # The run is stopping mid-download: keep what the service said (credits above all).
            self.ledger.record_facts(job.job_id, self._take_facts(job))
            raise
        finally:
            if downloading:
                self.tally.downloading -= 1

    async def _poster(self, video: Path, relative: Path) -> None:
        """The report's still of the first frame. A poster never fails a paid job, whatever goes
        wrong (the report extracts missing posters again)."""
        poster = poster_path_for(self.video_dir.parent, relative)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(extract_poster, video, poster)

    async def _publish(self, video: Path, relative: Path) -> None:
        """Poster first (it needs the video), then the video to the store (its local copy goes),
        then the poster (its copy stays for the report). Only then is the job completed."""
        await self._poster(video, relative)
        store, poster = self.store, poster_path_for(self.video_dir.parent, relative)
        await asyncio.to_thread(store.publish, video, relative.as_posix(), keep=False)
        if poster.is_file():
            with contextlib.suppress(StoreError, OSError):  # the report publishes it later
                await asyncio.to_thread(store.publish, poster, f"{POSTER_DIR}/{poster.name}")

    async def _fresh_url(self, generation_id: str) -> Generation | None:
        try:
            generation = await self.client.poll(generation_id)
        except RequestError:
            return None
        return generation if generation.state is PollState.COMPLETED and generation.video_url else None

    # --- endings ------------------------------------------------------------------------

    def fail(self, job: Job, name: str | None, message: str | None, credits: float | None = None) -> None:
        """The job failed and nothing of it is billed: a rerun submits it again."""
        polls = self._take_facts(job).polls
        self.ledger.mark_failed(job.job_id, name or "error", message or "failed", credits, polls=polls)
        self.tally.failed += 1

    def _take_facts(self, job: Job) -> GenerationFacts:
        return self._facts.pop(job.job_id, None) or GenerationFacts()

    def unexpected(self, job: Job, error: Exception) -> None:
        """Record an error nobody planned for on its job, keeping any paid generation resumable."""
        message = f"unexpected {type(error).__name__}: {error}"
        status = JobState(self.ledger.job(job.job_id)["status"])
        if status is JobState.COMPLETED:  # done and paid: note it, never undo it
            self.ledger.note_error(job.job_id, "unexpected", message)
            return
        if status.has_generation or status is JobState.UNCERTAIN:  # keep the generation id
            self.ledger.note_error(job.job_id, "unexpected", message)
        elif status is JobState.SUBMITTING:
            self._uncertain(job, message)
            return
        else:
            self.ledger.mark_failed(job.job_id, "unexpected", message)
        self.tally.failed += 1

    def _not_taken(self, job: Job, attempt: _Attempt) -> None:
        """Nothing of this submit was taken: back to `pending` (if anything was recorded)."""
        polls = self._take_facts(job).polls  # of an earlier generation of this job, if any
        if attempt.sent or polls:
            self.ledger.mark_pending(job.job_id, polls=polls)

    def lost(self, job: Job, lost: Lost) -> None:
        """The generation id was given up: the job is `uncertain` (its id stays, for a rerun)."""
        self._uncertain(job, lost.message)

    def _uncertain(self, job: Job, message: str) -> None:
        self.ledger.mark_uncertain(job.job_id, message, polls=self._take_facts(job).polls)
        self.tally.uncertain += 1

    def _release(self, job: Job) -> None:
        self.tally.credits_reserved -= job.credits_estimate


class _Attempt:
    """Records each POST attempt of one job in the ledger as it leaves (SubmitHooks)."""

    def __init__(self, ledger: Ledger, job_id: str, resubmit: bool):
        self.ledger, self.job_id, self.resubmit = ledger, job_id, resubmit
        self.sent = False
        self.in_transit = False

    def sending(self) -> None:
        self.ledger.mark_submitting(self.job_id, resubmit=self.resubmit and not self.sent)
        self.sent = self.in_transit = True

    def not_taken(self) -> None:
        self.in_transit = False
