"""The ledger: one SQLite row per job in the output folder, so a run can stop anywhere and resume.

Every state change is committed (WAL, synchronous=FULL: it survives a killed process and a
power cut) before the next network action for that job. The intent to submit is recorded
before the POST and the generation id right after its answer, so after a crash a job is either
known not sent (`pending`), known sent with its id (`submitted`), or honestly `uncertain`.

    pending --> submitting --> submitted --> generated --> completed
                    |              |  \\--> timed_out (polled again on the next run)
                    |              \\--> failed (the API said so; not billed, retried on a rerun)
                    \\--> uncertain (sent, answer lost: resubmitted only with --retry-uncertain)

Schema changes are named migrations, each applied with its record in one transaction.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

LEDGER_FILE = "ledger.sqlite"
LOCK_FILE = "ledger.lock"

PENDING = "pending"
SUBMITTING = "submitting"
SUBMITTED = "submitted"
GENERATED = "generated"
COMPLETED = "completed"
FAILED = "failed"
UNCERTAIN = "uncertain"
TIMED_OUT = "timed_out"
WITH_GENERATION = (SUBMITTED, GENERATED, TIMED_OUT)

MIGRATIONS: list[tuple[str, str]] = [
    (
        "create jobs and runs",
        """
        CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY,
            idx INTEGER NOT NULL,
            request TEXT NOT NULL,
            labels TEXT NOT NULL,
            status TEXT NOT NULL,
            generation_id TEXT,
            submits INTEGER NOT NULL DEFAULT 0,
            resubmits INTEGER NOT NULL DEFAULT 0,
            polls INTEGER NOT NULL DEFAULT 0,
            error_name TEXT,
            error_message TEXT,
            video_url TEXT,
            path TEXT,
            bytes INTEGER,
            sha256 TEXT,
            credits REAL,
            submitted_at TEXT,
            completed_at TEXT,
            generation_seconds REAL,
            updated_at TEXT NOT NULL,
            in_manifest INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX jobs_status ON jobs(status);
        CREATE TABLE runs (
            run_id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            manifest TEXT,
            provider TEXT,
            exit_code INTEGER
        );
        """,
    ),
    (
        # With several API keys (run.accounts), a generation is polled with the key that made it.
        "jobs remember their account",
        "ALTER TABLE jobs ADD COLUMN account TEXT",
    ),
    (
        # The exact command that resumes this folder (pipeline/resume.py), for `vidpipe status`.
        "runs remember their command",
        "ALTER TABLE runs ADD COLUMN command TEXT",
    ),
]


class RunLock:
    """An exclusive lock on an output folder for the length of a run.

    Two runs on one ledger would both read the same pending jobs and both pay for them. The
    lock is an flock, so it is released by the kernel when its process dies, even by SIGKILL.
    """

    def __init__(self, folder: Path):
        self.path = folder / LOCK_FILE
        self._handle = None

    def __enter__(self) -> RunLock:
        from .errors import AbortError

        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise AbortError(
                f"another vidpipe run ({holder}) is using {self.path.parent}; "
                "wait for it to finish, or give this run another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()


@dataclass
class GenerationFacts:
    """What the final poll said, kept until the job's last write."""

    video_url: str | None = None
    credits: float | None = None
    seconds: float | None = None
    polls: int = 0

    def values(self) -> tuple[Any, ...]:
        return (self.video_url, self.credits, self.seconds, self.polls)


# The columns GenerationFacts.values() fills, in its order.
_FACTS_SET = (
    "video_url = ?, credits = COALESCE(?, credits), "
    "generation_seconds = COALESCE(?, generation_seconds), polls = polls + ?"
)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Ledger:
    """The job states of one output folder."""

    def __init__(self, path: Path, *, read_only: bool = False):
        self.path = path
        if read_only:
            # For readers beside a running run (table refresh, status, export): no writes, no locks held.
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._migrate()

    @property
    def changes(self) -> tuple[int, int]:
        """Changes through this connection and commits by others (the Ray engine's ledger
        service): a cheap "did anything happen?", compared for equality."""
        return self._db.total_changes, self._db.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        for number, (_name, sql) in enumerate(MIGRATIONS[version:], start=version + 1):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in sql.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _write(self, sql: str, params: Iterable[Any] = ()) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(sql, tuple(params))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # --- runs ---------------------------------------------------------------------------

    def start_run(self, manifest: str, provider: str, command: Mapping[str, Any] | None = None) -> int:
        """Record a run's start; `command` is its ResumeCommand record."""
        self._db.execute("BEGIN IMMEDIATE")
        cursor = self._db.execute(
            "INSERT INTO runs (started_at, manifest, provider, command) VALUES (?, ?, ?, ?)",
            (now_iso(), manifest, provider, json.dumps(command) if command else None),
        )
        self._db.execute("COMMIT")
        return int(cursor.lastrowid)

    def finish_run(self, run_id: int, exit_code: int) -> None:
        self._write(
            "UPDATE runs SET finished_at = ?, exit_code = ? WHERE run_id = ?", (now_iso(), exit_code, run_id)
        )

    # --- jobs ---------------------------------------------------------------------------

    def sync_jobs(self, jobs: Iterable[tuple[str, int, Mapping[str, Any], Mapping[str, Any]]]) -> int:
        """Add new jobs as pending and mark which known jobs the manifest still has.

        `jobs` yields (job_id, index, request, labels). Returns how many jobs were new.
        """
        stamp = now_iso()
        rows = [
            (job_id, index, json.dumps(request, sort_keys=True), json.dumps(labels, sort_keys=True))
            for job_id, index, request, labels in jobs
        ]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            before = self._db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
            self._db.execute("UPDATE jobs SET in_manifest = 0")
            self._db.executemany(
                """
                INSERT INTO jobs (job_id, idx, request, labels, status, updated_at, in_manifest)
                VALUES (?, ?, ?, ?, 'pending', ?, 1)
                ON CONFLICT(job_id) DO UPDATE
                SET idx = excluded.idx, labels = excluded.labels, in_manifest = 1
                """,
                [(job_id, index, request, labels, stamp) for job_id, index, request, labels in rows],
            )
            after = self._db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return after - before

    def recover_interrupted_submits(self, job_ids: Iterable[str] | None = None) -> int:
        """Jobs caught between sending a submit and recording its answer become `uncertain`.

        `job_ids` limits this to some jobs (a restarted shard's own, while other shards run).
        """
        sql = (
            "UPDATE jobs SET status = ?, error_name = 'uncertain', error_message = ?, updated_at = ? "
            "WHERE status = ?"
        )
        params = (
            UNCERTAIN,
            "the run stopped after sending the submit and before recording its answer",
            now_iso(),
            SUBMITTING,
        )
        self._db.execute("BEGIN IMMEDIATE")
        try:
            if job_ids is None:
                count = self._db.execute(sql, params).rowcount
            else:
                count = sum(
                    self._db.execute(sql + " AND job_id = ?", (*params, job_id)).rowcount
                    for job_id in job_ids
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return count

    def assign_accounts(self, accounts: Mapping[str, str]) -> None:
        """Record which account (API key name) each job is, or will be, submitted with."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "UPDATE jobs SET account = ? WHERE job_id = ?",
                [(name, job) for job, name in accounts.items()],
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def mark_submitting(self, job_id: str, *, resubmit: bool = False) -> None:
        self._write(
            "UPDATE jobs SET status = ?, submits = submits + 1, resubmits = resubmits + ?, "
            "generation_id = NULL, error_name = NULL, error_message = NULL, video_url = NULL, updated_at = ? "
            "WHERE job_id = ?",
            (SUBMITTING, int(resubmit), now_iso(), job_id),
        )

    def mark_submitted(self, job_id: str, generation_id: str) -> None:
        stamp = now_iso()
        self._write(
            "UPDATE jobs SET status = ?, generation_id = ?, submitted_at = ?, updated_at = ? "
            "WHERE job_id = ?",
            (SUBMITTED, generation_id, stamp, stamp, job_id),
        )

    def mark_pending(self, job_id: str, polls: int = 0) -> None:
        self._write(
            "UPDATE jobs SET status = ?, error_name = NULL, error_message = NULL, polls = polls + ?, "
            "updated_at = ? WHERE job_id = ?",
            (PENDING, polls, now_iso(), job_id),
        )

    def record_facts(self, job_id: str, generation: GenerationFacts) -> None:
        """A paid generation's facts, without changing the job's status (a run stopping mid-download)."""
        self._write(f"UPDATE jobs SET {_FACTS_SET} WHERE job_id = ?", (*generation.values(), job_id))

    def mark_uncertain(self, job_id: str, message: str, polls: int = 0) -> None:
        self._set_error(job_id, UNCERTAIN, "uncertain", message, polls=polls)

    def mark_failed(
        self, job_id: str, name: str, message: str, credits: float | None = None, polls: int = 0
    ) -> None:
        self._set_error(job_id, FAILED, name, message, credits, polls)

    def mark_timed_out(self, job_id: str, message: str, polls: int = 0) -> None:
        self._set_error(job_id, TIMED_OUT, "timeout", message, polls=polls)

    def note_error(self, job_id: str, name: str, message: str) -> None:
        """Record an error on a job without changing its status."""
        self._write(
            "UPDATE jobs SET error_name = ?, error_message = ?, updated_at = ? WHERE job_id = ?",
            (name, message, now_iso(), job_id),
        )

    def _set_error(
        self, job_id: str, status: str, name: str, message: str, credits: float | None = None, polls: int = 0
    ) -> None:
        self._write(
            "UPDATE jobs SET status = ?, error_name = ?, error_message = ?, credits = COALESCE(?, credits), "
            "polls = polls + ?, updated_at = ? WHERE job_id = ?",
            (status, name, message, credits, polls, now_iso(), job_id),
        )

    def mark_completed(
        self, job_id: str, path: str, size: int, sha256: str, generation: GenerationFacts
    ) -> None:
        """The video is in place. One write for the whole end of the job: the generation's facts
        were kept in memory since its final poll (its id is in the ledger, so a crash in between
        costs one more poll, not money)."""
        stamp = now_iso()
        self._write(
            "UPDATE jobs SET status = ?, path = ?, bytes = ?, sha256 = ?, completed_at = ?, updated_at = ?, "
            f"{_FACTS_SET}, error_name = NULL, error_message = NULL WHERE job_id = ?",
            (COMPLETED, path, size, sha256, stamp, stamp, *generation.values(), job_id),
        )

    def mark_download_failed(self, job_id: str, message: str, generation: GenerationFacts) -> None:
        """The video exists (and is paid for) but could not be fetched: `generated`, for a rerun."""
        self._write(
            "UPDATE jobs SET status = ?, error_name = 'download', error_message = ?, updated_at = ?, "
            f"{_FACTS_SET} WHERE job_id = ?",
            (GENERATED, message, now_iso(), *generation.values(), job_id),
        )

    # --- reading ------------------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return dict(row) if row else None

    def rows_by_id(self, job_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        if job_ids is None:
            return {row["job_id"]: dict(row) for row in self._db.execute("SELECT * FROM jobs")}
        rows = (self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job,)).fetchone() for job in job_ids)
        return {row["job_id"]: dict(row) for row in rows if row is not None}

    def frame(self) -> pd.DataFrame:
        """Every job, as a DataFrame in manifest order (jobs no longer in the manifest last)."""
        return pd.read_sql_query("SELECT * FROM jobs ORDER BY in_manifest DESC, idx", self._db)

    def counts(self) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT status, COUNT(*) FROM jobs WHERE in_manifest = 1 GROUP BY status"
        ).fetchall()
        return {status: count for status, count in rows}

    def runs(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self._db.execute("SELECT * FROM runs ORDER BY run_id")]


def statuses_in(folder: Path) -> dict[str, str] | None:
    """job_id -> status of the run in `folder`, or None when no run has been there."""
    path = folder / LEDGER_FILE
    if not path.is_file():
        return None
    try:
        with Ledger(path, read_only=True) as ledger:
            return {job_id: row["status"] for job_id, row in ledger.rows_by_id().items()}
    except sqlite3.DatabaseError as error:
        from .errors import InputError

        raise InputError(f"{path}: not a vidpipe ledger ({error})") from None
