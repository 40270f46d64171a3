"""The request rate: learned from the service's 429s, under a hard cap when the manifest sets one.

The service publishes no request-rate limit; it answers 429 when one is reached. So by default
nothing but the in-flight window (scheduler.py) limits the rate, until the service says so, and
from then on the rate is learned by additive increase, multiplicative decrease (as TCP does, and
promptfoo's scheduler for its concurrency):

    a 429            every request waits out the hold (the Retry-After, else the retry's backoff),
                     and the rate drops by the share of the last MEASURE_S seconds' answers that
                     were 429s, to DECREASE x the rate at the lowest (half), from the rate of
                     those seconds (or the learned rate, if lower), never below FLOOR_PER_S.
                     A 429 for a request booked before the last cut (or within COOLDOWN_S of
                     it) cuts nothing more: it was sent at the old rate, already cut (once per
                     window, as in TCP); it still counts in the share the next cut goes by.
                     So past a real limit the first 429s of an overload cut a little, the next
                     cuts (one per cooldown) by the larger share the service then refuses,
                     until the rate is what it accepts; while 429s come at random whatever the
                     rate (a busy upstream, not our pace), every cut is their small share and
                     the rate climbs back, instead of halving on each and ratcheting down to
                     the floor (DCTCP cuts by the share of marked packets in the same way).
    a success        after RECOVER_AFTER successes in a row, the rate grows by STEP_SHARE x the
                     rate of the last cut (MIN_STEP_PER_S at least): the same step each time,
                     until the next 429.

`run.requests_per_minute`, when set, is a hard cap on top: the rate never passes it, learned or
not. Requests are spaced by GCRA (a leaky bucket with no polling loop: a caller books the next
slot and sleeps until it comes), with bursts of up to `burst`, on the event loop's clock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Protocol

BURST = 10


@dataclass(frozen=True)
class Learning:
    """How fast the learned rate falls on a 429 and climbs back (see the module doc)."""

    decrease: float = 0.5  # the deepest cut one 429 makes: to half the rate
    recover_after: int = 10
    step_share: float = 0.05
    min_step_per_s: float = 0.2  # so a rate cut to the floor does not take an hour to recover
    floor_per_s: float = 0.2
    measure_s: float = 5.0
    cooldown_s: float = 1.0


class Limiter(Protocol):
    """The request rate of one account: a RequestRate, or one a cluster's shards share."""

    async def turn(self) -> float: ...  # seconds to wait before sending; the slot is booked

    def hold(self, seconds: float) -> None: ...  # a 429: everyone waits, and the rate drops

    def succeeded(self, count: int = 1) -> None: ...  # `count` 2xx answers


class RequestRate:
    """The learned rate (AIMD) under an optional hard cap, spaced by GCRA.

    The methods taking `now` are the whole logic, on any clock; `turn`, `hold` and `succeeded`
    are the same on the running loop's clock.
    """

    def __init__(
        self, cap_per_minute: float | None = None, *, burst: int = BURST, learning: Learning = Learning()
    ):
        self.cap_per_s = cap_per_minute / 60.0 if cap_per_minute else None
        self.learned_per_s: float | None = None  # None until the first 429
        self.learning = learning
        self._burst = max(burst, 1)
        self._tat = 0.0  # GCRA's theoretical arrival time of the next request
        self._held_until = 0.0
        self._step = 0.0
        self._successes = 0
        self._quiet_until = 0.0  # 429s until then answer requests booked before the last cut
        self._last_booked = 0.0
        self._sent: deque[float] = deque()  # booked send times of the last `measure_s` seconds
        self._answers: deque[list[int]] = deque()  # [second, successes, 429s] of the last `measure_s`

    @property
    def per_s(self) -> float | None:
        """The rate requests are spaced at now; None: not limited."""
        rates = [rate for rate in (self.cap_per_s, self.learned_per_s) if rate is not None]
        return min(rates) if rates else None

    def reserve(self, now: float) -> float:
        """Seconds to wait from `now` before sending; books the slot."""
        start = max(now, self._held_until)
        rate = self.per_s
        if rate is None:
            send_at = start
        else:
            # Bursts are the cap's allowance; a rate the service taught us is kept to evenly.
            burst = self._burst if rate == self.cap_per_s else 1
            interval = 1.0 / rate
            tat = max(self._tat, start)
            send_at = max(start, tat - interval * (burst - 1))
            self._tat = tat + interval
        self._last_booked = max(self._last_booked, send_at)
        self._sent.append(send_at)
        self._forget_before(now - self.learning.measure_s)
        return send_at - now

    def throttled(self, now: float, hold_s: float) -> None:
        """A 429: nothing leaves for `hold_s` seconds, and the learned rate drops (once per overload)."""
        self._count_answer(now, refused=1)
        self._held_until = max(self._held_until, now + hold_s)
        self._successes = 0
        learning = self.learning
        if now < self._quiet_until:  # sent before the last cut, at the old rate: already counted
            return
        self._quiet_until = max(now, self._last_booked) + learning.cooldown_s
        measured = self.measured_per_s(now)
        current = measured if self.learned_per_s is None else min(self.learned_per_s, measured)
        cut = min(self.refused_share(now), 1.0 - learning.decrease)
        self.learned_per_s = max(learning.floor_per_s, current * (1.0 - cut))
        self._step = max(self.learned_per_s * learning.step_share, learning.min_step_per_s)

    def record_success(self, now: float, count: int = 1) -> None:
        """`count` more 2xx answers in a row."""
        self._count_answer(now, successes=count)
        if self.learned_per_s is None:
            return
        self._successes += count
        steps, self._successes = divmod(self._successes, self.learning.recover_after)
        self.learned_per_s += steps * self._step

    def refused_share(self, now: float) -> float:
        """The share of the last `measure_s` seconds' answers that were 429s."""
        self._forget_answers_before(now - self.learning.measure_s)
        successes = sum(second[1] for second in self._answers)
        refused = sum(second[2] for second in self._answers)
        return refused / (successes + refused) if refused else 0.0

    def _count_answer(self, now: float, successes: int = 0, refused: int = 0) -> None:
        second = int(now)  # counted per second: a few hundred numbers, whatever the rate
        if not self._answers or self._answers[-1][0] != second:
            self._answers.append([second, 0, 0])
            self._forget_answers_before(now - self.learning.measure_s)
        self._answers[-1][1] += successes
        self._answers[-1][2] += refused

    def _forget_answers_before(self, moment: float) -> None:
        while self._answers and self._answers[0][0] + 1 <= moment:
            self._answers.popleft()

    def measured_per_s(self, now: float) -> float:
        """Requests a second over the last `measure_s` seconds (over one second at least)."""
        self._forget_before(now - self.learning.measure_s)
        if not self._sent:
            return self.learning.floor_per_s
        span = max(now - self._sent[0], 1.0)
        return len(self._sent) / span

    def _forget_before(self, moment: float) -> None:
        while self._sent and self._sent[0] < moment:
            self._sent.popleft()

    # --- http.Limiter, on the running loop's clock ---

    async def turn(self) -> float:
        return self.reserve(asyncio.get_running_loop().time())

    def hold(self, seconds: float) -> None:
        self.throttled(asyncio.get_running_loop().time(), seconds)

    def succeeded(self, count: int = 1) -> None:
        self.record_success(asyncio.get_running_loop().time(), count)
