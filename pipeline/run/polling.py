"""Polling one generation until it is final, at the waits of cadence.py.

The first generation to finish wakes the waits of those started with it, which then poll when
the typical duration says (not at their next growing wait). One bad answer (a 404, status
`unknown`, a 4xx, a body that is not a poll answer) proves nothing: the id is polled on, at the
same growing waits, until `LOST_AFTER_POLLS` bad answers in a row have spanned
`LOST_AFTER_CAPS` x `poll_max_interval` (a minute by default). Only then is the id given up
(`Lost`): the generation may have run and been billed, so the job becomes `uncertain`, and a
rerun polls the id again.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Protocol

from ..aio import sleep_unless
from ..errors import GenerationLostError, RejectedError, RequestError
from ..net.providers.base import Generation
from ..states import PollState
from .cadence import Cadence, Durations
from .ledger import GenerationFacts
from .outcomes import Lost, TimedOut

LOST_AFTER_POLLS = 5  # bad answers in a row before a generation id is given up...
LOST_AFTER_CAPS = 4  # ...spanning at least this many poll_max_intervals


class PollClient(Protocol):
    async def poll(
        self, generation_id: str, deadline: float | None = None, model: str | None = None
    ) -> Generation: ...


@dataclass(frozen=True)
class PollOptions:
    poll_first_s: float
    poll_cap_s: float
    timeout_s: float


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


def _clock() -> float:
    """The running loop's clock: monotonic, and the one a test can fake."""
    return asyncio.get_running_loop().time()


class Poller:
    """Polls the generations of one run, learning from each how long the next ones take."""

    def __init__(self, client: PollClient, options: PollOptions, rng: random.Random):
        self._client, self._options, self._rng = client, options, rng
        self._cadence = Cadence(options.poll_first_s, options.poll_cap_s)
        self._durations = Durations()  # seconds from submit to final, of this run's generations
        self._first_duration = asyncio.Event()  # set once a generation's duration is known

    async def poll_until_final(
        self, generation_id: str, facts: GenerationFacts, *, resumed: bool = False, model: str | None = None
    ) -> Generation | Lost | TimedOut:
        """The final Generation; TimedOut; or Lost when the id kept being refused (the caller
        decides what the job becomes). Counts the polls in `facts`, and a completed
        generation's URL, credits and duration."""
        started = _clock()
        streak = BadAnswers(span_s=LOST_AFTER_CAPS * self._options.poll_cap_s)
        running_at = None  # seconds after `started` of the last poll that said "still running"
        waits = self._cadence.waits(self._rng)
        while True:
            await self._pause(waits.next(_clock() - started, self._durations.typical()), started)
            problem = None
            try:
                # A poll's whole exchange ends by the job's timeout, however slowly the server answers.
                generation = await self._client.poll(
                    generation_id, deadline=started + self._options.timeout_s, model=model
                )
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
                    return lost
            if generation is not None and generation.state.final:
                # A resumed job's clock started at resume: its duration would be wrong, so it is
                # neither recorded nor used to pace other polls.
                seconds = None if resumed else _clock() - started
                if seconds is not None:
                    self._durations.learn(seconds, running_at)
                    self._first_duration.set()
                if generation.state is PollState.COMPLETED:
                    facts.video_url, facts.credits, facts.seconds = (
                        generation.video_url,
                        generation.credits,
                        seconds,
                    )
                return generation
            if generation is not None:
                running_at = _clock() - started
            if _clock() - started > self._options.timeout_s:
                return TimedOut(f"not finished after {self._options.timeout_s:.0f} s; a rerun polls it again")

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
