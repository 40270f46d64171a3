"""The limits every shard shares, and the run's control signals: one copy, in one Ray actor.

- `Window`: an account's in-flight limit, held per job rather than per shard. A shard that dies
  leaves its generations running at the service, so their slots stay taken until the restarted
  shard resumes them (taking a slot a job already holds is free) or lets them go.
- a `RequestRate` per account (the same as one process uses), booked on the actor's clock: the
  account's hard cap, and the rate learned from its 429s. Learned here, not per shard, because
  the service's limit is the account's: a 429 one shard meets slows every shard on that key,
  and the rate is measured over all of them. Shards send their successes with their next turn,
  so learning costs no extra call;
- stop / abort / cancel, and each shard's latest tally for the driver's progress line.

Plain asyncio: the actor is an async actor, so `acquire` may wait without blocking other calls.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..net.rate import RequestRate
from ..read.settings import Account


class Window:
    """At most `size` jobs hold a slot; waiters are served in arrival order."""

    def __init__(self, size: int):
        self.size = size
        self.holders: dict[str, bool] = {}  # job_id -> past run.timeout (held until the run ends)
        self._waiters: deque[tuple[str, asyncio.Future[bool]]] = deque()

    async def acquire(self, job_id: str) -> bool:
        """True once `job_id` holds a slot; False when every slot is held past its timeout."""
        if job_id in self.holders:
            return True
        if len(self.holders) < self.size and not self._waiters:
            self.holders[job_id] = False
            return True
        if self._all_held():
            return False
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((job_id, waiter))
        return await waiter

    def release(self, job_id: str) -> None:
        if self.holders.pop(job_id, None) is not None:
            self._wake()

    def hold(self, job_id: str) -> None:
        if job_id in self.holders:
            self.holders[job_id] = True
        if self._all_held():
            while self._waiters:
                _, waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(False)

    def _all_held(self) -> bool:
        return len(self.holders) >= self.size and all(self.holders.values())

    def _wake(self) -> None:
        while self._waiters and len(self.holders) < self.size:
            job_id, waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self.holders[job_id] = False
            waiter.set_result(True)


@dataclass
class Control:
    stop: str | None = None  # no new submits
    abort: tuple[str, str] | None = None  # (error class name, message): stop now, everywhere
    cancel: str | None = None  # second Ctrl-C: stop now


@dataclass
class Coordinator:
    """What the shards share. Wrapped in `ray.remote` by the driver; plain to test."""

    accounts: list[Account]
    windows: dict[str, Window] = field(init=False)
    limiters: dict[str, RequestRate] = field(init=False)
    control: Control = field(default_factory=Control)
    tallies: dict[int, dict[str, Any]] = field(default_factory=dict)
    in_flight: int = 0
    peak_in_flight: int = 0

    def __post_init__(self) -> None:
        self.windows = {a.name: Window(a.concurrency) for a in self.accounts}
        self.limiters = {a.name: RequestRate(a.requests_per_minute) for a in self.accounts}

    # --- the in-flight window ---

    async def acquire(self, account: str, job_id: str) -> bool:
        granted = await self.windows[account].acquire(job_id)
        self._count()
        return granted

    async def release(self, account: str, job_id: str) -> None:
        self.windows[account].release(job_id)
        self._count()

    async def hold(self, account: str, job_id: str) -> None:
        self.windows[account].hold(job_id)

    async def settle(self, account: str, job_ids: list[str], running: list[str], maybe: list[str]) -> None:
        """A shard's slots after it ended, died or was given up on. `running`: generations a
        restarted shard resumes, which keep their slots; `maybe`: generations that may be
        running with no one watching (a submit in the air, or a shard given up on), which keep
        theirs until the run ends, like one past run.timeout. Those are never freed; the rest are.
        """
        window = self.windows[account]
        keep, held = set(running), set(maybe)
        for job_id in job_ids:
            if job_id in held:
                window.hold(job_id)
            elif job_id not in keep and not window.holders.get(job_id):
                window.release(job_id)
        self._count()

    def _count(self) -> None:
        self.in_flight = sum(len(window.holders) for window in self.windows.values())
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    # --- the request rate ---

    async def turn(self, account: str, successes: int = 0) -> float:
        """Book the next request's slot; `successes`: 2xx answers the shard had since its last turn."""
        limiter = self.limiters[account]
        if successes:
            limiter.succeeded(successes)
        return await limiter.turn()

    async def slow_down(self, account: str, seconds: float, successes: int = 0) -> None:
        """A shard met a 429, after `successes` 2xx answers since its last turn."""
        limiter = self.limiters[account]
        if successes:
            limiter.succeeded(successes)
        limiter.hold(seconds)

    # --- control and progress ---

    async def stop(self, reason: str) -> None:
        self.control.stop = self.control.stop or reason

    async def abort(self, kind: str, message: str) -> None:
        self.control.abort = self.control.abort or (kind, message)

    async def cancel(self, reason: str) -> None:
        self.control.cancel = self.control.cancel or reason

    async def report(self, shard: int, tally: dict[str, Any] | None) -> Control:
        """A shard's latest counts in; what it should do now out."""
        if tally is not None:
            self.tallies[shard] = tally
        return self.control

    async def snapshot(self) -> dict[str, Any]:
        return {
            "tallies": dict(self.tallies),
            "control": self.control,
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
        }
