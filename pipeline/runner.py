"""`vidpipe run`: manifest -> job table -> ledger -> scheduler -> videos and the output table.

This module wires the pieces together and owns the run's lifecycle: where outputs go, which
service is called (starting the embedded sandbox when it is the provider), the budget check
before anything is sent, Ctrl-C, the periodic table refresh and the summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import re
import shutil
import signal
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from . import ledger as states
from .download import Downloader, is_loopback_host, target_path
from .errors import (
    BudgetError,
    InputError,
    VidpipeError,
)
from .export import export_dataset
from .http import ApiClient, RetryPolicy
from .images import data_uri, kind_of, local_image_path
from .jobs import Batch, load_batch
from .ledger import LEDGER_FILE, Ledger, RunLock
from .manifest import display_path
from .plan import credits_for
from .progress import Progress, choose_mode
from .providers import AimlApi
from .report import write_report
from .results import refresh_results, write_results
from .scheduler import Scheduler, SchedulerOptions
from .schema import REQUEST_FIELDS
from .settings import output_folder
from .steps import Job, StepOptions, Steps
from .summary import RunSummary, summarise
from .table import python_value
from .tally import Tally

DEFAULT_BASE_URL = "https://api.aimlapi.com"
DATASET_FOLDER = "dataset"
TABLE_REFRESH_S = 5.0
SANDBOX_KEY = "sandbox"


@dataclass
class RunRequest:
    """What the user asked for: the manifest and the flags that override it."""

    manifest: Path
    provider: str | None = None
    base_url: str | None = None
    out: Path | None = None
    concurrency: int | None = None
    budget: int | None = None
    limit: int | None = None
    max_failures: int | None = None
    fresh: bool = False
    retry_uncertain: bool = False
    endpoint: str | None = None
    quiet: bool = False


def run(request: RunRequest) -> RunSummary:
    _limit_malloc_arenas()
    batch = load_batch(request.manifest)
    settings = batch.settings.with_overrides(
        concurrency=request.concurrency,
        budget=request.budget,
        max_failures=request.max_failures,
        endpoint=request.endpoint,
    )
    provider = request.provider or settings.provider
    table = batch.table if request.limit is None else batch.table.head(request.limit)
    out_dir = output_folder(settings, request.out)
    video_dir = out_dir / "videos"
    api_key, base_url = _service(provider, request.base_url)
    jobs = [_job(row, settings.output.filename, video_dir) for row in table.to_dict("records")]
    video_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(out_dir):
        if request.fresh:
            _set_aside_ledger(out_dir)
        with Ledger(out_dir / LEDGER_FILE) as ledger, ExitStack() as stack:
            ledger.sync_jobs(_ledger_rows(table))
            recovered = ledger.recover_interrupted_submits()
            planned = _check_budget_before_start(ledger, jobs, settings.run.budget, request.retry_uncertain)
            if provider == "sandbox":
                base_url = _start_sandbox(stack, settings.sandbox)
            run_id = ledger.start_run(display_path(request.manifest), provider)
            started = time.monotonic()
            scheduler, interrupted = asyncio.run(
                _execute(jobs, ledger, out_dir, settings, base_url, api_key, request, batch)
            )
            tables = write_results(ledger, out_dir, settings.output.formats)
            summary = summarise(
                settings, provider, out_dir, jobs, scheduler, interrupted, started, tables, ledger
            )
            summary.recovered_uncertain = recovered
            summary.http = asdict(scheduler.steps.client.counters)
            summary.planned_credits = planned
            ledger.finish_run(run_id, summary.exit_code)
            # Before the ledger closes: its connection is the last and tidies the WAL files away.
            if settings.output.dataset:
                summary.dataset = out_dir / DATASET_FOLDER
                export_dataset(out_dir, summary.dataset)
            summary.report = _report(out_dir)
    return summary


def _report(out_dir: Path) -> Path | None:
    """The contact sheet; a run's outcome does not depend on it, so a failure is only a warning."""
    try:
        return write_report(out_dir)
    except (OSError, VidpipeError) as error:
        print(f"warning: report.html was not written: {error}", file=sys.stderr)
        return None


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


def _service(provider: str, base_url_flag: str | None) -> tuple[str, str]:
    if provider == "sandbox":
        return SANDBOX_KEY, ""
    key = os.environ.get("AIMLAPI_KEY", "").strip()
    if not key:
        raise InputError("AIMLAPI_KEY is not set: export AIMLAPI_KEY=<your key> to use provider aimlapi")
    base_url = (base_url_flag or os.environ.get("AIMLAPI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    parts = urlsplit(base_url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname))
    if not parts.hostname or not secure:
        raise InputError(
            f"base URL {base_url!r} is not allowed; expected https://HOST (plain http only for localhost)"
        )
    return key, base_url


def _start_sandbox(stack: ExitStack, sandbox_settings) -> str:
    from .sandbox import SandboxConfig, running_sandbox

    try:
        config = SandboxConfig.from_mapping(
            {
                "gen_time": sandbox_settings.gen_time,
                "concurrency": sandbox_settings.concurrency,
                "faults": sandbox_settings.faults,
            }
        )
    except ValueError as error:
        raise InputError(f"sandbox settings: {error}") from None
    return stack.enter_context(running_sandbox(config)).base_url


def _set_aside_ledger(out_dir: Path) -> None:
    """--fresh: keep the old ledger (it records what was paid for) but start a new one."""
    old = out_dir / LEDGER_FILE
    if old.exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            part = out_dir / (LEDGER_FILE + suffix)
            if part.exists():
                shutil.move(part, out_dir / f"{LEDGER_FILE}.{stamp}.bak{suffix}")


def _job(row: dict[str, Any], template: str, video_dir: Path) -> Job:
    request = {
        field: python_value(row[field]) for field in REQUEST_FIELDS if python_value(row[field]) is not None
    }
    filename = render_filename(template, row)
    target_path(video_dir, filename)  # refuses a name that would land outside the folder
    return Job(
        job_id=row["job_id"],
        request=request,
        filename=filename,
        credits_estimate=credits_for(row["model"], row["duration"]),
    )


def _ledger_rows(table: pd.DataFrame):
    for row in table.to_dict("records"):
        request = {field: python_value(row[field]) for field in REQUEST_FIELDS}
        labels = {key: python_value(row[key]) for key in ("id", "tags", "source", "seed_chosen", "sample")}
        yield row["job_id"], int(row["index"]), request, labels


def render_filename(template: str, row: dict[str, Any]) -> str:
    """The video's file name: template fields made safe for any file system."""
    values = {
        "job_id": row["job_id"],
        "id": row.get("id") or "job",
        "seed": row["seed"],
        "ratio": str(row["ratio"]).replace(":", "x"),
        "duration": row["duration"],
        "model": row["model"],
        "index": row["index"],
    }
    safe = {
        key: re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip(".-") or "x" for key, value in values.items()
    }
    return template.format(**safe)


def prepare_request(folder: Path):
    """Turn local image paths into data URIs at submit time (re-checked: files may have changed)."""

    def prepare(request: dict[str, Any]) -> dict[str, Any]:
        body = dict(request)
        for key in ("image_url", "last_image_url"):
            ref = body.get(key)
            if ref and kind_of(ref) == "file":
                body[key] = data_uri(local_image_path(ref, folder))
        return body

    return prepare


def _check_budget_before_start(
    ledger: Ledger, jobs: list[Job], budget: int | None, retry_uncertain: bool
) -> int:
    """The estimated credits of the jobs this run would submit; over the budget, nothing is sent."""
    rows = ledger.rows_by_id()
    to_submit = (states.PENDING, states.FAILED) + ((states.UNCERTAIN,) if retry_uncertain else ())
    to_pay = sum(job.credits_estimate for job in jobs if rows[job.job_id]["status"] in to_submit)
    if budget is not None and to_pay > budget:
        raise BudgetError(
            f"the jobs still to run need about {to_pay:,} credits, over the budget of {budget:,} "
            "(run.budget or --budget); nothing was sent"
        )
    return to_pay


async def _execute(jobs, ledger, out_dir, settings, base_url, api_key, request, batch: Batch):
    run = settings.run
    provider = AimlApi(run.endpoint)
    retry = RetryPolicy(attempts=run.retries + 1)
    rng = random.Random()
    async with (
        ApiClient(
            base_url, api_key, provider, requests_per_minute=run.requests_per_minute, retry=retry, rng=rng
        ) as client,
        Downloader() as downloader,
    ):
        steps = Steps(
            client,
            downloader,
            ledger,
            out_dir / "videos",
            StepOptions(
                poll_first_s=run.poll_interval, poll_cap_s=run.poll_max_interval, timeout_s=run.timeout
            ),
            prepare_request(batch.document.folder),
            Tally(),
            rng,
        )
        options = SchedulerOptions(
            concurrency=run.concurrency,
            budget=run.budget,
            resubmit_failed=run.resubmit_failed,
            retry_uncertain=request.retry_uncertain,
        )
        scheduler = Scheduler(jobs, steps, ledger, options)
        average = sum(j.credits_estimate for j in jobs) / max(len(jobs), 1)
        progress = Progress(scheduler.tally, choose_mode(request.quiet), average)
        work = asyncio.create_task(scheduler.run())
        helpers = [
            asyncio.create_task(progress.run()),
            asyncio.create_task(_refresh_table(ledger, out_dir, settings.output.formats)),
        ]
        interrupted = _install_interrupts(work, scheduler)
        try:
            await work
        except asyncio.CancelledError:
            pass
        finally:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
            asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
    return scheduler, interrupted["count"] > 0


def _install_interrupts(work: asyncio.Task, scheduler: Scheduler) -> dict[str, int]:
    """First Ctrl-C: stop submitting, finish what runs. Second (or SIGTERM): stop now."""
    state = {"count": 0}
    loop = asyncio.get_running_loop()

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

    def terminate() -> None:
        state["count"] += 2
        scheduler.stop_submitting("terminated")
        work.cancel()

    loop.add_signal_handler(signal.SIGINT, first_or_second)
    loop.add_signal_handler(signal.SIGTERM, terminate)
    return state


async def _refresh_table(ledger: Ledger, out_dir: Path, formats: tuple[str, ...]) -> None:
    """Rewrite the results table when the ledger has changed, off the event loop.

    A 100,000-job table takes seconds to write: the interval grows to four times the last
    write, so refreshing never takes more than a fifth of the run's time.
    """
    interval, seen = TABLE_REFRESH_S, ledger.changes
    while True:
        await asyncio.sleep(interval)
        if ledger.changes == seen:
            continue
        seen = ledger.changes
        started = time.monotonic()
        await asyncio.to_thread(refresh_results, out_dir, formats)
        interval = max(TABLE_REFRESH_S, 4 * (time.monotonic() - started))
