"""The in-flight window (pipeline/run/scheduler.py) on a fake clock over fake steps, as aiometer's
`Spy` and aiolimiter's `MockLoopTime` tests do: deterministic, whatever the machine's speed."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from pipeline.net.providers.base import Generation
from pipeline.run.outcomes import Completed
from pipeline.run.scheduler import Scheduler, SchedulerOptions
from pipeline.run.steps import Job
from pipeline.states import PollState
from tests.unit.fakeclock import now, run


class Spy:
    """Counts generations in flight (from the start of a submit to the final poll), on the clock."""

    def __init__(self) -> None:
        self.in_flight = self.peak = 0
        self.submits: list[float] = []  # clock at the start of each submit
        self.finishes: list[float] = []  # clock at each final poll

    def start(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.submits.append(now())

    def finish(self) -> None:
        self.in_flight -= 1
        self.finishes.append(now())


class FakeSteps:
    """What the scheduler drives, with generation and download times on the fake clock."""

    def __init__(self, spy: Spy, durations: dict[str, float], download_s: float):
        self.spy, self.durations, self.download_s = spy, durations, download_s
        self.downloaded: list[str] = []

    def stop_submitting(self) -> None:
        pass

    async def submit(self, job: Job, *, resubmit: bool = False) -> str:
        self.spy.start()
        await asyncio.sleep(0.01)  # the POST's round trip
        return f"gen-{job.job_id}"

    async def poll_until_final(self, job: Job, generation_id: str, *, resumed: bool = False) -> Generation:
        await asyncio.sleep(self.durations[job.job_id])
        self.spy.finish()
        return Generation(PollState.COMPLETED, "completed", video_url="https://cdn.example/v.mp4")

    async def download(self, job: Job, generation_id: str, generation: Generation) -> Completed:
        await asyncio.sleep(self.download_s)  # a slow CDN: the generation's slot is already free
        self.downloaded.append(job.job_id)
        return Completed(Path("videos") / job.filename, Path(job.filename))

    async def after_completed(self, completed: Completed) -> None:
        pass

    def fail(self, *args) -> None:
        raise AssertionError(f"no job fails here: {args}")

    def unexpected(self, job: Job, error: Exception) -> None:
        raise error


class FakeLedger:
    def __init__(self, job_ids: list[str]):
        self.rows = {job_id: {"status": "pending", "generation_id": None} for job_id in job_ids}

    def rows_by_id(self) -> dict[str, dict]:
        return self.rows

    def job(self, job_id: str) -> dict:
        return self.rows[job_id]


def run_window(jobs: int, concurrency: int, seed: int, download_s: float = 5.0) -> tuple[Spy, FakeSteps]:
    rng = random.Random(seed)
    job_ids = [f"job{n:03d}" for n in range(jobs)]
    durations = {job_id: rng.uniform(0.5, 30.0) for job_id in job_ids}
    spy = Spy()
    steps = FakeSteps(spy, durations, download_s)
    work = [Job(job_id, {"prompt": job_id}, f"{job_id}.mp4", 525_000) for job_id in job_ids]

    async def main() -> None:
        await Scheduler(work, steps, FakeLedger(job_ids), SchedulerOptions(concurrency=concurrency)).run()

    run(main())
    return spy, steps


def test_the_window_never_holds_more_than_n_and_refills_a_freed_slot_before_the_clock_moves():
    for seed, (jobs, concurrency) in enumerate([(200, 7), (50, 1), (30, 20), (5, 8)]):
        spy, steps = run_window(jobs, concurrency, seed)
        assert spy.peak == min(concurrency, jobs)
        assert sorted(steps.downloaded) == sorted(steps.durations) and spy.in_flight == 0
        # Every slot freed while jobs wait is taken again at the same clock reading.
        waiting = spy.submits[concurrency:]
        assert spy.submits[:concurrency] == [0.0] * min(concurrency, jobs)
        assert waiting == sorted(spy.finishes)[: len(waiting)]


def test_slow_downloads_do_not_hold_generation_slots():
    """Downloads ten times as long as a generation: the window stays full of generations."""
    spy, _ = run_window(60, 4, seed=9, download_s=300.0)
    assert spy.peak == 4
    assert spy.submits[4:] == sorted(spy.finishes)[:56]


class OrderedSteps(FakeSteps):
    """FakeSteps that also record the order in which submits and downloads begin."""

    def __init__(self, spy: Spy, durations: dict[str, float], submit_s: float = 0.01):
        super().__init__(spy, durations, download_s=0.5)
        self.events: list[tuple[str, str, float]] = []
        self.submit_s = submit_s

    async def submit(self, job: Job, *, resubmit: bool = False) -> str:
        self.events.append(("submit", job.job_id, now()))
        self.spy.start()
        await asyncio.sleep(self.submit_s)
        return f"gen-{job.job_id}"

    async def download(self, job: Job, generation_id: str, generation: Generation) -> Completed:
        self.events.append(("download", job.job_id, now()))
        return await super().download(job, generation_id, generation)


def run_waves(submit_s: float = 0.01) -> OrderedSteps:
    """40 one-second jobs, 20 at once: two waves, the first ending all together."""
    job_ids = [f"job{n:03d}" for n in range(40)]
    steps = OrderedSteps(Spy(), dict.fromkeys(job_ids, 1.0), submit_s)
    work = [Job(job_id, {"prompt": job_id}, f"{job_id}.mp4", 525_000) for job_id in job_ids]

    async def main() -> None:
        await Scheduler(work, steps, FakeLedger(job_ids), SchedulerOptions(concurrency=20)).run()

    run(main())
    return steps


def test_the_next_waves_submits_go_before_the_downloads_of_the_wave_that_ended():
    """A wave of generations ending together frees 20 slots: their 20 submits are not made to
    queue behind 20 downloads on the event loop (every moment a slot waits lengthens the run)."""
    events = run_waves().events
    first_download = next(index for index, event in enumerate(events) if event[0] == "download")
    assert [kind for kind, _, _ in events[:first_download]] == ["submit"] * 40


def test_a_download_waits_for_slow_submits_only_briefly():
    """Submits held up (by the request rate, say) do not hold the downloads back for long."""
    events = run_waves(submit_s=30.0).events
    wave_ended = 30.0 + 1.0
    downloads = [moment for kind, _, moment in events if kind == "download"]
    assert min(downloads) >= wave_ended and max(downloads[:20]) <= wave_ended + 0.25 + 1e-9
