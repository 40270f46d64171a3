"""`vidpipe run`: manifest -> job table -> ledger -> scheduler -> videos and the output table.

This module wires the pieces together and owns the run's lifecycle: where outputs go, which
service is called (starting the embedded sandbox when it is the one), the budget check
before anything is sent, Ctrl-C, the periodic table refresh and the summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from .. import catalogue, services
from ..cluster.sharding import assign_accounts
from ..errors import (
    BudgetError,
    EnvironmentRefusedError,
    InputError,
)
from ..net.download import is_loopback_host
from ..net.model_feeds import offline
from ..read.jobs import adapt_note, load_batch
from ..read.manifest import display_path
from ..read.settings import output_folder, output_target
from ..states import JobState
from ..write.outputs import prepare_store, publish_outputs, remote_store
from ..write.results import keep_results_fresh, write_results
from ..write.summary import RunSummary, summarise
from ..write.table import parquet_available
from .interrupts import install_stop_signals, remove_stop_signals
from .ledger import LEDGER_FILE, Ledger, RunLock
from .model_check import ModelCheck, check_models
from .plan import unpriced_refusal
from .progress import Progress, choose_mode
from .resume import resume_command
from .runplan import jobs_of, ledger_rows, to_pay
from .scheduler import Scheduler, SchedulerOptions
from .session import open_scheduler
from .steps import Job
from .workfolder import (
    check_writable,
    clear_final_mark,
    mark_tables_final,
    rebuild_ledger,
    refuse_lost_ledger,
    set_aside_ledger,
)

SANDBOX_KEY = "sandbox"  # the embedded sandbox wants some Bearer key; it checks none


@dataclass
class RunRequest:
    """What the user asked for: the manifest and the flags that override it."""

    manifest: Path
    provider: str | None = None
    base_url: str | None = None
    out: Path | str | None = None  # a folder, or a URL (s3://bucket/prefix)
    concurrency: int | None = None
    budget: int | None = None
    limit: int | None = None
    max_failures: int | None = None
    fresh: bool = False
    rebuild_ledger: bool = False  # the ledger was lost: rebuild it from results.jsonl first
    retry_uncertain: bool = False
    endpoint: str | None = None
    quiet: bool = False
    engine: str = "local"  # or "ray": shards on a Ray cluster (pipeline/cluster/)
    ray_address: str | None = None
    shards: int | None = None
    ledger_dir: Path | None = None


def run(request: RunRequest) -> RunSummary:
    _limit_malloc_arenas()
    batch = load_batch(request.manifest, endpoint=request.endpoint)
    settings = batch.settings.with_overrides(
        concurrency=request.concurrency,
        budget=request.budget,
        max_failures=request.max_failures,
        endpoint=request.endpoint,
    )
    service = services.service(request.provider or settings.provider)
    if "parquet" in settings.output.formats and not parquet_available():
        raise InputError(
            "output.formats asks for parquet, which needs pyarrow: pip install 'vidpipe[parquet]' "
            "(or drop parquet from output.formats); nothing was sent"
        )
    if service.resend_uncertain:
        # Nothing is billed there, so a submit whose answer was lost is simply sent again: a
        # killed run finishes with the same command, no flag needed.
        request = replace(request, retry_uncertain=True)
    table = batch.table if request.limit is None else batch.table.head(request.limit)
    out_dir = output_folder(settings, request.out, request.ledger_dir)  # local: holds the ledger
    store = remote_store(output_target(settings, request.out), settings)  # None: outputs in out_dir
    video_dir = out_dir / "videos"
    accounts = settings.run.account_list()
    base_url, keys = _base_url_and_keys(service, request.base_url, accounts)
    if request.engine == "local" and len(accounts) > 1:
        raise InputError(
            f"run.accounts lists {len(accounts)} keys; the local engine uses one: "
            "add --engine ray (it starts a local Ray instance by itself)"
        )
    embedded = settings.sandbox if service.embedded else None
    check = check_models(None if service.embedded else base_url, table["model"].unique(), embedded)
    _show_model_check(check, request.quiet)
    check.refuse_withdrawn(display_path(request.manifest))
    if check.renames:  # a superseded model's jobs, checked against its replacement's schema
        batch = load_batch(request.manifest, endpoint=request.endpoint, renames=check.renames)
        table = batch.table if request.limit is None else batch.table.head(request.limit)
    table = check.resolved(table)
    adapted = adapt_note(table, "sends")
    if adapted:
        print(f"warning: {adapted}", file=sys.stderr)
    jobs = jobs_of(table, batch.images, settings.output.filename, video_dir, check.prices)
    # Every submit names its model's path from the catalogue: read it now (560 kB of JSON, tens of
    # milliseconds), not inside the first submit while the rest of the first wave waits behind it.
    catalogue.load_catalogue()
    if request.fresh and request.rebuild_ledger:
        raise InputError("--fresh and --rebuild-ledger exclude each other: start over, or rebuild")
    check_writable(out_dir)
    video_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(out_dir):
        if request.fresh:
            set_aside_ledger(out_dir)
        elif request.rebuild_ledger:
            print(rebuild_ledger(out_dir, ledger_rows(table), jobs, local=store is None), file=sys.stderr)
        else:
            refuse_lost_ledger(out_dir)
        with Ledger(out_dir / LEDGER_FILE) as ledger, ExitStack() as stack:
            _refuse_another_service(ledger, service.name, out_dir)
            clear_final_mark(out_dir)  # before any submit: from now on the table may lag the ledger
            ledger.sync_jobs(ledger_rows(table))
            recovered = ledger.recover_interrupted_submits()
            assignment = assign_accounts([job.job_id for job in jobs], ledger.rows_by_id(), accounts)
            ledger.assign_accounts(assignment)
            planned = _check_budget_before_start(ledger, jobs, settings.run.budget, request.retry_uncertain)
            prepare_store(store, out_dir)
            resume = resume_command(request, base_url if base_url != service.base_url else None)
            if service.embedded:
                base_url = _start_sandbox(stack, settings.sandbox, out_dir)
            run_id = ledger.start_run(display_path(request.manifest), service.name, resume.as_record())
            started = time.monotonic()
            if request.engine == "ray":
                outcome, interrupted = _execute_on_ray(
                    jobs,
                    ledger,
                    out_dir,
                    settings,
                    service,
                    (base_url, keys),
                    request,
                    assignment,
                    store,
                )
                http = outcome.http
            else:
                connection = (base_url, keys[accounts[0].name])
                outcome, interrupted = asyncio.run(
                    _execute(jobs, ledger, out_dir, settings, service, connection, request, store)
                )
                http = asdict(outcome.http_counters)
            try:
                tables = write_results(ledger, out_dir, settings.output.formats)
            except EnvironmentRefusedError:
                if isinstance(outcome.abort, EnvironmentRefusedError):  # say what refused first
                    raise outcome.abort from None
                raise
            mark_tables_final(out_dir, ledger)
            where = store.describe() if store else out_dir
            summary = summarise(
                settings, service.name, where, jobs, outcome, interrupted, started, tables, ledger
            )
            summary.recovered_uncertain = recovered
            summary.http = http
            summary.planned_credits = planned
            summary.resume = resume
            ledger.finish_run(run_id, summary.exit_code)
            # Before the ledger closes: its connection is the last and tidies the WAL files away.
            publish_outputs(summary, out_dir, store, tables, settings.output.dataset)
    return summary


def _show_model_check(check: ModelCheck, quiet: bool) -> None:
    """Deprecation warnings always; where prices came from unless quiet (or asked offline)."""
    lines = check.warnings if quiet or offline() else [*check.lines, *check.warnings]
    for line in lines:
        print(line, file=sys.stderr)


def _refuse_another_service(ledger: Ledger, service_name: str, out_dir: Path) -> None:
    """A folder's jobs belong to the service that ran them: polling a real generation id on the
    sandbox (or trusting sandbox videos as paid ones) would mix the two up, so a run may not
    switch services in a folder."""
    earlier = sorted({run["provider"] for run in ledger.runs()} - {service_name})
    if earlier:
        raise InputError(
            f"{display_path(out_dir)} holds jobs run on {' and '.join(earlier)}; this run would use "
            f"{service_name}: pass --provider {earlier[0]} to resume them, or --out another folder "
            "(--fresh starts this one over)"
        )


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas for the threads a run starts (fsync, table refresh, posters).

    Each thread otherwise gets an arena of its own that keeps the memory it freed: at 10,000
    jobs that was 25 MB of peak RSS. Same as MALLOC_ARENA_MAX=2, which glibc reads only at
    process start; the setting stays for the rest of the process. No effect (and no error) on
    other C libraries.
    """
    m_arena_max = -8  # from glibc's malloc.h
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(m_arena_max, arenas)


def _base_url_and_keys(
    service: services.Service, base_url_flag: str | None, accounts
) -> tuple[str, dict[str, str]]:
    """The API's base URL and each account's key (read from the variables run.accounts names)."""
    if not service.needs_key:
        return "", {account.name: SANDBOX_KEY for account in accounts}
    keys = {account.name: os.environ.get(account.key_env, "").strip() for account in accounts}
    missing = [account.key_env for account in accounts if not keys[account.name]]
    if len(missing) == 1:
        raise InputError(
            f"{missing[0]} is not set: export {missing[0]}=<your key> to use provider {service.name}"
        )
    if missing:
        raise InputError(
            f"{', '.join(missing)} are not set: export each (run.accounts names them) "
            f"to use provider {service.name}"
        )
    from_env = os.environ.get(service.base_url_env) if service.base_url_env else None
    base_url = (base_url_flag or from_env or service.base_url or "").rstrip("/")
    parts = urlsplit(base_url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname))
    if not parts.hostname or not secure:
        raise InputError(
            f"base URL {base_url!r} is not allowed; expected https://HOST (plain http only for localhost)"
        )
    return base_url, keys


def _start_sandbox(stack: ExitStack, sandbox_settings, out_dir: Path) -> str:
    """The embedded sandbox, keeping its generations next to the ledger so a rerun after a
    crash polls them by id, as it would the real service."""
    from ..sandbox import SandboxConfig, running_sandbox

    try:
        config = SandboxConfig.from_mapping(
            {
                "gen_time": sandbox_settings.gen_time,
                "concurrency": sandbox_settings.concurrency,
                "faults": sandbox_settings.faults,
                **({"models": sandbox_settings.models} if sandbox_settings.models is not None else {}),
            },
            state_dir=str(out_dir),
        )
    except ValueError as error:
        raise InputError(f"sandbox settings: {error}") from None
    return stack.enter_context(running_sandbox(config)).base_url


def _check_budget_before_start(
    ledger: Ledger, jobs: list[Job], budget: int | None, retry_uncertain: bool
) -> int:
    """The estimated credits of the jobs this run would submit; over the budget, nothing is sent.
    Nor when a budget is set and some job's model has no known price: the budget could not hold.
    That counts uncertain jobs too: one settled as never arrived is submitted again."""
    rows = ledger.rows_by_id()
    paying = to_pay(jobs, rows, retry_uncertain)
    paying_ids = {job.job_id for job in paying}
    maybe_resent = [
        job
        for job in jobs
        if job.job_id not in paying_ids
        and rows[job.job_id]["status"] == JobState.UNCERTAIN
        and not rows[job.job_id]["generation_id"]
    ]
    unpriced = [job for job in paying + maybe_resent if not job.price_known]
    if budget is not None and unpriced:
        models = {job.request.get("model") for job in unpriced}
        raise InputError(f"{unpriced_refusal(len(unpriced), models)}; nothing was sent")
    credits = sum(job.credits_estimate for job in paying)
    if budget is not None and credits > budget:
        raise BudgetError(
            f"the jobs still to run need about {credits:,} credits, over the budget of {budget:,} "
            "(run.budget or --budget); nothing was sent"
        )
    return credits


def _execute_on_ray(jobs, ledger, out_dir, settings, service, connection, request, assignment, store):
    from ..cluster import ClusterRequest, run_on_ray

    cluster = ClusterRequest(
        service.name,
        address=request.ray_address,
        shards=request.shards,
        retry_uncertain=request.retry_uncertain,
        quiet=request.quiet,
    )
    return run_on_ray(jobs, ledger, out_dir, settings, connection, cluster, assignment, store)


async def _execute(jobs, ledger, out_dir, settings, service, connection, request, store):
    run = settings.run
    options = SchedulerOptions(
        concurrency=run.concurrency,
        budget=run.budget,
        resubmit_failed=run.resubmit_failed,
        retry_uncertain=request.retry_uncertain,
    )
    video_dir = out_dir / "videos"
    async with open_scheduler(
        jobs,
        ledger,
        video_dir,
        run,
        connection,
        options,
        store=store,
        provider=service.provider(run.endpoint),
        # Where nothing is billed, a submit not in the logs at once is simply sent again.
        settle_grace=0.0 if service.resend_uncertain else run.settle_grace,
        request_id_token=ledger.request_id_token(),
    ) as scheduler:
        average = sum(j.credits_estimate for j in jobs) / max(len(jobs), 1)
        progress = Progress(scheduler.tally, choose_mode(request.quiet), average)
        work = asyncio.create_task(scheduler.run())
        helpers = [
            asyncio.create_task(progress.run()),
            asyncio.create_task(keep_results_fresh(ledger, out_dir, settings.output.formats)),
        ]
        interrupted = _install_interrupts(work, scheduler)
        try:
            await work
        except asyncio.CancelledError:
            pass
        finally:
            remove_stop_signals()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
    return scheduler, interrupted["count"] > 0


def _install_interrupts(work: asyncio.Task, scheduler: Scheduler) -> dict[str, int]:
    """First Ctrl-C (or SIGTERM, SIGHUP): stop submitting, finish what runs. Second: stop now."""
    state = {"count": 0}

    def first_or_second() -> None:
        state["count"] += 1
        if state["count"] == 1:
            scheduler.stop_submitting("interrupted")
            running = scheduler.tally.running + scheduler.tally.downloading
            print(
                f"\nInterrupted: no new submits. Finishing {running} generation(s) already paid for; "
                "press Ctrl-C again to exit now (a rerun resumes them).",
                file=sys.stderr,
                flush=True,
            )
        else:
            work.cancel()

    install_stop_signals(first_or_second)
    return state
