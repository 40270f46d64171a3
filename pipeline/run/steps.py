"""The steps of one job: submit, poll until final, download. Each step is recorded in the ledger
before the network action that depends on it, and ends in a value of outcomes.py that the
scheduler counts (the steps never touch the tally).

- submit: the intent (`submitting`) is recorded the moment each POST attempt leaves (after any
  rate-limit or backoff wait), and the generation id right after the answer. An attempt the
  service refused, or one never sent, leaves the job `pending`; one that may have arrived
  without an id reaching us makes it `uncertain`, never resent silently.
- poll: by polling.py, at the waits of cadence.py, until the generation is final, given up
  (`Lost`: the scheduler makes the job `uncertain` with `lost`) or past run.timeout
  (`timed_out`: a rerun polls it again). A completed generation's facts stay in memory until
  the job's last write, which saves a ledger write per job; the generation id is already
  recorded, so nothing is lost.
- download: streamed and checked by `Downloader`; an expired or bad link is replaced by
  polling again. A generation that is paid for but could not be fetched stays `generated`, so
  a rerun fetches it. The video's automatic checks (write/qc.py) are recorded with its
  completion; a video that fails them is still completed (it was paid for). With a store
  (output.dir as a URL) the checked video is uploaded, and its local copy deleted, before the
  job is marked completed; a failed upload is a failed download.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    AbortError,
    DownloadError,
    ExpiredUrlError,
    MaybeSentError,
    RequestError,
    StoppedError,
    StoreError,
)
from ..net.http import ApiClient, Counters
from ..net.providers.base import Generation
from ..read.images import ImageInfo, encode_for_submit
from ..states import JobState, PollState
from .ledger import GenerationFacts, Ledger
from .outcomes import Completed, Ending, Failed, Interrupted, Lost, NotTaken, TimedOut, Uncertain
from .polling import Poller
from .publishing import Publisher
from .request_ids import client_request_id

DOWNLOAD_ATTEMPTS = 4


@dataclass(frozen=True)
class Job:
    """What the steps need to know about one job (made by runplan.py)."""

    job_id: str
    request: dict[str, Any]  # API fields as the manifest wrote them (a local image by its name)
    filename: str
    credits_estimate: int  # 0 when the price is not known
    # Request field -> the local image it names, resolved and digested when the manifest was read.
    local_images: Mapping[str, ImageInfo] = field(default_factory=dict)
    price_known: bool = True  # False: no price is known for its model (credits_estimate 0)

    def submit_body(self) -> dict[str, Any]:
        """The request as it is sent: local images read again and encoded (images.py says when
        one is refused). With local images it reads files: then call it off the event loop."""
        body = dict(self.request)
        for name, image in self.local_images.items():
            body[name] = encode_for_submit(image)
        return body


class Steps:
    def __init__(
        self,
        client: ApiClient,
        ledger: Ledger,
        poller: Poller,
        publisher: Publisher,
        rng: random.Random,
        request_id_token: str | None = None,
    ):
        self._client = client
        self._request_id_token = request_id_token
        self._ledger = ledger
        self._poller = poller
        self._publisher = publisher
        self._rng = rng
        self._facts: dict[str, GenerationFacts] = {}  # final polls not yet written (see poll_until_final)

    def stop_submitting(self) -> None:
        """No POST leaves from now on (one waiting in backoff gives up)."""
        self._client.stop_submitting()

    @property
    def http_counters(self) -> Counters:
        return self._client.counters

    # --- submit -------------------------------------------------------------------------

    async def submit(self, job: Job, *, resubmit: bool = False) -> str | Ending | Interrupted:
        """POST the job. Returns its generation id, or how the job ended here; Interrupted when
        the run was cancelled meanwhile (the caller counts its ending and stops)."""
        try:
            # Only reading local images needs a thread; a hop costs a wave of submits milliseconds each.
            body = await asyncio.to_thread(job.submit_body) if job.local_images else job.submit_body()
        except (OSError, ValueError) as error:
            return self.fail(job, "input", f"cannot read the job's image: {error}")
        attempt = _Attempt(self._ledger, job.job_id, resubmit, self._request_id_token)
        try:
            # Without a folder token (a shard of the Ray engine) the job id is sent as it is.
            submitted = await self._client.submit(body, client_request_id=job.job_id, hooks=attempt)
        except StoppedError:
            return self._not_taken(job, attempt)
        except MaybeSentError as error:
            return self._uncertain(job, f"the submit may have been received: {error}")
        except AbortError:
            self._not_taken(job, attempt)  # 401/403/404: the service did not take it
            raise
        except RequestError as error:  # refused (4xx) or never taken (retries spent): not billed
            return self.fail(job, f"http_{error.status}" if error.status else "request", str(error))
        except asyncio.CancelledError:
            if attempt.in_transit:
                return Interrupted(
                    self._uncertain(job, "the run was stopped while the submit was on its way")
                )
            return Interrupted(self._not_taken(job, attempt))
        except Exception:
            if attempt.sent and not attempt.in_transit:  # it failed before its POST left
                with contextlib.suppress(Exception):  # the ledger itself may be what failed
                    self._not_taken(job, attempt)
            raise
        # Committed at once; the wait for the disk (a power cut) is off the event loop.
        self._ledger.mark_submitted(job.job_id, submitted.generation_id, synced=False)
        await self._ledger.wait_for_disk()
        return submitted.generation_id

    # --- poll ---------------------------------------------------------------------------

    async def poll_until_final(
        self, job: Job, generation_id: str, *, resumed: bool = False
    ) -> Generation | Lost | TimedOut:
        """The final Generation, TimedOut (recorded) or Lost (see polling.py)."""
        facts = self._facts.setdefault(job.job_id, GenerationFacts())
        model = job.request.get("model")
        outcome = await self._poller.poll_until_final(generation_id, facts, resumed=resumed, model=model)
        if isinstance(outcome, TimedOut):
            self._ledger.mark_timed_out(job.job_id, outcome.message, polls=self._take_facts(job).polls)
        return outcome

    # --- download -----------------------------------------------------------------------

    async def download(self, job: Job, generation_id: str, generation: Generation) -> Completed | Failed:
        """Fetch (and publish) the video of a completed generation. Completed, or Failed when it
        could not be fetched: paid for, it stays `generated` for a rerun to fetch."""
        url, size = generation.video_url, generation.video_bytes
        facts = self._facts.setdefault(job.job_id, GenerationFacts())
        problem = "the service gave no video URL"
        try:
            for attempt in range(DOWNLOAD_ATTEMPTS):
                if url is None:
                    fresh = await self._fresh_url(generation_id, job.request.get("model"))
                    facts.polls += 1
                    if fresh is None:
                        break
                    url, size = fresh.video_url, fresh.video_bytes
                try:
                    downloaded = await self._publisher.fetch(url, job.filename, size)
                except ExpiredUrlError as error:
                    problem, url = str(error), None  # poll again for a freshly signed URL
                    continue
                except DownloadError as error:
                    problem = str(error)
                    if attempt >= 1:
                        url = None  # the same link failed twice: ask for a fresh one
                    await asyncio.sleep(self._rng.uniform(0.2, 1.0) * 2**attempt)
                    continue
                relative = self._publisher.relative(downloaded.path)
                facts.video_url = url
                checks = await self._publisher.check(downloaded.path, job.request)
                try:
                    await self._publisher.publish(downloaded.path, relative)
                except StoreError as error:
                    problem = str(error)  # like a failed download: a rerun fetches it again
                    break
                self._ledger.mark_completed(
                    job.job_id,
                    str(relative),
                    downloaded.size,
                    downloaded.sha256,
                    self._take_facts(job),
                    checks,
                )
                return Completed(downloaded.path, relative)
            facts.video_url = url or facts.video_url
            self._ledger.mark_download_failed(job.job_id, problem, self._take_facts(job))
            return Failed(problem)
        except asyncio.CancelledError:
            # The run is stopping mid-download: keep what the service said (credits above all).
            self._ledger.record_facts(job.job_id, self._take_facts(job))
            raise

    async def after_completed(self, completed: Completed) -> None:
        await self._publisher.after_completed(completed)

    def video_missing(self, row: dict[str, Any]) -> bool:
        return self._publisher.video_missing(row)

    async def _fresh_url(self, generation_id: str, model: str | None) -> Generation | None:
        try:
            generation = await self._client.poll(generation_id, model=model)
        except RequestError:
            return None
        return generation if generation.state is PollState.COMPLETED and generation.video_url else None

    # --- endings ------------------------------------------------------------------------

    def fail(self, job: Job, name: str | None, message: str | None, credits: float | None = None) -> Failed:
        """The job failed and nothing of it is billed: a rerun submits it again."""
        polls = self._take_facts(job).polls
        self._ledger.mark_failed(job.job_id, name or "error", message or "failed", credits, polls=polls)
        return Failed(message or "failed")

    def _take_facts(self, job: Job) -> GenerationFacts:
        return self._facts.pop(job.job_id, None) or GenerationFacts()

    def unexpected(self, job: Job, error: Exception) -> Ending | None:
        """Record an error nobody planned for on its job, keeping any paid generation resumable.
        None: the job was completed already, and stays so."""
        message = f"unexpected {type(error).__name__}: {error}"
        status = JobState(self._ledger.job(job.job_id)["status"])
        if status is JobState.COMPLETED:  # done and paid: note it, never undo it
            self._ledger.note_error(job.job_id, "unexpected", message)
            return None
        if status.has_generation or status is JobState.UNCERTAIN:  # keep the generation id
            self._ledger.note_error(job.job_id, "unexpected", message)
        elif status is JobState.SUBMITTING:
            return self._uncertain(job, message)
        else:
            self._ledger.mark_failed(job.job_id, "unexpected", message)
        return Failed(message)

    def _not_taken(self, job: Job, attempt: _Attempt) -> NotTaken:
        """Nothing of this submit was taken: back to `pending` (if anything was recorded)."""
        polls = self._take_facts(job).polls  # of an earlier generation of this job, if any
        if attempt.sent or polls:
            self._ledger.mark_pending(job.job_id, polls=polls)
        return NotTaken()

    def lost(self, job: Job, lost: Lost) -> Uncertain:
        """The generation id was given up: the job is `uncertain` (its id stays, for a rerun)."""
        return self._uncertain(job, lost.message)

    def _uncertain(self, job: Job, message: str) -> Uncertain:
        self._ledger.mark_uncertain(job.job_id, message, polls=self._take_facts(job).polls)
        return Uncertain(message)


class _Attempt:
    """Records each POST attempt of one job in the ledger as it leaves (SubmitHooks)."""

    def __init__(self, ledger: Ledger, job_id: str, resubmit: bool, token: str | None = None):
        self.ledger, self.job_id, self.resubmit = ledger, job_id, resubmit
        self.token = token
        self.sent = False
        self.in_transit = False
        self.submits = ledger.job(job_id)["submits"] if token else 0  # attempts before this submit

    async def sending(self) -> str | None:
        """The intent, with the attempt's client request id, committed at once and on the disk
        before the POST leaves; the disk is waited for off the event loop, so other jobs'
        requests go on meanwhile. Returns the id to send."""
        client_id = None
        if self.token:
            self.submits += 1  # as mark_submitting counts it
            client_id = client_request_id(self.token, self.job_id, self.submits)
        recorded = {"client_request_id": client_id} if client_id else {}
        self.ledger.mark_submitting(
            self.job_id, resubmit=self.resubmit and not self.sent, synced=False, **recorded
        )
        self.sent = True  # recorded: a POST that never leaves puts the job back to pending
        await self.ledger.wait_for_disk()
        self.in_transit = True
        return client_id

    def not_taken(self) -> None:
        self.in_transit = False
