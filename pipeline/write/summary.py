"""What a run reports: its figures, the jobs that did not complete, and its exit code."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import EXIT_FAILED_JOBS, EXIT_INTERRUPTED, EXIT_OK, AbortError, one_line
from ..models import CREDITS_PER_USD
from ..read.manifest import display_path
from ..run.plan import format_seconds
from ..run.resume import ResumeCommand
from ..run.tally import Tally
from ..services import service
from ..states import JobState


@dataclass
class RunSummary:
    name: str
    provider: str
    out_dir: Path | str  # a URL when the run publishes to a store (output.dir)
    jobs: int
    tally: Tally
    wall_seconds: float
    exit_code: int
    tables: list[Path | str] = field(default_factory=list)
    stop_reason: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    recovered_uncertain: int = 0  # jobs an earlier run left mid-submit, now uncertain
    http: dict[str, int] = field(default_factory=dict)  # requests, retries, throttled (429s)...
    dataset: Path | str | None = None
    report: Path | str | None = None
    planned_credits: int = 0
    resume: ResumeCommand | None = None  # the command that resumes this folder

    @property
    def resume_shown(self) -> str:
        return self.resume.shown() if self.resume else "the same command"

    def as_dict(self) -> dict[str, Any]:
        tally = self.tally
        return {
            "name": self.name,
            "provider": self.provider,
            "out_dir": str(self.out_dir),
            "jobs": self.jobs,
            "completed": tally.completed,
            "failed": tally.failed,
            "uncertain": tally.uncertain,
            "already_done": tally.skipped,
            "resubmits": tally.resubmits,
            "credits_spent": round(tally.credits_spent),
            "credits_planned": self.planned_credits,
            "wall_seconds": round(self.wall_seconds, 2),
            "exit_code": self.exit_code,
            "stop_reason": self.stop_reason,
            "tables": [str(p) for p in self.tables],
            "dataset": str(self.dataset) if self.dataset else None,
            "report": str(self.report) if self.report else None,
            "failures": self.failures,
            "found_mid_submit": self.recovered_uncertain,
            "http": self.http,
            "resume_command": self.resume.shown() if self.resume else None,
        }


class Outcome(Protocol):
    """How the engine's work ended: the local Scheduler, or the Ray engine's ClusterOutcome."""

    tally: Tally
    abort: AbortError | None
    stop_reason: str | None


def summarise(settings, provider, out_dir, jobs, outcome: Outcome, interrupted, started, tables, ledger):
    """The run's outcome, and its exit code: 130 interrupted, 3 aborted, 1 jobs not completed
    (beyond run.max_failures, or left pending), else 0."""
    tally = outcome.tally
    rows = ledger.rows_by_id()
    failures = [
        {
            "job_id": job.job_id,
            "status": rows[job.job_id]["status"],
            "error": rows[job.job_id]["error_message"],
            "source": json.loads(rows[job.job_id]["labels"]).get("source"),
        }
        for job in jobs
        if rows[job.job_id]["status"] not in (JobState.COMPLETED, JobState.PENDING)
    ]
    max_failures = settings.run.max_failures or 0
    if interrupted:
        code = EXIT_INTERRUPTED
    elif outcome.abort is not None:
        code = outcome.abort.exit_code  # 3, or 4 when the machine refused (a full disk)
    elif len(failures) > max_failures or any(rows[j.job_id]["status"] == JobState.PENDING for j in jobs):
        code = EXIT_FAILED_JOBS
    else:
        code = EXIT_OK
    return RunSummary(
        name=settings.name,
        provider=provider,
        out_dir=out_dir,
        jobs=len(jobs),
        tally=tally,
        wall_seconds=time.monotonic() - started,
        exit_code=code,
        tables=tables,
        stop_reason=str(outcome.abort) if outcome.abort else outcome.stop_reason,
        failures=failures,
    )


def describe(summary: RunSummary) -> list[str]:
    """The end-of-run summary for a terminal."""
    tally = summary.tally
    earlier = tally.credits_spent - tally.budget_spent
    lines = [
        f"{summary.name}: {tally.completed} of {summary.jobs} completed, {tally.failed} failed, "
        f"{tally.uncertain} uncertain in {format_seconds(summary.wall_seconds)}"
        + (f" ({tally.skipped} were done before this run)" if tally.skipped else ""),
        f"Credits spent this run: {tally.budget_spent:,.0f} "
        + (f"of {summary.planned_credits:,} planned " if summary.planned_credits else "")
        # Generations an earlier run sent and this one finished were planned (and paid) by it.
        + (f"and {earlier:,.0f} for generations an earlier run sent " if earlier >= 1 else "")
        + f"(about ${tally.credits_spent / CREDITS_PER_USD:,.2f})"
        + (f"; the {summary.provider} charges nothing" if service(summary.provider).free else ""),
        f"Videos: {_shown(summary.out_dir, 'videos')}/",
    ]
    lines += [f"Table: {_shown(path)}" for path in summary.tables]
    if summary.dataset:
        lines.append(f"Dataset: {_shown(summary.dataset)}/ (videos + metadata.jsonl)")
    if summary.report:
        lines.append(f"Report: {_shown(summary.report)} (open it in a browser)")
    problems = [f for f in summary.failures if f["status"] != JobState.SUBMITTED]
    for failure in problems[:10]:
        # Cleaned when received; a ledger written by an older version may hold raw server text.
        error = failure["error"] or "no message"
        lines.append(one_line(f"  {failure['status']}: {failure['job_id']}: {error}"))
    if len(problems) > 10:
        lines.append(f"  ... and {len(problems) - 10} more (see the table)")
    still_running = len(summary.failures) - len(problems)
    if still_running:
        lines.append(
            f"{still_running} generation(s) were still running when the run stopped; they are recorded, "
            "and resuming polls them without submitting again."
        )
    if summary.recovered_uncertain:
        lines.append(
            f"{summary.recovered_uncertain} job(s) were found mid-submit from an earlier run that stopped "
            "abruptly: they are uncertain."
        )
    if tally.uncertain and service(summary.provider).resend_uncertain:
        lines.append(
            f"{tally.uncertain} job(s) lost their submit answer; the {summary.provider} is free, "
            "so a rerun sends them again."
        )
    elif tally.uncertain:
        lines.append(
            f"{tally.uncertain} job(s) are uncertain: their submit may have reached the service and may be "
            "billed. A rerun polls again those whose generation id is known; for the others, check the "
            "account, then submit them again with: "
            + (
                summary.resume.shown("--retry-uncertain")
                if summary.resume
                else "the same command and --retry-uncertain"
            )
        )
    if summary.exit_code == EXIT_INTERRUPTED:
        lines.append(f"Stopped. To resume: {summary.resume_shown}")
    return lines


def _shown(location: Path | str, *parts: str) -> str:
    """A local path as the user would type it; a URL (outputs in a store) as it is."""
    if isinstance(location, str):
        return "/".join((location.rstrip("/"), *parts))
    return display_path(location.joinpath(*parts))
