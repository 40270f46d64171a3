"""When to poll a generation: the waits before each poll, over a clock reading and an rng. Pure.

Until a generation has finished, waits grow from `poll_interval` (`first_s`) by `POLL_BACKOFF`
to `poll_max_interval` (`cap_s`). After that the first wait is about 95% of the typical
(median) duration: a 25 s generation is not asked about at 1, 2.5 and 4.75 s. Then at most six
even steps of a twentieth of it (0.05 s at least), until 1.5x the typical duration (so the end
is seen within one step), then the growing waits again. Waits have +-20% jitter, so thousands
of jobs do not poll in lockstep; the first one is only ever shortened.

A duration is counted to the middle between the last poll that saw the generation running and
the first that saw it final (`Durations.learn`). The async layer (steps.py) sleeps the waits,
and wakes the generations started with the first one to finish (they then poll when the
typical duration says, not at their next growing wait). plan.py estimates with the same curve.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

POLL_BACKOFF = 1.5
POLL_JITTER = 0.2
FIRST_WAIT_SHARE = 0.95
EARLY_END_SHARE = 0.8  # of the first poll's time, recorded when that poll already saw the end
STEADY_UNTIL = 1.5  # short steps until 1.5x the typical duration, then back off
STEADY_STEPS_PER_TYPICAL = 20
MAX_STEADY_POLLS = 6
MIN_STEADY_S = 0.05
TYPICAL_SAMPLE = 50


class Rng(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


def poll_delays(first: float, cap: float, factor: float = POLL_BACKOFF) -> Iterator[float]:
    """`first`, then growing by `factor` up to `cap` (before jitter)."""
    delay = first
    while True:
        yield min(delay, cap)
        delay *= factor


class Durations:
    """How long the latest generations took from submit to final, for pacing the others."""

    def __init__(self, seen: Iterable[float] = ()) -> None:
        self._seen = list(seen)

    def learn(self, seen_final_s: float, running_at_s: float | None) -> None:
        """Record one generation's duration.

        The end lies between the last poll that said "running" and the one that said "final":
        the middle is recorded (not the final poll's time, which would teach every next poll to
        come as late). When the first poll already saw it final, the end is only known to be
        earlier: a share of that time is recorded, so a typical time learned too long (a first
        wave seen late) comes down within a few waves instead of holding.
        """
        if running_at_s:
            self._seen.append((running_at_s + seen_final_s) / 2)
        else:
            self._seen.append(seen_final_s * EARLY_END_SHARE)

    def typical(self) -> float | None:
        """The median of the latest durations, once there are some."""
        if not self._seen:
            return None
        recent = sorted(self._seen[-TYPICAL_SAMPLE:])
        return recent[len(recent) // 2]


@dataclass(frozen=True)
class Cadence:
    first_s: float  # run.poll_interval
    cap_s: float  # run.poll_max_interval

    def first_wait(self, typical: float, rng: Rng) -> float:
        """Seconds from submit to the first poll once the typical duration is known."""
        return max(self.first_s, FIRST_WAIT_SHARE * typical) * rng.uniform(1 - POLL_JITTER / 4, 1)

    def waits(self, rng: Rng) -> PollWaits:
        """The waits of one generation's polls."""
        return PollWaits(self, rng)


class PollWaits:
    """One generation's waits: `next(elapsed, typical)` before each poll, where `elapsed` is the
    seconds since its submit and `typical` what `Durations.typical()` says now."""

    def __init__(self, cadence: Cadence, rng: Rng) -> None:
        self._cadence, self._rng = cadence, rng
        self._growing = poll_delays(cadence.first_s, cadence.cap_s)
        self._typical: float | None = None  # fixed once known: the steps are cut to it
        self._steady = 0.0
        self._steady_left = MAX_STEADY_POLLS

    def next(self, elapsed: float, typical: float | None) -> float:
        if self._typical is None:
            if typical is None:
                return next(self._growing) * self._jitter()
            self._typical = typical
            # Around the expected end: even steps, a twentieth of the typical time at least, so
            # the number of polls does not grow with the generation's length.
            self._steady = max(MIN_STEADY_S, typical / STEADY_STEPS_PER_TYPICAL)
            self._growing = poll_delays(self._steady, self._cadence.cap_s)
            first = self._cadence.first_wait(typical, self._rng) - elapsed
            if first > 0:  # else the last poll was already past it (perhaps woken early)
                return first
        if self._steady_left > 0 and elapsed <= STEADY_UNTIL * self._typical:
            self._steady_left -= 1
            return self._steady * self._jitter()
        self._steady_left = 0
        return next(self._growing) * self._jitter()

    def _jitter(self) -> float:
        return self._rng.uniform(1 - POLL_JITTER, 1 + POLL_JITTER)


class _Middle:
    """No jitter: the middle of every range (for estimates)."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def polls_until(seconds: float, first: float, cap: float, typical: float | None = None) -> int:
    """How many polls see a generation of `seconds` finished: before any duration is known
    (`typical` None), or once the typical duration is `typical`."""
    waits = Cadence(first, cap).waits(_Middle())
    elapsed = 0.0
    for polls in itertools.count(1):
        elapsed += waits.next(elapsed, typical)
        if elapsed >= seconds:
            return polls
    raise AssertionError("unreachable")
