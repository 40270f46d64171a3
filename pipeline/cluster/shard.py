"""One shard: a slice of one account's jobs, run by the ordinary async scheduler in a Ray worker.

The shard differs from a local run only in what it talks to: the ledger service, the shared
window and the shared request rate (remote.py). Every quarter second it sends its counts to the
coordinator and learns whether to stop submitting, abort, or cancel.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from .. import errors
from ..errors import AbortError, BudgetError
from ..read.settings import RunSettings
from ..run.scheduler import Scheduler, SchedulerOptions
from ..run.session import open_scheduler
from ..run.steps import Job
from ..services import SERVICES
from ..states import JobState
from ..write.storage import Store
from .coordinator import Control
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
    run: RunSettings
    options: SchedulerOptions
    run_started_at: str  # ledger time (ISO, UTC) when the run began
    service: str  # its name (services.py)
    store: Store | None = None  # None: videos stay in out_dir/videos


def run_shard(spec: ShardSpec, ledger_service: Any, coordinator: Any) -> dict[str, Any]:
    """The Ray task: run the shard to its end; return its counts and how it stopped."""
    return asyncio.run(_run(spec, ledger_service, coordinator))


async def _run(spec: ShardSpec, ledger_service: Any, coordinator: Any) -> dict[str, Any]:
    job_ids = [job.job_id for job in spec.jobs]
    ledger = RemoteLedger(ledger_service, (spec.shard, spec.attempt), job_ids)
    options = spec.options
    if spec.attempt > 0:
        options = replace(options, hold_back=await _take_over(spec, ledger, coordinator, job_ids))
    service = (spec.base_url, str(spec.api_key))
    video_dir = Path(spec.out_dir) / "videos"
    video_dir.mkdir(parents=True, exist_ok=True)  # on another node, the first shard there makes it
    async with open_scheduler(
        list(spec.jobs),
        ledger,
        video_dir,
        spec.run,
        service,
        options,
        limiter=SharedLimiter(coordinator, spec.account),
        shared=SharedWindow(coordinator, spec.account),
        store=spec.store,
        provider=SERVICES[spec.service].provider(spec.run.endpoint),
    ) as scheduler:
        # A shard started after a Ctrl-C or an abort must know before its first submit.
        control = await coordinator.report.remote(spec.shard, None)
        work = asyncio.create_task(scheduler.run())
        _obey(control, scheduler, work)
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
        # Slots this shard still holds by mistake (granted while it was stopping) go back.
        await coordinator.settle.remote(spec.account, job_ids, [], [])
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
            "http": asdict(scheduler.http_counters),
        }


async def _take_over(
    spec: ShardSpec, ledger: RemoteLedger, coordinator: Any, job_ids: list[str]
) -> frozenset[str]:
    """A restarted shard takes over from the dead attempt; returns the jobs to hold back.

    The dead attempt's submits in the air become `uncertain` and keep their slots (their
    generations may run); jobs it left uncertain or failed are not submitted again in this run,
    even with --retry-uncertain or failed jobs to retry (the next run decides, as after any crash).
    """
    in_the_air = [job for job, row in ledger.rows_by_id().items() if row["status"] == JobState.SUBMITTING]
    ledger.recover_interrupted_submits(in_the_air)
    rows = ledger.rows_by_id()
    running = [job_id for job_id, row in rows.items() if JobState(row["status"]).generating]
    await coordinator.settle.remote(spec.account, job_ids, running, in_the_air)
    ended_here = {
        job_id
        for job_id, row in rows.items()
        if row["status"] in (JobState.UNCERTAIN, JobState.FAILED) and row["updated_at"] >= spec.run_started_at
    }
    return frozenset(ended_here)


async def _follow(shard: int, scheduler: Scheduler, work: asyncio.Task, coordinator: Any) -> None:
    """Send counts and this shard's abort (a 401 here stops every shard); obey the run's stop,
    abort and cancel."""
    while True:
        if _spreads(scheduler.abort):
            await coordinator.abort.remote(type(scheduler.abort).__name__, str(scheduler.abort))
        if _obey(await coordinator.report.remote(shard, asdict(scheduler.tally)), scheduler, work):
            return
        await asyncio.sleep(REPORT_EVERY_S)


def _obey(control: Control, scheduler: Scheduler, work: asyncio.Task) -> bool:
    """Apply the run's stop, abort or cancel to this shard; True once it is cancelled."""
    if control.cancel:
        scheduler.stop_submitting(control.cancel)
        work.cancel()
        return True
    if control.abort and scheduler.abort is None:
        scheduler.stop_now(abort_error(*control.abort))
    elif control.stop:
        scheduler.stop_submitting(control.stop)
    return False


def _spreads(abort: AbortError | None) -> bool:
    """A bad key, no credits or a wrong endpoint stop the run; a shard's budget share only it."""
    return abort is not None and not isinstance(abort, BudgetError)


def abort_error(kind: str, message: str) -> AbortError:
    """The other shard's error, as its own class (so the summary reads the same)."""
    cls = getattr(errors, kind, AbortError)
    if not (isinstance(cls, type) and issubclass(cls, AbortError)):
        cls = AbortError
    return cls(message)
