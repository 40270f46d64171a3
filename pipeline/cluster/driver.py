"""`vidpipe run --engine ray`: the job table in shards on a Ray cluster, one ledger, one result.

    driver (this process)            actors (on the driver's node)        tasks (anywhere)
    ledger.sqlite, RunLock  ------>  LedgerService: the only writer  <---  shard 0 .. shard k-1
    progress, Ctrl-C        ------>  Coordinator: windows, rates,    <---  each: one account's
                                      stop/abort/cancel, tallies           jobs, the usual scheduler

A shard that dies (its worker killed, its node lost) is started again with the same jobs, and
only that attempt may write to the ledger from then on: it marks the dead one's submits in the
air `uncertain`, resumes its generations by id and submits only jobs never sent, so no job is
paid for twice (shard.py). The driver holds the output folder's lock for the whole run; if the
driver dies, Ray stops the shards with it, and the next `vidpipe run` resumes from the ledger
as after any crash.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import AbortError, InputError
from ..net.http import Counters
from ..read.settings import Settings
from ..run.interrupts import install_stop_signals, remove_stop_signals
from ..run.ledger import Ledger, now_iso
from ..run.progress import Progress, choose_mode
from ..run.runplan import to_pay
from ..run.scheduler import SchedulerOptions
from ..run.steps import Job
from ..run.tally import Tally
from ..states import JobState
from ..write.results import keep_results_fresh
from ..write.storage import Store
from .coordinator import Coordinator
from .remote import LedgerService
from .shard import Secret, ShardSpec, abort_error, run_shard
from .sharding import budget_shares, split_shards

MAX_ATTEMPTS = 3
WATCH_EVERY_S = 0.25
# Set before Ray is imported (unless the user set them): no usage reporting; and for a local
# instance, no token prompts and listening on 127.0.0.1 only. A cluster joined keeps its own.
RAY_ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0"}
LOCAL_RAY_ENVIRONMENT = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}


@dataclass(frozen=True)
class ClusterRequest:
    service: str  # its name (services.py): the shards speak its request format
    address: str | None = None  # None: start a local Ray instance for this run
    shards: int | None = None  # None: one per CPU of the cluster
    retry_uncertain: bool = False
    quiet: bool = False


@dataclass
class ClusterOutcome:
    """What summary.summarise reads of a run (the local engine hands it its Scheduler)."""

    tally: Tally
    abort: AbortError | None = None
    stop_reason: str | None = None
    http: dict[str, int] = field(default_factory=dict)
    lost_shards: list[str] = field(default_factory=list)
    carried: dict[str, float] = field(
        default_factory=lambda: {"credits_spent": 0.0, "budget_spent": 0.0, "resubmits": 0}
    )


def run_on_ray(
    jobs: list[Job],
    ledger: Ledger,
    out_dir: Path,
    settings: Settings,
    service: tuple[str, dict[str, str]],
    request: ClusterRequest,
    assignment: dict[str, str],
    store: Store | None = None,
) -> tuple[ClusterOutcome, bool]:
    """Run `jobs` on Ray. `service` is (base_url, {account name: API key}); `assignment` maps
    each job to its account (sharding.assign_accounts, already in the ledger).

    Returns the outcome and whether the run was interrupted (Ctrl-C, SIGTERM or SIGHUP).
    """
    accounts = settings.run.account_list()
    ray, started_here = _connect(request.address, request.shards)
    try:
        shard_count = request.shards or max(1, int(ray.cluster_resources().get("CPU", 1)))
        paying = {job.job_id for job in to_pay(jobs, ledger.rows_by_id(), request.retry_uncertain)}
        specs = _specs(
            jobs,
            assignment,
            accounts,
            shard_count,
            out_dir,
            settings,
            service,
            request,
            paying,
        )
        here = ray.get_runtime_context().get_node_id()
        on_this_node = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(here, soft=False)
        ledger_service = (
            ray.remote(LedgerService)
            # A restarted actor reopens the file; calls caught by the restart are sent again
            # (each write sets a state, so a repeat changes nothing but a counter).
            .options(num_cpus=0, max_restarts=3, max_task_retries=3, scheduling_strategy=on_this_node)
            .remote(str(ledger.path.resolve()))
        )
        coordinator = ray.remote(Coordinator).options(num_cpus=0, max_concurrency=10_000).remote(accounts)
        specs = [replace(spec, store=store) for spec in specs]  # each worker opens its own filesystem
        try:
            refresh = (ledger, out_dir, settings.output.formats)
            return asyncio.run(
                _watch(ray, specs, (ledger, ledger_service), coordinator, len(jobs), request, refresh)
            )
        finally:
            try:
                ray.get(ledger_service.close.remote(), timeout=30)
            except Exception as error:  # the file is consistent whatever happened to the actor
                print(f"warning: the ledger service did not close cleanly: {error}", file=sys.stderr)
            for actor in (ledger_service, coordinator):
                ray.kill(actor)
    finally:
        if started_here:
            ray.shutdown()


def _connect(address: str | None, shards: int | None):
    if address and address.startswith("ray://"):
        raise InputError(
            f"--ray-address {address}: Ray Client (ray://) would run the driver on the head node, away "
            "from the ledger; run vidpipe on a machine of the cluster with --ray-address HEAD:6379 (or auto)"
        )
    for name, value in {**RAY_ENVIRONMENT, **({} if address else LOCAL_RAY_ENVIRONMENT)}.items():
        os.environ.setdefault(name, value)
    try:
        import ray
        import ray.util.scheduling_strategies
    except ImportError:
        raise InputError("--engine ray needs Ray: pip install 'vidpipe[ray]'") from None
    if ray.is_initialized():
        return ray, False
    options: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "log_to_driver": False,
    }
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=max(os.cpu_count() or 1, shards or 0), **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise InputError(f"cannot start or reach {where}: {str(error).splitlines()[0]}") from None
    return ray, True


def _specs(jobs, assignment, accounts, shard_count, out_dir, settings, service, request, paying):
    base_url, keys = service
    run = settings.run
    started_at = now_iso()
    by_account = {
        account.name: [job for job in jobs if assignment[job.job_id] == account.name] for account in accounts
    }
    shards = split_shards(by_account, {a.name: a.concurrency for a in accounts}, shard_count)
    estimates = [[job.credits_estimate for job in shard if job.job_id in paying] for _, shard in shards]
    budgets = budget_shares(run.budget, estimates)
    concurrency = {account.name: account.concurrency for account in accounts}
    return [
        ShardSpec(
            shard=number,
            attempt=0,
            account=name,
            api_key=Secret(keys[name]),
            base_url=base_url,
            jobs=tuple(shard_jobs),
            out_dir=str(out_dir.resolve()),
            run=run,
            options=SchedulerOptions(
                concurrency=concurrency[name],
                budget=budget,
                resubmit_failed=run.resubmit_failed,
                retry_uncertain=request.retry_uncertain,
            ),
            run_started_at=started_at,
            service=request.service,
        )
        for number, ((name, shard_jobs), budget) in enumerate(zip(shards, budgets, strict=True))
    ]


async def _watch(ray, specs, ledgers, coordinator, total, request, refresh) -> tuple[ClusterOutcome, bool]:
    """Launch the shards, restart lost ones, show progress and the table, pass Ctrl-C on;
    gather the outcome. `ledgers` is the driver's Ledger (to read) and the ledger service;
    `refresh` is (ledger, folder, formats) for the results table."""
    ledger, ledger_service = ledgers
    task = ray.remote(run_shard).options(num_cpus=1, max_retries=0)

    def launch(spec: ShardSpec):
        ray.get(ledger_service.claim.remote(spec.shard, spec.attempt))  # an older attempt may not write
        return task.remote(spec, ledger_service, coordinator)

    pending = {launch(spec): spec for spec in specs}
    results: dict[int, dict[str, Any]] = {}
    outcome = ClusterOutcome(Tally(total=total))
    done_before = _done_before(ledger.rows_by_id(), request.retry_uncertain)
    average = sum(job.credits_estimate for spec in specs for job in spec.jobs) / max(total, 1)
    helpers = [
        asyncio.create_task(Progress(outcome.tally, choose_mode(request.quiet), average).run()),
        asyncio.create_task(keep_results_fresh(*refresh)),
    ]
    interrupts = _forward_interrupts(coordinator, outcome.tally)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
            for ref in ready:
                spec = pending.pop(ref)
                try:
                    results[spec.shard] = ray.get(ref)
                except ray.exceptions.RayError as error:
                    again = await _after_loss(spec, error, ledger, coordinator, outcome)
                    if again is not None:
                        pending[launch(again)] = again
            _merge(outcome, await coordinator.snapshot.remote(), done_before)
            await asyncio.sleep(WATCH_EVERY_S)
    finally:
        remove_stop_signals()
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
    snapshot = await coordinator.snapshot.remote()
    _merge(outcome, snapshot, done_before)
    _conclude(outcome, results.values(), snapshot["control"])
    return outcome, interrupts["count"] > 0


def _done_before(rows: dict[str, dict[str, Any]], retry_uncertain: bool) -> int:
    """Jobs no shard works on: completed, and uncertain ones left alone (an uncertain job with a
    known generation id is polled again)."""
    return sum(
        row["status"] == JobState.COMPLETED
        or (row["status"] == JobState.UNCERTAIN and not retry_uncertain and not row["generation_id"])
        for row in rows.values()
    )


async def _after_loss(
    spec: ShardSpec, error: Exception, ledger: Ledger, coordinator, outcome: ClusterOutcome
):
    """The spec to start again after a shard was lost, or None when it is given up on.

    What the lost attempt spent counts against the shard's budget share, and in the run's tally.
    """
    snapshot = await coordinator.snapshot.remote()
    control = snapshot["control"]
    lost = snapshot["tallies"].get(spec.shard) or {}
    spent = lost.get("credits_spent", 0.0)
    outcome.carried["credits_spent"] += spent
    outcome.carried["budget_spent"] += lost.get("budget_spent", 0.0)
    outcome.carried["resubmits"] += lost.get("resubmits", 0)
    reason = _first_line(getattr(error, "cause", None) or error)
    if spec.attempt + 1 >= MAX_ATTEMPTS or control.cancel or control.abort:
        outcome.lost_shards.append(f"shard {spec.shard} was lost ({reason})")
        print(
            f"warning: shard {spec.shard} was lost ({reason}); its unfinished jobs wait for a rerun",
            file=sys.stderr,
        )
        # Nobody polls its generations in this run: their slots stay taken until it ends.
        rows = ledger.rows_by_id([job.job_id for job in spec.jobs])
        states = {job: JobState(row["status"]) for job, row in rows.items()}
        unwatched = [job for job, state in states.items() if state is JobState.SUBMITTING or state.generating]
        await coordinator.settle.remote(spec.account, list(rows), [], unwatched)
        return None
    print(f"warning: shard {spec.shard} was lost ({reason}); starting it again", file=sys.stderr, flush=True)
    budget = spec.options.budget
    options = replace(spec.options, budget=None if budget is None else max(0, int(budget - spent)))
    return replace(spec, attempt=spec.attempt + 1, options=options)


def _merge(outcome: ClusterOutcome, snapshot: dict[str, Any], done_before: int) -> None:
    """The shards' latest counts, summed into the tally the progress line reads."""
    tally = outcome.tally
    summed = {f.name for f in fields(Tally)} - {"total", "started", "peak_in_flight"}
    for name in summed:
        total = sum(shard[name] for shard in snapshot["tallies"].values())
        setattr(tally, name, total + outcome.carried.get(name, 0))
    # A restarted shard counts the jobs its lost attempt finished as done before: the ledger knows.
    tally.skipped = done_before
    tally.peak_in_flight = snapshot["peak_in_flight"]


def _conclude(outcome: ClusterOutcome, results, control) -> None:
    counters = Counters()
    for result in results:
        for name, value in result["http"].items():
            setattr(counters, name, getattr(counters, name) + value)
        if outcome.abort is None and result["abort"] is not None:
            outcome.abort = abort_error(*result["abort"])
        outcome.stop_reason = outcome.stop_reason or result["stop_reason"]
    if control.abort is not None:
        outcome.abort = abort_error(*control.abort)
    outcome.stop_reason = control.cancel or control.stop or outcome.stop_reason
    if outcome.lost_shards and outcome.stop_reason is None:
        outcome.stop_reason = "; ".join(outcome.lost_shards)
    outcome.http = asdict(counters)


def _forward_interrupts(coordinator, tally: Tally) -> dict[str, int]:
    """First Ctrl-C (or SIGTERM, SIGHUP): no new submits anywhere. Second: every shard stops now."""
    state = {"count": 0}

    def first_or_second() -> None:
        state["count"] += 1
        if state["count"] == 1:
            coordinator.stop.remote("interrupted")
            print(
                f"\nInterrupted: no new submits on any shard. Finishing {tally.running + tally.downloading} "
                "generation(s) already paid for; press Ctrl-C again to exit now (a rerun resumes them).",
                file=sys.stderr,
                flush=True,
            )
        else:
            coordinator.cancel.remote("interrupted twice")

    install_stop_signals(first_or_second)
    return state


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:200]
