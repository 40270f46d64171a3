"""What a shard holds instead of local objects: the ledger, window and limiter, over Ray calls.

The ledger stays one SQLite file on the driver's machine, written by one `LedgerService` actor
placed there, so there is one ledger view at the end and the file never crosses a network file
system. The two writes that guard money wait for the actor's commit, as in one process: the
intent to submit is on disk before the POST leaves, and the generation id before anything else
happens to the job. Other writes are sent without waiting (a round trip costs more than the
write): Ray runs one caller's calls to an actor in order, so later reads see them, and the
shard waits for them all before it ends. Lost in a crash, they cost nothing: the job is polled
or downloaded again, or stays `uncertain` rather than being paid twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..run.ledger import Ledger

# Answered before the shard goes on: reads, and the writes that guard against paying twice.
WAITED_FOR = frozenset(
    {"job", "rows_by_id", "recover_interrupted_submits", "mark_submitting", "mark_submitted"}
)
# The money's commits: one round trip each, synced by the service itself (a shard's own wait for
# the disk would be a second round trip on its loop's thread), whatever the caller asks.
SYNCED_THERE = frozenset({"mark_submitting", "mark_submitted"})
UNWAITED_LIMIT = 1000  # sent but not yet confirmed; past this, wait for the oldest

# The Ledger methods the steps and the scheduler use; nothing else crosses the wire.
SHARD_METHODS = frozenset(
    {
        "job",
        "rows_by_id",
        "recover_interrupted_submits",
        "mark_submitting",
        "mark_submitted",
        "mark_pending",
        "record_facts",
        "mark_uncertain",
        "mark_failed",
        "mark_timed_out",
        "note_error",
        "mark_completed",
        "mark_download_failed",
    }
)


class StaleShardError(RuntimeError):
    """A call from an attempt of a shard that has since been started again."""


class LedgerService:
    """The run's ledger, opened once in an actor on the driver's node.

    Only the latest attempt of each shard may write: should a shard be started again while its
    old attempt still runs (its node cut off, not dead), the old one's next call fails, and it
    submits nothing more.
    """

    def __init__(self, path: str):
        self._ledger = Ledger(Path(path))
        self._attempts: dict[int, int] = {}

    def claim(self, shard: int, attempt: int) -> None:
        """From now on, `attempt` is the shard's only voice (the driver calls this first)."""
        self._attempts[shard] = attempt

    def call(
        self, caller: tuple[int, int], method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        shard, attempt = caller
        if self._attempts.get(shard) != attempt:
            raise StaleShardError(f"shard {shard} attempt {attempt} was replaced; it may not write")
        if method not in SHARD_METHODS:
            raise AttributeError(f"the ledger service does not offer {method!r}")
        return getattr(self._ledger, method)(*args, **kwargs)

    def close(self) -> None:
        self._ledger.close()


class RemoteLedger:
    """Ledger methods for a shard; each call returns once the service has committed it."""

    def __init__(self, service: Any, caller: tuple[int, int], job_ids: Iterable[str]):
        self._service = service
        self._caller = caller  # (shard, attempt)
        self._job_ids = list(job_ids)
        self._unconfirmed: list[Any] = []  # refs of writes sent without waiting
        self._failure: Exception | None = None  # the first unwaited write that failed

    def rows_by_id(self, job_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        return self._call("rows_by_id", list(job_ids) if job_ids is not None else self._job_ids)

    def __getattr__(self, name: str) -> Any:
        if name not in SHARD_METHODS:
            raise AttributeError(name)
        if name in SYNCED_THERE:
            return lambda *args, synced=True, **kwargs: self._call(name, *args, **kwargs)
        return lambda *args, **kwargs: self._call(name, *args, **kwargs)

    async def wait_for_disk(self) -> None:
        """Nothing to wait for: the service committed the money's writes synced (SYNCED_THERE)."""

    def flush(self) -> None:
        """Wait until every write sent so far is committed (raises the first that failed)."""

        pending, self._unconfirmed = self._unconfirmed, []
        self._settle(pending)
        if self._failure is not None:
            raise self._failure

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        import ray

        ref = self._service.call.remote(self._caller, method, args, kwargs)
        if method in WAITED_FOR:
            return ray.get(ref)
        self._unconfirmed.append(ref)
        if len(self._unconfirmed) > UNWAITED_LIMIT:
            done, self._unconfirmed = ray.wait(self._unconfirmed, num_returns=UNWAITED_LIMIT // 2)
            self._settle(done)
        return None

    def _settle(self, refs: list[Any]) -> None:
        """Wait for `refs`; a failure is kept for `flush` (not blamed on whichever job is next)."""
        import ray

        for ref in refs:
            try:
                ray.get(ref)
            except Exception as error:  # the shard ends with it, and the driver starts it again
                self._failure = self._failure or error


class SharedWindow:
    """The account's in-flight window, kept by the coordinator (scheduler.SharedWindow)."""

    def __init__(self, coordinator: Any, account: str):
        self._coordinator, self._account = coordinator, account

    async def acquire(self, job_id: str) -> bool:
        return await self._coordinator.acquire.remote(self._account, job_id)

    def release(self, job_id: str) -> None:
        self._coordinator.release.remote(self._account, job_id)

    def hold(self, job_id: str) -> None:
        self._coordinator.hold.remote(self._account, job_id)


class SharedLimiter:
    """The account's request rate, booked and learned at the coordinator (rate.Limiter)."""

    def __init__(self, coordinator: Any, account: str):
        self._coordinator, self._account = coordinator, account
        self._successes = 0  # not yet told: they go with the next turn

    async def turn(self) -> float:
        successes, self._successes = self._successes, 0
        return await self._coordinator.turn.remote(self._account, successes)

    def hold(self, seconds: float) -> None:
        # The successes not told yet go first: the share of 429s the coordinator cuts by counts them.
        successes, self._successes = self._successes, 0
        self._coordinator.slow_down.remote(self._account, seconds, successes)

    def succeeded(self, count: int = 1) -> None:
        self._successes += count
