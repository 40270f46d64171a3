"""One shard: a slice of one account's jobs, run by the ordinary async scheduler in a Ray worker.

The shard differs from a local run only in what it talks to: the ledger service, the shared
window and the shared request rate (remote.py). Every quarter second it sends its counts to the
coordinator and learns whether to stop submitting, abort, or cancel.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import errors
from ..errors import AbortError, BudgetError
from ..ledger import SUBMITTED, TIMED_OUT
from ..scheduler import Scheduler, SchedulerOptions
from ..session import open_scheduler
from ..settings import RunSettings
from ..steps import Job
from ..storage import Store
from .remote import RemoteLedger, SharedLimiter, SharedWindow

REPORT_EVERY_S = 0.25


class Secret(str):
    """An API key that does not show itself in logs, reprs or Ray's task listings."""

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class ShardSpec:
    shard: int
    attempt: int
    account: str
    api_key: Secret
    base_url: str
    jobs: tuple[Job, ...]
    out_dir: str
    manifest_folder: str
    run: RunSettings
    options: SchedulerOptions
    store: Store | None = None  # None: videos stay in out_dir/videos


def run_shard(spec: ShardSpec, ledger_service: Any, coordinator: Any) -> dict[str, Any]:
    """The Ray task: run the shard to its end; return its counts and how it stopped."""
    return asyncio.run(_run(spec, ledger_service, coordinator))


async def _run(spec: ShardSpec, ledger_service: Any, coordinator: Any) -> dict[str, Any]:
    job_ids = [job.job_id for job in spec.jobs]
    ledger = RemoteLedger(ledger_service, job_ids)
    if spec.attempt > 0:
        await _take_over(spec, ledger, coordinator, job_ids)
    service = (spec.base_url, str(spec.api_key))
    video_dir = Path(spec.out_dir) / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)  # on another node, the first shard there makes it
    async with open_scheduler(
        list(spec.jobs),
        ledger,
        video_dir,
        spec.run,
        service,
        Path(spec.manifest_folder),
        spec.options,
        limiter=SharedLimiter(coordinator, spec.account),
        shared=SharedWindow(coordinator, spec.account),
        store=spec.store,
    ) as scheduler:
        work = asyncio.create_task(scheduler.run())
        follow = asyncio.create_task(_follow(spec.shard, scheduler, work, coordinator))
        cancelled = False
        try:
            await work
        except asyncio.CancelledError:
            cancelled = True
        finally:
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)
        ledger.flush()
        if _spreads(scheduler.abort):
            await coordinator.abort.remote(type(scheduler.abort).__name__, str(scheduler.abort))
        tally = asdict(scheduler.tally)
        await coordinator.report.remote(spec.shard, tally)
        return {
            "tally": tally,
            "abort": None
            if scheduler.abort is None
            else (type(scheduler.abort).__name__, str(scheduler.abort)),
            "stop_reason": scheduler.stop_reason,
            "cancelled": cancelled,
            "http": asdict(scheduler.steps.client.counters),
        }


async def _take_over(spec: ShardSpec, ledger: RemoteLedger, coordinator: Any, job_ids: list[str]) -> None:
    """A restarted shard: the dead one's submits in the air are `uncertain` (never resent
    unasked), and it lets go of the slots of jobs whose generation is not running."""
    ledger.recover_interrupted_submits(job_ids)
    rows = ledger.rows_by_id()
    running = [job_id for job_id, row in rows.items() if row["status"] in (SUBMITTED, TIMED_OUT)]
    await coordinator.release_all_but.remote(spec.account, job_ids, running)


async def _follow(shard: int, scheduler: Scheduler, work: asyncio.Task, coordinator: Any) -> None:
    """Send counts and this shard's abort (a 401 here stops every shard); obey the run's stop,
    abort and cancel."""
    while True:
        if _spreads(scheduler.abort):
            await coordinator.abort.remote(type(scheduler.abort).__name__, str(scheduler.abort))
        control = await coordinator.report.remote(shard, asdict(scheduler.tally))
        if control.cancel:
            scheduler.stop_submitting(control.cancel)
            work.cancel()
            return
        if control.abort and scheduler.abort is None:
            kind, message = control.abort
            scheduler.stop_now(abort_error(kind, message))
        elif control.stop:
            scheduler.stop_submitting(control.stop)
        await asyncio.sleep(REPORT_EVERY_S)


def _spreads(abort: AbortError | None) -> bool:
    """A bad key, no credits or a wrong endpoint stop the run; a shard's budget share only it."""
    return abort is not None and not isinstance(abort, BudgetError)


def abort_error(kind: str, message: str) -> AbortError:
    """The other shard's error, as its own class (so the summary reads the same)."""
    cls = getattr(errors, kind, AbortError)
    if not (isinstance(cls, type) and issubclass(cls, AbortError)):
        cls = AbortError
    return cls(message)
