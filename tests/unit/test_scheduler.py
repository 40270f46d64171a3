"""The scheduler's stopping, resuming and resubmitting rules (pipeline/run/scheduler.py), on a fake
clock over scripted fake steps: what the end-to-end tests show against the sandbox, here in
milliseconds and whatever the machine's speed."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import AbortError, BudgetError
from pipeline.net.providers.base import Generation
from pipeline.run.outcomes import Completed, Failed, Lost, NotTaken, TimedOut, Uncertain
from pipeline.run.scheduler import Scheduler, SchedulerOptions
from pipeline.run.steps import Job
from pipeline.states import PollState
from tests.unit.fakeclock import now, run

DONE = Generation(PollState.COMPLETED, "completed", video_url="https://cdn.example/v.mp4")
REFUSED = Generation(PollState.FAILED, "failed", error_name="content", error_message="refused")


@dataclass
class Script:
    """What one job's steps do: how long its submit and its generations take, and what each
    generation's polling ends in (taken in order, one per generation)."""

    ends: list = field(default_factory=lambda: [DONE])
    submit_s: float = 0.01
    generation_s: float = 10.0
    submit_raises: Exception | None = None


class FakeSteps:
    """The steps the scheduler drives, recording every POST, poll and download on the clock."""

    def __init__(self, scripts: dict[str, Script]):
        self.scripts = scripts
        self.stopped = False
        self.posts: list[tuple[float, str, bool]] = []  # (clock, job, resubmit) of POSTs sent
        self.submitted: list[str] = []  # jobs whose POST was answered with an id
        self.polls: list[tuple[float, str, str, bool]] = []  # (clock, job, generation id, resumed)
        self.finals: list[tuple[float, str]] = []  # a poll that saw the generation end
        self.cancelled_polls: list[str] = []
        self.downloaded: list[str] = []
        self.failed: list[str] = []
        self.uncertain: list[str] = []

    def ended(self, job_id: str) -> float:
        """When the job's first generation was seen to end."""
        return next(t for t, job in self.finals if job == job_id)

    def stop_submitting(self) -> None:
        self.stopped = True

    @property
    def http_counters(self):
        return None

    def video_missing(self, row: dict) -> bool:
        return False

    async def submit(self, job: Job, *, resubmit: bool = False):
        script = self.scripts[job.job_id]
        if self.stopped:  # the client refuses to send once stopped
            return NotTaken()
        self.posts.append((now(), job.job_id, resubmit))
        await asyncio.sleep(script.submit_s)
        if script.submit_raises is not None:
            raise script.submit_raises
        self.submitted.append(job.job_id)
        return f"gen-{job.job_id}-{len(self.posts)}"

    async def poll_until_final(self, job: Job, generation_id: str, *, resumed: bool = False):
        script = self.scripts[job.job_id]
        self.polls.append((now(), job.job_id, generation_id, resumed))
        try:
            await asyncio.sleep(script.generation_s)
        except asyncio.CancelledError:
            self.cancelled_polls.append(job.job_id)
            raise
        self.finals.append((now(), job.job_id))
        return script.ends.pop(0)

    async def download(self, job: Job, generation_id: str, generation: Generation) -> Completed:
        await asyncio.sleep(1.0)
        self.downloaded.append(job.job_id)
        return Completed(Path("videos") / job.filename, Path(job.filename))

    async def after_completed(self, completed: Completed) -> None:
        pass

    def fail(self, job: Job, name, message, credits=None) -> Failed:
        self.failed.append(job.job_id)
        return Failed(message or "failed")

    def lost(self, job: Job, lost: Lost) -> Uncertain:
        self.uncertain.append(job.job_id)
        return Uncertain(lost.message)

    def unexpected(self, job: Job, error: Exception):
        raise error


class FakeLedger:
    def __init__(self, rows: dict[str, dict]):
        self.rows = rows

    def rows_by_id(self) -> dict[str, dict]:
        return self.rows

    def job(self, job_id: str) -> dict:
        return self.rows[job_id]


def pending(*job_ids: str) -> dict[str, dict]:
    return {job_id: {"status": "pending", "generation_id": None} for job_id in job_ids}


def run_scheduler(
    rows: dict[str, dict],
    scripts: dict[str, Script],
    options: SchedulerOptions,
    during=None,
) -> tuple[Scheduler, FakeSteps]:
    """Run the scheduler over `rows` (the ledger) to its end; `during(scheduler)` runs beside it."""
    steps = FakeSteps(scripts)
    jobs = [Job(job_id, {"prompt": job_id}, f"{job_id}.mp4", 100) for job_id in rows]
    scheduler = Scheduler(jobs, steps, FakeLedger(rows), options)

    async def main() -> None:
        work = asyncio.create_task(scheduler.run())
        if during is not None:
            await during(scheduler)
        await work

    run(main())
    return scheduler, steps


def test_a_budget_stop_lets_running_generations_finish_and_sends_no_new_post():
    """Budget 300 at 100 a job, two at a time: the third job fits once the first is spent; when
    the second ends, the fourth would pass 300 (200 spent, 100 reserved for the third), so
    submitting stops there, and the running third is seen to its end."""
    rows = pending("a", "b", "c", "d", "e")
    scripts = {job: Script() for job in rows} | {"b": Script(generation_s=12.0)}
    scheduler, steps = run_scheduler(rows, scripts, SchedulerOptions(concurrency=2, budget=300))
    assert [job for _, job, _ in steps.posts] == ["a", "b", "c"]
    assert isinstance(scheduler.abort, BudgetError) and steps.stopped
    stop_at = steps.ended("b")  # b's end made room for d, which the budget refused
    assert max(t for t, _, _ in steps.posts) < stop_at < steps.ended("c")
    assert sorted(steps.downloaded) == ["a", "b", "c"]
    tally = scheduler.tally
    assert (tally.completed, tally.credits_spent, tally.credits_reserved) == (3, 300, 0)


def test_a_first_ctrl_c_stops_submitting_and_sees_running_generations_through():
    """Ctrl-C at 5 s (stop_submitting): the two generations running are polled to their end and
    downloaded; the other jobs are never sent; it is not an abort."""
    rows = pending("a", "b", "c", "d")

    async def ctrl_c(scheduler: Scheduler) -> None:
        await asyncio.sleep(5)
        scheduler.stop_submitting("interrupted")

    scheduler, steps = run_scheduler(
        rows, {job: Script() for job in rows}, SchedulerOptions(concurrency=2), ctrl_c
    )
    assert [job for _, job, _ in steps.posts] == ["a", "b"]
    assert sorted(steps.downloaded) == ["a", "b"] and not steps.cancelled_polls
    assert scheduler.abort is None and scheduler.stop_reason == "interrupted"
    assert scheduler.tally.completed == 2 and scheduler.tally.credits_reserved == 0


def test_a_401_cancels_everything_but_a_submit_on_its_way():
    """c's submit is answered 401 at 1 s while a's generation runs and b's slow POST is on its
    way: a's polling is cancelled (its id is in the ledger for a rerun), b's answer is let
    arrive and recorded but not polled, and nothing more is sent."""
    rows = pending("a", "b", "c", "d")
    scripts = {
        "a": Script(),
        "b": Script(submit_s=5.0),
        "c": Script(submit_s=1.0, submit_raises=AbortError("401: the key was refused")),
        "d": Script(),
    }
    scheduler, steps = run_scheduler(rows, scripts, SchedulerOptions(concurrency=3))
    assert [job for _, job, _ in steps.posts] == ["a", "b", "c"]
    assert steps.cancelled_polls == ["a"] and "b" in steps.submitted
    assert [job for _, job, _, _ in steps.polls] == ["a"]  # b's generation is left to a rerun
    assert str(scheduler.abort) == "401: the key was refused" and not steps.downloaded


def test_a_second_ctrl_c_cancels_every_job_at_once():
    """Cancelling the run's task (a second Ctrl-C) cancels the generations being polled too."""
    rows = pending("a", "b")
    steps = FakeSteps({job: Script() for job in rows})
    jobs = [Job(job_id, {"prompt": job_id}, f"{job_id}.mp4", 100) for job_id in rows]
    scheduler = Scheduler(jobs, steps, FakeLedger(rows), SchedulerOptions(concurrency=2))

    async def main() -> None:
        work = asyncio.create_task(scheduler.run())
        await asyncio.sleep(3)
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)

    run(main())
    assert sorted(steps.cancelled_polls) == ["a", "b"] and not steps.downloaded


def test_timed_out_generations_keep_their_slot_and_submitting_stops_when_all_are_held():
    """Two slots, every generation past run.timeout: both keep their slots (they still run and
    will be billed), so nothing can free one: submitting stops instead of waiting forever."""
    rows = pending("a", "b", "c", "d")
    scripts = {job: Script(ends=[TimedOut("not finished after 5 s")], generation_s=5.0) for job in rows}
    scheduler, steps = run_scheduler(rows, scripts, SchedulerOptions(concurrency=2))
    assert [job for _, job, _ in steps.posts] == ["a", "b"]
    assert scheduler.stop_reason == "every slot is held by a generation past run.timeout"
    assert scheduler.tally.failed == 2 and scheduler.tally.credits_reserved == 200


def test_a_held_slot_leaves_the_others_working():
    """One generation past run.timeout holds one of two slots: the other jobs go one at a time
    through the slot left, each submitted only when the one before it has ended."""
    rows = pending("a", "b", "c", "d")
    scripts = {"a": Script(ends=[TimedOut("not finished after 1 s")], generation_s=1.0)}
    scripts |= {job: Script() for job in ("b", "c", "d")}
    scheduler, steps = run_scheduler(rows, scripts, SchedulerOptions(concurrency=2))
    posts = {job: t for t, job, _ in steps.posts}
    assert list(posts) == ["a", "b", "c", "d"]
    assert posts["c"] == steps.ended("b") and posts["d"] == steps.ended("c")
    assert scheduler.tally.completed == 3 and scheduler.tally.failed == 1


def test_a_resumed_run_polls_known_generations_before_submitting_anything():
    """One slot: the generations with an id (submitted, timed out, uncertain with an id) are
    polled first, as resumed, and only then are the pending jobs sent; completed jobs and an
    uncertain one without id (no --retry-uncertain) are left alone and counted."""
    rows = {
        "p1": {"status": "pending", "generation_id": None},
        "s1": {"status": "submitted", "generation_id": "g-s1"},
        "p2": {"status": "failed", "generation_id": None},
        "t1": {"status": "timed_out", "generation_id": "g-t1"},
        "c1": {"status": "completed", "generation_id": "g-c1"},
        "u1": {"status": "uncertain", "generation_id": "g-u1"},
        "u2": {"status": "uncertain", "generation_id": None},
    }
    scheduler, steps = run_scheduler(rows, {job: Script() for job in rows}, SchedulerOptions(concurrency=1))
    assert [(job, gen, resumed) for _, job, gen, resumed in steps.polls[:3]] == [
        ("s1", "g-s1", True),
        ("t1", "g-t1", True),
        ("u1", "g-u1", True),
    ]
    assert [job for _, job, _ in steps.posts] == ["p1", "p2"]
    assert steps.posts[0][0] >= max(t for t, job in steps.finals if job in ("s1", "t1", "u1"))
    tally = scheduler.tally
    assert (tally.skipped, tally.completed, tally.uncertain) == (2, 6, 1)


def test_resubmit_failed_sends_a_failed_generation_again_as_often_as_allowed():
    """run.resubmit_failed 1: a generation the service failed is submitted once more (marked as a
    resubmit); one that fails twice is failed, counted once."""
    rows = pending("a", "b")
    scripts = {"a": Script(ends=[REFUSED, DONE]), "b": Script(ends=[REFUSED, REFUSED])}
    scheduler, steps = run_scheduler(rows, scripts, SchedulerOptions(concurrency=2, resubmit_failed=1))
    posts = sorted((job, round(t, 6), resubmit) for t, job, resubmit in steps.posts)
    assert posts == [("a", 0.0, False), ("a", 10.01, True), ("b", 0.0, False), ("b", 10.01, True)]
    assert steps.downloaded == ["a"] and steps.failed == ["b"]
    tally = scheduler.tally
    assert (tally.completed, tally.failed, tally.resubmits, tally.credits_reserved) == (1, 1, 2, 0)


def test_no_resubmit_after_a_stop():
    """A generation failing after Ctrl-C is not submitted again, whatever resubmit_failed says."""
    rows = pending("a")

    async def ctrl_c(scheduler: Scheduler) -> None:
        await asyncio.sleep(5)
        scheduler.stop_submitting("interrupted")

    scheduler, steps = run_scheduler(
        rows, {"a": Script(ends=[REFUSED, DONE])}, SchedulerOptions(concurrency=1, resubmit_failed=3), ctrl_c
    )
    assert len(steps.posts) == 1 and steps.failed == ["a"] and scheduler.tally.resubmits == 0


def test_an_uncertain_job_with_a_known_id_is_polled_before_retry_uncertain_pays_again():
    """--retry-uncertain: an uncertain job whose generation id is known is polled first; found
    completed, it is not sent at all. Only one whose id is given up (Lost) is sent again, as a
    resubmit, and only after that poll. An uncertain job without id is simply sent."""
    rows = {
        "found": {"status": "uncertain", "generation_id": "g-found"},
        "gone": {"status": "uncertain", "generation_id": "g-gone"},
        "blind": {"status": "uncertain", "generation_id": None},
    }
    scripts = {
        "found": Script(),
        "gone": Script(ends=[Lost("404 (5 bad answers in a row over 60 s)"), DONE]),
        "blind": Script(),
    }
    _, steps = run_scheduler(rows, scripts, SchedulerOptions(concurrency=3, retry_uncertain=True))
    posts = {job: (t, resubmit) for t, job, resubmit in steps.posts}
    assert "found" not in posts and posts["blind"] == (0.0, True)
    assert posts["gone"] == (steps.ended("gone"), True)
    assert ("found", "g-found", True) in [(job, gen, resumed) for _, job, gen, resumed in steps.polls]
    assert sorted(steps.downloaded) == ["blind", "found", "gone"] and not steps.uncertain


def test_without_retry_uncertain_a_lost_id_leaves_the_job_uncertain():
    """The same given-up id without --retry-uncertain: the job stays uncertain, nothing is sent."""
    rows = {"gone": {"status": "uncertain", "generation_id": "g-gone"}}
    scripts = {"gone": Script(ends=[Lost("404 (5 bad answers in a row over 60 s)")])}
    scheduler, steps = run_scheduler(rows, scripts, SchedulerOptions(concurrency=1))
    assert not steps.posts and steps.uncertain == ["gone"]
    assert scheduler.tally.uncertain == 1


def test_generations_resumed_from_an_earlier_run_leave_this_runs_budget_alone():
    """Budget 200 at 100 a job, as the check before the start counts it: two pending jobs to
    pay for, two generations resumed from an earlier run. The resumed ones end first and their
    credits show as spent, but both pending jobs are still sent, and no reservation is left
    over (or below zero) at the end."""
    rows = {
        "s1": {"status": "submitted", "generation_id": "g-s1"},
        "s2": {"status": "submitted", "generation_id": "g-s2"},
        "p1": {"status": "pending", "generation_id": None},
        "p2": {"status": "pending", "generation_id": None},
    }
    scripts = {job: Script() for job in rows}
    scheduler, steps = run_scheduler(rows, scripts, SchedulerOptions(concurrency=2, budget=200))
    assert [job for _, job, _ in steps.posts] == ["p1", "p2"]
    assert scheduler.abort is None
    tally = scheduler.tally
    assert (tally.completed, tally.credits_spent, tally.credits_reserved) == (4, 400, 0)


def test_a_failed_generation_whose_resubmit_the_budget_refuses_is_recorded_failed():
    """Budget 250 at 100 a job, resubmit_failed 1: b completes at 5 s and the service reports
    200 credits for it; a fails at 10 s, and its resubmit would bring the run to 300, so it is
    not sent: a ends failed (counted once), not left `submitted` and counted nowhere."""
    rows = pending("a", "b")
    costly = Generation(PollState.COMPLETED, "completed", video_url="https://cdn.example/v.mp4", credits=200)
    scripts = {"a": Script(ends=[REFUSED]), "b": Script(ends=[costly], generation_s=5.0)}
    options = SchedulerOptions(concurrency=2, budget=250, resubmit_failed=1)
    scheduler, steps = run_scheduler(rows, scripts, options)
    assert sorted(job for _, job, _ in steps.posts) == ["a", "b"]
    assert steps.failed == ["a"]
    tally = scheduler.tally
    assert (tally.completed, tally.failed, tally.resubmits, tally.credits_reserved) == (1, 1, 0, 0)
    assert isinstance(scheduler.abort, BudgetError)


def test_a_401_after_a_submit_got_its_id_leaves_no_reservation_behind():
    """The abort lands while the second job's POST is on its way: its id is kept for a rerun,
    and its estimate is no longer counted as running (the projected credits stay true)."""
    rows = pending("a", "b")
    scripts = {"a": Script(submit_s=0.01), "b": Script(submit_s=1.0)}

    async def abort_at_half_a_second(scheduler: Scheduler) -> None:
        await asyncio.sleep(0.5)
        scheduler.stop_now(AbortError("401: the key was refused"))

    scheduler, steps = run_scheduler(rows, scripts, SchedulerOptions(concurrency=2), abort_at_half_a_second)
    assert steps.submitted == ["a", "b"]
    assert scheduler.tally.credits_reserved == 0


def test_a_budget_never_sends_a_job_with_no_known_price():
    """Its estimate is 0 (no price known), so any budget would let it pass: it is not sent."""
    rows = pending("a")
    steps = FakeSteps({"a": Script()})
    job = Job("a", {"prompt": "a", "model": "someone/unpriced"}, "a.mp4", 0, price_known=False)
    scheduler = Scheduler([job], steps, FakeLedger(rows), SchedulerOptions(concurrency=1, budget=10**9))
    run(scheduler.run())
    assert steps.posts == [] and isinstance(scheduler.abort, BudgetError)
    assert "no known price" in str(scheduler.abort)
