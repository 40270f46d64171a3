"""When polls come (pipeline/steps.py), on a fake clock over a fake service: deterministic."""

from __future__ import annotations

import asyncio
import random

from pipeline.providers.base import COMPLETED, RUNNING, Generation
from pipeline.steps import Job, StepOptions, Steps
from pipeline.tally import Tally
from tests.unit.fakeclock import now, run


class FakeService:
    """Generations that finish at set times on the loop clock; records every poll."""

    def __init__(self) -> None:
        self.done_at: dict[str, float] = {}
        self.polls: list[tuple[float, str]] = []

    async def poll(self, generation_id: str, deadline: float | None = None) -> Generation:
        self.polls.append((now(), generation_id))
        if now() >= self.done_at[generation_id]:
            return Generation(COMPLETED, "completed", video_url="https://cdn.example/v.mp4")
        return Generation(RUNNING, "generating")


def steps_over(service: FakeService, poll_first_s: float = 1.0) -> Steps:
    options = StepOptions(poll_first_s=poll_first_s, poll_cap_s=15.0, timeout_s=3600)
    return Steps(service, None, None, None, options, None, Tally(), random.Random(11))


def job(name: str) -> Job:
    return Job(name, {"prompt": name}, f"{name}.mp4", 525_000)


async def seen_final_at(steps: Steps, name: str, start: float = 0.0) -> float:
    await asyncio.sleep(start - now())
    await steps.poll_until_final(job(name), name)
    return now()


def test_the_first_generation_to_finish_tells_the_others_started_with_it():
    """Ten 1 s generations started together: the waits grow (1 s, then 1.5 s) until one is seen
    finished; then the others are asked at once instead of at their next growing wait."""
    service = FakeService()
    service.done_at = {f"g{n}": 1.0 for n in range(10)}
    steps = steps_over(service)

    async def wave() -> list[float]:
        return await asyncio.gather(*(seen_final_at(steps, name) for name in service.done_at))

    seen = run(wave())
    first_seen = min(seen)
    assert 1.0 <= first_seen <= 1.2  # a first poll at 1 s +-20% that came after the end
    assert max(seen) == first_seen  # the rest, at that same moment: no 1.5 s wait more
    assert len(service.polls) <= 2 * len(service.done_at)


def test_once_the_typical_duration_is_known_the_end_is_seen_within_a_short_step():
    """After 20 s generations, the next ones are first asked at about 95% of 20 s, then every
    twentieth of it: the end is seen within 1.2 s (a step with its jitter), in a few polls."""
    service = FakeService()
    steps = steps_over(service)
    steps._durations = [20.0] * 10
    service.done_at = {f"g{n}": 20.0 + n * 0.3 for n in range(8)}

    async def wave() -> list[float]:
        return await asyncio.gather(*(seen_final_at(steps, name) for name in service.done_at))

    seen = run(wave())
    for (name, done), seen_at in zip(service.done_at.items(), seen, strict=True):
        assert done <= seen_at <= done + 1.2, name
        polls = [t for t, polled in service.polls if polled == name]
        assert 0.95 * 0.95 * 20 <= polls[0] <= 0.95 * 20 and len(polls) <= 6


def test_the_wake_does_not_poll_a_generation_started_later_at_once():
    """The first finished generation wakes every wait, but one started 1.5 s later is not asked
    at the wake: it keeps to its own schedule, or to the typical time if that comes first."""
    service = FakeService()
    service.done_at = {"early": 2.0, "late": 4.0}
    steps = steps_over(service, poll_first_s=0.5)

    async def both() -> list[float]:
        return await asyncio.gather(seen_final_at(steps, "early"), seen_final_at(steps, "late", start=1.5))

    early_seen, late_seen = run(both())
    late_polls = [t for t, name in service.polls if name == "late"]
    assert early_seen not in late_polls
    assert late_seen >= 4.0


def test_a_typical_time_learned_too_long_comes_back_within_a_few_waves():
    """A first wave seen late (a busy machine) taught 1.6 s for 1 s generations. Each first poll
    then finds the end already past, which says only that it came earlier: the learned time
    comes down: from the third wave the end is seen within 0.15 s, from the fifth within one
    short step (a twentieth of the typical time, with its jitter)."""
    service = FakeService()
    steps = steps_over(service)
    steps._durations = [1.6] * 20
    lateness: list[float] = []

    async def waves() -> None:
        for wave in range(6):
            start = now()
            names = [f"w{wave}g{n}" for n in range(20)]
            service.done_at.update({name: start + 1.0 for name in names})
            seen = await asyncio.gather(*(seen_final_at(steps, name, start) for name in names))
            lateness.append(max(seen) - (start + 1.0))

    run(waves())
    assert lateness[0] > 0.3  # the first poll at about 95% of 1.6 s
    assert max(lateness[2:]) <= 0.15 and max(lateness[4:]) <= 0.06, lateness
