"""The wake-up of polls (pipeline/run/polling.py) when the first generation finishes, on a fake clock
over a fake service: deterministic. The schedule itself is tested pure in test_cadence.py."""

from __future__ import annotations

import asyncio
import random

from pipeline.net.providers.base import Generation
from pipeline.run.ledger import GenerationFacts
from pipeline.run.polling import Poller, PollOptions
from pipeline.states import PollState
from tests.unit.fakeclock import now, run


class FakeService:
    """Generations that finish at set times on the loop clock; records every poll."""

    def __init__(self) -> None:
        self.done_at: dict[str, float] = {}
        self.polls: list[tuple[float, str]] = []

    async def poll(
        self, generation_id: str, deadline: float | None = None, model: str | None = None
    ) -> Generation:
        self.polls.append((now(), generation_id))
        if now() >= self.done_at[generation_id]:
            return Generation(PollState.COMPLETED, "completed", video_url="https://cdn.example/v.mp4")
        return Generation(PollState.RUNNING, "generating")


def poller_of(service: FakeService, poll_first_s: float = 1.0) -> Poller:
    options = PollOptions(poll_first_s=poll_first_s, poll_cap_s=15.0, timeout_s=3600)
    return Poller(service, options, random.Random(11))


async def seen_final_at(poller: Poller, name: str, start: float = 0.0) -> float:
    await asyncio.sleep(start - now())
    await poller.poll_until_final(name, GenerationFacts())
    return now()


def test_the_first_generation_to_finish_tells_the_others_started_with_it():
    """Ten 1 s generations started together: the waits grow (1 s, then 1.5 s) until one is seen
    finished; then the others are asked at once instead of at their next growing wait."""
    service = FakeService()
    service.done_at = {f"g{n}": 1.0 for n in range(10)}
    poller = poller_of(service)

    async def wave() -> list[float]:
        return await asyncio.gather(*(seen_final_at(poller, name) for name in service.done_at))

    seen = run(wave())
    first_seen = min(seen)
    assert 1.0 <= first_seen <= 1.2  # a first poll at 1 s +-20% that came after the end
    assert max(seen) == first_seen  # the rest, at that same moment: no 1.5 s wait more
    assert len(service.polls) <= 2 * len(service.done_at)


def test_the_wake_does_not_poll_a_generation_started_later_at_once():
    """The first finished generation wakes every wait, but one started 1.5 s later is not asked
    at the wake: it keeps to its own schedule, or to the typical time if that comes first."""
    service = FakeService()
    service.done_at = {"early": 2.0, "late": 4.0}
    poller = poller_of(service, poll_first_s=0.5)

    async def both() -> list[float]:
        return await asyncio.gather(seen_final_at(poller, "early"), seen_final_at(poller, "late", start=1.5))

    early_seen, late_seen = run(both())
    late_polls = [t for t, name in service.polls if name == "late"]
    assert early_seen not in late_polls
    assert late_seen >= 4.0
