"""The money's two commits are on the disk before the next network action, and the wait for the
disk does not hold up the event loop (pipeline/run/ledger.py, "Durability"; pipeline/run/steps.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from pipeline.run.ledger import Ledger
from pipeline.run.steps import _Attempt


class OrderLedger:
    """Records the order of the calls the submit hook makes."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.disk = asyncio.Event()

    def mark_submitting(self, job_id: str, *, resubmit: bool = False, synced: bool = True) -> None:
        self.calls.append(f"mark_submitting synced={synced}")

    async def wait_for_disk(self) -> None:
        self.calls.append("wait_for_disk")
        await self.disk.wait()
        self.calls.append("on disk")


def test_the_intent_is_on_the_disk_before_the_post_leaves_and_the_loop_runs_meanwhile():
    async def main() -> None:
        ledger = OrderLedger()
        attempt = _Attempt(ledger, "job", resubmit=False)
        sending = asyncio.create_task(attempt.sending())
        await asyncio.sleep(0)  # the hook is waiting for the disk: other work runs
        assert ledger.calls == ["mark_submitting synced=False", "wait_for_disk"]
        assert attempt.sent and not attempt.in_transit  # recorded, not yet on its way
        ledger.disk.set()
        await sending
        assert ledger.calls[-1] == "on disk" and attempt.in_transit

    asyncio.run(main())


def test_a_submit_stopped_while_its_intent_goes_to_disk_was_never_on_its_way():
    """Cancelled during the disk's wait: no POST left, so the job is put back, not uncertain."""

    async def main() -> None:
        ledger = OrderLedger()
        attempt = _Attempt(ledger, "job", resubmit=False)
        sending = asyncio.create_task(attempt.sending())
        await asyncio.sleep(0)
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        assert attempt.sent and not attempt.in_transit

    asyncio.run(main())


def test_sync_to_disk_fdatasyncs_the_ledgers_wal(tmp_path: Path, monkeypatch):
    synced: list[str] = []
    real = getattr(os, "fdatasync", os.fsync)

    def spy(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real(descriptor)

    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.sync_jobs([("job", 0, {"prompt": "a"}, {})])
        ledger.mark_submitting("job", synced=False)
        monkeypatch.setattr(os, "fdatasync" if hasattr(os, "fdatasync") else "fsync", spy)
        asyncio.run(ledger.wait_for_disk())
        assert ledger.job("job")["status"] == "submitting"
    assert synced == [str(tmp_path / "ledger.sqlite-wal")]


def test_submits_waiting_for_the_disk_together_share_one_sync(tmp_path: Path, monkeypatch):
    """A wave of 20 submits: one trip to the disk for the intents recorded before it left, not
    20 queued behind each other; an intent recorded while a sync is on its way gets the next."""
    syncs: list[int] = []

    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.sync_jobs([(f"job{n}", n, {"prompt": "a"}, {}) for n in range(21)])
        real = ledger.sync_to_disk
        monkeypatch.setattr(ledger, "sync_to_disk", lambda: (syncs.append(1), real()))

        async def main() -> None:
            for n in range(20):
                ledger.mark_submitting(f"job{n}", synced=False)
            first = asyncio.gather(*(ledger.wait_for_disk() for _ in range(20)))
            await asyncio.sleep(0)  # the shared sync is on its way
            ledger.mark_submitting("job20", synced=False)
            await asyncio.gather(first, ledger.wait_for_disk())
            await ledger.wait_for_disk()  # nothing new since: no trip at all

        asyncio.run(main())
    assert len(syncs) == 2
