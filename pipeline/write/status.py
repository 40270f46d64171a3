"""`vidpipe status OUTPUT_DIR`: what a run (finished or still going) has done, from its ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models import credits_for
from ..read.manifest import display_path
from ..run.ledger import LEDGER_FILE, Ledger
from ..run.resume import ResumeCommand, legacy_command
from ..states import JobState

SHOWN_FAILURES = 20


@dataclass
class Status:
    out_dir: Path
    counts: dict[str, int]
    credits: float
    failures: list[dict[str, Any]] = field(default_factory=list)
    uncertain: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0  # jobs no longer in the manifest
    store: str | None = None  # where the run publishes its files, when output.dir is a URL
    planned: float = 0.0  # the estimates of the manifest's jobs (models.py), to set `credits` against

    @property
    def jobs(self) -> int:
        return sum(self.counts.values())

    @property
    def manifest(self) -> str | None:
        return self.runs[-1]["manifest"] if self.runs else None

    @property
    def resume(self) -> ResumeCommand | None:
        """The command that resumes this folder, as the last run recorded it."""
        if not self.runs:
            return None
        recorded = self.runs[-1].get("command")
        if recorded:
            return ResumeCommand.from_record(json.loads(recorded))
        return legacy_command(self.runs[-1]["manifest"])

    @property
    def running(self) -> bool:
        """The last run has not recorded its end: it is running now, or was killed."""
        return bool(self.runs) and self.runs[-1]["finished_at"] is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "store": self.store,
            "jobs": self.jobs,
            "counts": self.counts,
            "credits": round(self.credits),
            "credits_planned": round(self.planned),
            "failures": self.failures,
            "uncertain": self.uncertain,
            "runs": self.runs,
            "no_longer_in_manifest": self.dropped,
            "last_run_unfinished": self.running,
            "resume_command": self.resume.shown() if self.resume else None,
        }


def read_status(out_dir: Path) -> Status:
    path = out_dir / LEDGER_FILE
    if not path.is_file():
        raise InputError(
            f"{display_path(out_dir)}: no {LEDGER_FILE} here; expected the output folder of a run"
        )
    with Ledger(path, read_only=True) as ledger:
        frame = ledger.frame()
        runs = ledger.runs()
    current = frame[frame["in_manifest"] == 1]
    counts = {status: int(n) for status, n in current["status"].value_counts().items()}
    problem = current[current["error_message"].notna() & (current["status"] != JobState.UNCERTAIN)]
    uncertain = current[current["status"] == JobState.UNCERTAIN]
    columns = ["job_id", "status", "generation_id", "error_name", "error_message"]
    return Status(
        out_dir=out_dir,
        counts=dict(sorted(counts.items())),
        credits=float(frame["credits"].fillna(0).sum()),
        failures=_records(problem[columns]),
        uncertain=_records(uncertain[columns]),
        runs=runs,
        dropped=int((frame["in_manifest"] == 0).sum()),
        planned=float(sum(_estimate(request) for request in current["request"])),
    )


def _estimate(request_json: str) -> int:
    """A job's planned credits from its recorded request (0 for a model vidpipe cannot price)."""
    request = json.loads(request_json)
    try:
        return credits_for(request.get("model"), request.get("duration"), request.get("resolution")) or 0
    except (KeyError, TypeError, ValueError):
        return 0


def _records(frame) -> list[dict[str, Any]]:
    return [{k: (None if v != v else v) for k, v in row.items()} for row in frame.to_dict("records")]


def describe(status: Status) -> list[str]:
    counts = ", ".join(f"{n} {name}" for name, n in status.counts.items()) or "no jobs"
    lines = [f"{display_path(status.out_dir)}: {status.jobs} jobs: {counts}"]
    if status.store:
        lines.append(f"Outputs published to {status.store}; the ledger is here")
    planned = f" of {status.planned:,.0f} planned" if status.planned else ""
    lines.append(
        f"Credits recorded: {status.credits:,.0f}{planned} (about ${status.credits / 2_000_000:,.2f})"
    )
    if status.dropped:
        lines.append(
            f"{status.dropped} job(s) from earlier runs are no longer in the manifest (kept in the table)"
        )
    if status.runs:
        last = status.runs[-1]
        ended = (
            f"ended {last['finished_at']} with exit {last['exit_code']}"
            if last["finished_at"]
            else ("has not ended: it is running now, or was stopped abruptly")
        )
        lines.append(f"Runs: {len(status.runs)}; the last started {last['started_at']} and {ended}")
    for failure in status.failures[:SHOWN_FAILURES]:
        lines.append(f"  {failure['status']}: {failure['job_id']}: {failure['error_message']}")
    if len(status.failures) > SHOWN_FAILURES:
        lines.append(f"  ... and {len(status.failures) - SHOWN_FAILURES} more (see results.csv)")
    for job in status.uncertain[:SHOWN_FAILURES]:
        lines.append(f"  uncertain: {job['job_id']}: {job['error_message']}")
    resume = status.resume
    if resume:
        unfinished = sum(n for s, n in status.counts.items() if s != JobState.COMPLETED)
        if status.uncertain:
            lines.append(
                "Uncertain jobs may have been billed. After checking the account: "
                + resume.shown("--retry-uncertain")
            )
        if unfinished - len(status.uncertain) > 0:
            lines.append(f"To resume: {resume.shown()}")
    return lines
