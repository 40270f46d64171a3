"""The ledger: one SQLite row per job in the output folder, so a run can stop anywhere and resume.

Every state change is committed before the next network action for that job. The intent to
submit is recorded before the POST and the generation id right after its answer, so after a
crash a job is either known not sent (`pending`), known sent with its id (`submitted`), or
honestly `uncertain`.

    pending --> submitting --> submitted --> generated --> completed
                    |              |  \\--> timed_out (polled again on the next run)
                    |              \\--> failed (the API said so; not billed, retried on a rerun)
                    \\--> uncertain (sent, answer lost: resubmitted only with --retry-uncertain)

Durability. Every commit survives a killed process (WAL: it is in the operating system's hands
when the call returns). Only the commits that guard money also wait for the disk (an fsync,
`synchronous=FULL`), so they survive a power cut or an OS crash too: the intent to submit
(`mark_submitting`, before the POST leaves), the generation id (`mark_submitted`, right after the
answer), a ledger rebuilt from its table (`restore_jobs`) and the schema's migrations. Every other
commit (`synchronous=NORMAL`) reaches the disk with the next synced one or checkpoint. A power
cut may roll back the latest of those, never one from before a synced commit (syncing the WAL
syncs all written before it), and what it undoes costs no money: each job falls back to where
its last synced commit left it, `submitting` (the rerun holds it as `uncertain`: nothing is
resent without --retry-uncertain) or `submitted` (its id is polled again and its video fetched
again), with the poll counts and credits asked for again; jobs, accounts and runs not yet
carried by a synced commit were not submitted, and the rerun records them again. The disk's
wait is milliseconds a commit: during a run the steps commit the intent and the id at once
(`synced=False`) and wait for the disk with `wait_for_disk`, an fdatasync of the WAL in a worker
thread, before the POST leaves and before the id is polled, so the event loop goes on serving
other jobs meanwhile (with every commit synced on the loop's thread, a 120-job run's loop stood
still 0.7 to 2 s).

Schema changes are named migrations (`MIGRATIONS`), each applied once with its record in the
`migrations` table, in one transaction, whenever the ledger is opened for writing.

What SQLite says when the machine refuses (a full disk, a read-only folder, a lock held by another
program, a damaged file) is translated here, in `_refusals`, into one-line
EnvironmentRefusedErrors: every read and write of the ledger goes through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import AbortError, EnvironmentRefusedError, LedgerDamagedError, one_line, refused
from ..states import JobState

LEDGER_FILE = "ledger.sqlite"
LOCK_FILE = "ledger.lock"
# Opening waits this long for a lock held by another program: a lock that outlasts it is
# reported at once, instead of after the 30 s every later write waits.
OPEN_WAIT_S = 1.0
WRITE_WAIT_S = 30.0
REBUILD_HINT = (
    "restore it from a backup, or set it aside: vidpipe run MANIFEST --rebuild-ledger rebuilds it "
    "from results.jsonl (generation ids are polled, not resent), --fresh starts over (and pays again)"
)


@dataclass(frozen=True)
class Migration:
    """One named change to the ledger's schema: its statements run in order, in one transaction
    with the record that it was applied (a row in `migrations`), so it happens once and wholly."""

    name: str
    statements: tuple[str, ...]


# In the order they are applied. A migration is never edited or removed once released (ledgers
# out there have recorded it by name): a change is a new one at the end.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "create jobs and runs",
        (
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
            )
            """,
            "CREATE INDEX jobs_status ON jobs(status)",
            """
            CREATE TABLE runs (
                run_id INTEGER PRIMARY KEY,
                started_at TEXT NOT NULL,
                finished_at TEXT,
                manifest TEXT,
                provider TEXT,
                exit_code INTEGER
            )
            """,
        ),
    ),
    # With several API keys (run.accounts), a generation is polled with the key that made it.
    Migration("jobs remember their account", ("ALTER TABLE jobs ADD COLUMN account TEXT",)),
    # The exact command that resumes this folder (pipeline/run/resume.py), for `vidpipe status`.
    Migration("runs remember their command", ("ALTER TABLE runs ADD COLUMN command TEXT",)),
    # The automatic checks of a job's video (pipeline/write/qc.py): passed or failed, and why
    # (a JSON list of lines). Empty for a video not checked yet (`vidpipe qc` checks it).
    Migration(
        "jobs remember their checks",
        ("ALTER TABLE jobs ADD COLUMN qc TEXT", "ALTER TABLE jobs ADD COLUMN qc_problems TEXT"),
    ),
    # Each submit attempt's X-Client-Request-Id and when it left, so a maybe-sent one is looked up
    # in the service's usage logs (settle.py); `settled` says how the last such lookup ended. The
    # token makes this folder's ids its own (request_ids.py): drawn here, once.
    Migration(
        "jobs remember their client request ids",
        (
            "ALTER TABLE jobs ADD COLUMN client_request_id TEXT",
            "ALTER TABLE jobs ADD COLUMN sent_at TEXT",
            "ALTER TABLE jobs ADD COLUMN settled TEXT",
            "CREATE TABLE folder (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "INSERT INTO folder (name, value) VALUES ('request_id_token', lower(hex(randomblob(6))))",
        ),
    ),
)

# Where a ledger records the migrations applied to it, by name.
_MIGRATIONS_TABLE = "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"


# The columns of a job row that the results table keeps, so a lost ledger can be rebuilt from it.
RESTORED = (
    "job_id", "idx", "request", "labels", "status", "generation_id", "submits", "resubmits", "polls",
    "error_name", "error_message", "video_url", "path", "bytes", "sha256", "credits", "submitted_at",
    "completed_at", "generation_seconds", "updated_at", "in_manifest", "account", "qc", "qc_problems",
)  # fmt: skip


class RunLock:
    """An exclusive lock on an output folder for the length of a run.

    Two runs on one ledger would both read the same pending jobs and both pay for them. The
    lock is an flock, so it is released by the kernel when its process dies, even by SIGKILL.
    """

    def __init__(self, folder: Path):
        self.path = folder / LOCK_FILE
        self._handle = None

    def __enter__(self) -> RunLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+")
        except OSError as error:
            raise refused(
                self.path, error, "make the folder writable, or give this run another --out"
            ) from None
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


@dataclass(frozen=True)
class Checks:
    """A video's checks as the ledger keeps them: `passed` or `failed`, and the problems."""

    qc: str
    problems: tuple[str, ...] = ()

    def values(self) -> tuple[str, str]:
        return (self.qc, json.dumps(list(self.problems)))


# The columns GenerationFacts.values() fills, in its order.
_FACTS_SET = (
    "video_url = ?, credits = COALESCE(?, credits), "
    "generation_seconds = COALESCE(?, generation_seconds), polls = polls + ?"
)


def _sync_folder(folder: Path) -> None:
    """The folder's entries on the disk (a new file's name survives a power cut), as SQLite does
    for a new WAL when it syncs one itself."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Ledger:
    """The job states of one output folder."""

    def __init__(self, path: Path, *, read_only: bool = False):
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._commits = 0  # commits so far, and how many of them are known to be on the disk:
        self._on_disk = 0  # one wait for the disk covers every commit made before it started
        self._syncing: asyncio.Future[None] | None = None
        self._synced = False  # the connection's synchronous level: FULL (True) or NORMAL
        self._wal_synced: int | None = None  # the inode of the WAL whose folder entry is on disk
        try:
            self._open(read_only)
        except BaseException:
            if self._db is not None:
                self._db.close()
            raise

    def _open(self, read_only: bool) -> None:
        path = self.path
        with _refusals(path):
            if read_only:
                # For readers beside a running run (table refresh, status, export): no writes, no locks held.
                self._db = sqlite3.connect(
                    f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=OPEN_WAIT_S
                )
                self._db.row_factory = sqlite3.Row
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(path, isolation_level=None, timeout=OPEN_WAIT_S)
                self._db.row_factory = sqlite3.Row
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._migrate()
            self._check_is_a_ledger()
            self._db.execute(f"PRAGMA busy_timeout = {int(WRITE_WAIT_S * 1000)}")

    def _check_is_a_ledger(self) -> None:
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if not {"job_id", "status", "generation_id"} <= columns:
            raise LedgerDamagedError(
                f"{self.path}: not a vidpipe ledger (it has no jobs table); {REBUILD_HINT}"
            )

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

    @contextlib.contextmanager
    def _transaction(self, *, synced: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE); rolled back on any error.

        `synced`: the commit returns only once it, and every commit before it, is on the disk
        (see the module doc for which ones are).
        """
        with _refusals(self.path):
            if synced != self._synced:  # outside the transaction, so its COMMIT goes by it
                self._db.execute(f"PRAGMA synchronous = {'FULL' if synced else 'NORMAL'}")
                self._synced = synced
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
                self._commits += 1
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back by itself (a full disk)
                    self._db.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        """Apply the migrations this ledger has not recorded, each in its own transaction.

        A ledger made before migrations had names counted them in `PRAGMA user_version`: its
        first that many are recorded as applied. user_version still counts them, so an older
        vidpipe opening a newer ledger finds its own migrations done.
        """
        with self._transaction() as db:  # the write lock is free now, or the run stops here
            db.execute(_MIGRATIONS_TABLE)
            applied = [row[0] for row in db.execute("SELECT name FROM migrations")]
            if not applied:
                by_position = db.execute("PRAGMA user_version").fetchone()[0]
                applied = [migration.name for migration in MIGRATIONS[:by_position]]
                db.executemany(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
                    [(name, now_iso()) for name in applied],
                )
        for migration in MIGRATIONS:
            if migration.name not in applied:
                self._apply(migration, len(applied) + 1)
                applied.append(migration.name)

    def _apply(self, migration: Migration, count: int) -> None:
        try:
            with self._transaction(synced=True) as db:
                for statement in migration.statements:
                    db.execute(statement)
                db.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (migration.name, now_iso())
                )
                db.execute(f"PRAGMA user_version = {count}")
        except sqlite3.Error as error:  # what _refusals did not translate: the schema is not ours
            raise LedgerDamagedError(
                f"{self.path}: cannot apply the ledger change {migration.name!r} "
                f"({one_line(str(error))}); the ledger is left as it was; {REBUILD_HINT}"
            ) from None

    def _write(self, sql: str, params: Iterable[Any] = (), *, synced: bool = False) -> None:
        with self._transaction(synced=synced) as db:
            db.execute(sql, tuple(params))

    def _one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        """The first row of a query (no context manager: this is the hot path of every step)."""
        try:
            return self._db.execute(sql, tuple(params)).fetchone()
        except sqlite3.Error as error:
            raise (_refusal(self.path, error) or error) from None

    def _read(self, sql: str, params: Iterable[Any] = ()) -> Iterator[sqlite3.Row]:
        """The rows of a query, streamed (100,000 jobs are not held twice)."""
        with _refusals(self.path):
            yield from self._db.execute(sql, tuple(params))

    # --- runs ---------------------------------------------------------------------------

    def start_run(self, manifest: str, provider: str, command: Mapping[str, Any] | None = None) -> int:
        """Record a run's start; `command` is its ResumeCommand record."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (started_at, manifest, provider, command) VALUES (?, ?, ?, ?)",
                (now_iso(), manifest, provider, json.dumps(command) if command else None),
            )
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
        with self._transaction() as db:
            before = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
            db.execute("UPDATE jobs SET in_manifest = 0")
            db.executemany(
                """
                INSERT INTO jobs (job_id, idx, request, labels, status, updated_at, in_manifest)
                VALUES (?, ?, ?, ?, 'pending', ?, 1)
                ON CONFLICT(job_id) DO UPDATE
                SET idx = excluded.idx, labels = excluded.labels, in_manifest = 1
                """,
                [(job_id, index, request, labels, stamp) for job_id, index, request, labels in rows],
            )
            after = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        return after - before

    def restore_jobs(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert whole job rows (`RESTORED` columns): a lost ledger rebuilt from the results table."""
        values = [tuple(row.get(column) for column in RESTORED) for row in rows]
        with self._transaction(synced=True) as db:  # generation ids, once
            db.executemany(
                f"INSERT INTO jobs ({', '.join(RESTORED)}) VALUES ({', '.join('?' * len(RESTORED))})", values
            )
        return len(values)

    def recover_interrupted_submits(self, job_ids: Iterable[str] | None = None) -> int:
        """Jobs caught between sending a submit and recording its answer become `uncertain`.

        `job_ids` limits this to some jobs (a restarted shard's own, while other shards run).
        """
        sql = (
            "UPDATE jobs SET status = ?, error_name = 'uncertain', error_message = ?, updated_at = ? "
            "WHERE status = ?"
        )
        params = (
            JobState.UNCERTAIN,
            "the run stopped after sending the submit and before recording its answer",
            now_iso(),
            JobState.SUBMITTING,
        )
        with self._transaction() as db:
            if job_ids is None:
                count = db.execute(sql, params).rowcount
            else:
                count = sum(
                    db.execute(sql + " AND job_id = ?", (*params, job_id)).rowcount for job_id in job_ids
                )
        return count

    def assign_accounts(self, accounts: Mapping[str, str]) -> None:
        """Record which account (API key name) each job is, or will be, submitted with."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE jobs SET account = ? WHERE job_id = ?",
                [(name, job) for job, name in accounts.items()],
            )

    def mark_submitting(
        self,
        job_id: str,
        *,
        resubmit: bool = False,
        synced: bool = True,
        client_request_id: str | None = None,
    ) -> None:
        """`synced=False`: the caller waits for the disk itself, off the event loop (wait_for_disk).
        `client_request_id` is the attempt's X-Client-Request-Id, recorded with when it left."""
        stamp = now_iso()
        self._write(
            "UPDATE jobs SET status = ?, submits = submits + 1, resubmits = resubmits + ?, "
            "generation_id = NULL, error_name = NULL, error_message = NULL, video_url = NULL, "
            "updated_at = ?, client_request_id = ?, sent_at = ? WHERE job_id = ?",
            (JobState.SUBMITTING, int(resubmit), stamp, client_request_id, stamp, job_id),
            synced=synced,
        )

    def request_id_token(self) -> str:
        """This folder's part of every client request id (request_ids.py)."""
        row = self._one("SELECT value FROM folder WHERE name = 'request_id_token'")
        return row[0]

    def mark_settled_found(self, job_id: str, generation_id: str) -> None:
        """The service's logs show the maybe-sent attempt arrived: its generation is polled, not resent."""
        stamp = now_iso()
        self._write(
            "UPDATE jobs SET status = ?, generation_id = ?, settled = 'found', error_name = NULL, "
            "error_message = NULL, submitted_at = COALESCE(submitted_at, sent_at), updated_at = ? "
            "WHERE job_id = ?",
            (JobState.SUBMITTED, generation_id, stamp, job_id),
            synced=True,
        )

    def mark_settled_not_arrived(self, job_id: str) -> None:
        """No row of the attempt in the logs past the grace period: it never arrived (pending)."""
        self._write(
            "UPDATE jobs SET status = ?, settled = 'not_arrived', error_name = NULL, error_message = NULL, "
            "updated_at = ? WHERE job_id = ?",
            (JobState.PENDING, now_iso(), job_id),
        )

    def mark_submitted(self, job_id: str, generation_id: str, *, synced: bool = True) -> None:
        stamp = now_iso()
        self._write(
            "UPDATE jobs SET status = ?, generation_id = ?, submitted_at = ?, updated_at = ? "
            "WHERE job_id = ?",
            (JobState.SUBMITTED, generation_id, stamp, stamp, job_id),
            synced=synced,
        )

    def sync_to_disk(self) -> None:
        """Wait until every commit so far is on the disk: the WAL file's fdatasync, which is what
        a synced commit does, on a descriptor of its own, so a worker thread may call it while
        the event loop's thread goes on committing (the connection is not touched)."""
        wal = Path(f"{self.path}-wal")
        try:
            descriptor = os.open(wal, os.O_RDONLY)
        except FileNotFoundError:  # nothing written since the last checkpoint removed it
            return
        except OSError as error:
            raise refused(wal, error, "the ledger cannot be made durable") from None
        try:
            getattr(os, "fdatasync", os.fsync)(descriptor)
            inode = os.fstat(descriptor).st_ino
            if inode != self._wal_synced:  # a new WAL: its entry in the folder must last too
                _sync_folder(wal.parent)
                self._wal_synced = inode
        except OSError as error:
            raise refused(wal, error, "the ledger cannot be made durable") from None
        finally:
            os.close(descriptor)

    async def wait_for_disk(self) -> None:
        """sync_to_disk, off the event loop: the commits before it (mark_submitting or
        mark_submitted with synced=False) become as durable as synced ones, while other jobs'
        requests go on. Jobs waiting together share one sync (a group commit): a wave of 20
        submits is one trip to a worker thread, not 20 queued behind each other."""
        wanted = self._commits
        while self._on_disk < wanted:
            if self._syncing is None:
                self._syncing = asyncio.ensure_future(self._sync_commits(self._commits))
            await asyncio.shield(self._syncing)  # a waiter cancelled leaves the others their sync

    async def _sync_commits(self, made: int) -> None:
        try:
            await asyncio.to_thread(self.sync_to_disk)
            self._on_disk = max(self._on_disk, made)
        finally:
            self._syncing = None

    def mark_pending(self, job_id: str, polls: int = 0) -> None:
        self._write(
            "UPDATE jobs SET status = ?, error_name = NULL, error_message = NULL, polls = polls + ?, "
            "updated_at = ? WHERE job_id = ?",
            (JobState.PENDING, polls, now_iso(), job_id),
        )

    def record_facts(self, job_id: str, generation: GenerationFacts) -> None:
        """A paid generation's facts, without changing the job's status (a run stopping mid-download)."""
        self._write(f"UPDATE jobs SET {_FACTS_SET} WHERE job_id = ?", (*generation.values(), job_id))

    def mark_uncertain(self, job_id: str, message: str, polls: int = 0) -> None:
        self._set_error(job_id, JobState.UNCERTAIN, "uncertain", message, polls=polls)

    def mark_failed(
        self, job_id: str, name: str, message: str, credits: float | None = None, polls: int = 0
    ) -> None:
        self._set_error(job_id, JobState.FAILED, name, message, credits, polls)

    def mark_timed_out(self, job_id: str, message: str, polls: int = 0) -> None:
        self._set_error(job_id, JobState.TIMED_OUT, "timeout", message, polls=polls)

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
        self,
        job_id: str,
        path: str,
        size: int,
        sha256: str,
        generation: GenerationFacts,
        checks: Checks | None = None,
    ) -> None:
        """The video is in place. One write for the whole end of the job: the generation's facts
        were kept in memory since its final poll (its id is in the ledger, so a crash in between
        costs one more poll, not money), and its checks come with it."""
        stamp = now_iso()
        qc, problems = checks.values() if checks else (None, None)
        self._write(
            "UPDATE jobs SET status = ?, path = ?, bytes = ?, sha256 = ?, completed_at = ?, updated_at = ?, "
            f"{_FACTS_SET}, error_name = NULL, error_message = NULL, qc = ?, qc_problems = ? "
            "WHERE job_id = ?",
            (
                JobState.COMPLETED,
                path,
                size,
                sha256,
                stamp,
                stamp,
                *generation.values(),
                qc,
                problems,
                job_id,
            ),
        )

    def record_checks(self, results: Mapping[str, Checks]) -> None:
        """The checks of completed jobs' videos (`vidpipe qc`), in one transaction; the status
        stays: a video that fails its checks was still generated and paid for."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE jobs SET qc = ?, qc_problems = ?, updated_at = ? WHERE job_id = ?",
                [(*checks.values(), now_iso(), job_id) for job_id, checks in results.items()],
            )

    def mark_download_failed(self, job_id: str, message: str, generation: GenerationFacts) -> None:
        """The video exists (and is paid for) but could not be fetched: `generated`, for a rerun."""
        self._write(
            "UPDATE jobs SET status = ?, error_name = 'download', error_message = ?, updated_at = ?, "
            f"{_FACTS_SET} WHERE job_id = ?",
            (JobState.GENERATED, message, now_iso(), *generation.values(), job_id),
        )

    # --- reading ------------------------------------------------------------------------

    def job(self, job_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        return dict(row) if row else None

    def rows_by_id(self, job_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        if job_ids is None:
            return {row["job_id"]: dict(row) for row in self._read("SELECT * FROM jobs")}
        found = (self._one("SELECT * FROM jobs WHERE job_id = ?", (job,)) for job in job_ids)
        return {row["job_id"]: dict(row) for row in found if row is not None}

    def frame(self) -> pd.DataFrame:
        """Every job, as a DataFrame in manifest order (jobs no longer in the manifest last)."""
        with _refusals(self.path):
            try:
                return pd.read_sql_query("SELECT * FROM jobs ORDER BY in_manifest DESC, idx", self._db)
            except pd.errors.DatabaseError as error:  # pandas wraps what SQLite said
                raise error.__cause__ or error from None

    def job_count(self) -> int:
        return self._one("SELECT COUNT(*) FROM jobs")[0]

    def counts(self) -> dict[str, int]:
        rows = self._read("SELECT status, COUNT(*) FROM jobs WHERE in_manifest = 1 GROUP BY status")
        return {status: count for status, count in rows}

    def runs(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self._read("SELECT * FROM runs ORDER BY run_id")]


# SQLite's primary result codes for what the machine refused, and what a user does about each.
_SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 10, 11, 13, 14, 26
# Python 3.10's sqlite3 errors carry no code (sqlite_errorcode is 3.11+): SQLite's own words
# for each (sqlite3_errstr) say it instead.
_CODE_OF_MESSAGE = (
    ("access permission denied", _SQLITE_PERM),
    ("database is locked", _SQLITE_BUSY),
    ("database table is locked", _SQLITE_LOCKED),
    ("readonly database", _SQLITE_READONLY),
    ("disk i/o error", _SQLITE_IOERR),
    ("malformed", _SQLITE_CORRUPT),
    ("database or disk is full", _SQLITE_FULL),
    ("unable to open database file", _SQLITE_CANTOPEN),
    ("file is not a database", _SQLITE_NOTADB),
)


def _code_of(error: sqlite3.Error) -> int:
    """SQLite's primary result code of `error` (0 when it names none)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF
    said = str(error).lower()
    return next((code for words, code in _CODE_OF_MESSAGE if words in said), 0)


def _refusal(path: Path, error: sqlite3.Error) -> EnvironmentRefusedError | None:
    """The one line for a refusal SQLite reported on the ledger at `path`; None for anything else."""
    code = _code_of(error)
    said = one_line(str(error))
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        advice = (
            f"locked by another program (not a vidpipe run: those hold {LOCK_FILE}); close what has it "
            "open (an sqlite3 shell, a database browser) and run again"
        )
    elif code in (_SQLITE_READONLY, _SQLITE_PERM):
        advice = f"cannot be written ({said}); make {path.parent} writable, or give this run another --out"
    elif code == _SQLITE_FULL:
        advice = (
            "the disk is full; free some space and run the same command again (what was recorded is kept)"
        )
    elif code == _SQLITE_IOERR:
        advice = (
            f"the disk refused a read or write ({said}); check that it is not full or failing, then run again"
        )
    elif code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return LedgerDamagedError(f"{path}: damaged, not a readable ledger ({said}); {REBUILD_HINT}")
    elif code == _SQLITE_CANTOPEN:
        advice = f"cannot be opened ({said}); check that {path.parent} exists and is writable"
    else:
        return None
    return EnvironmentRefusedError(f"{path}: {advice}")


@contextlib.contextmanager
def _refusals(path: Path) -> Iterator[None]:
    """Turn what SQLite says when the machine refuses into one-line EnvironmentRefusedErrors."""
    try:
        yield
    except sqlite3.Error as error:
        translated = _refusal(path, error)
        if translated is None:
            raise
        raise translated from None
    except OSError as error:  # creating the ledger's folder
        raise refused(path.parent, error, "make it writable, or give this run another --out") from None


def statuses_in(folder: Path) -> dict[str, str] | None:
    """job_id -> status of the run in `folder`, or None when no run has been there."""
    path = folder / LEDGER_FILE
    if not path.is_file():
        return None
    with Ledger(path, read_only=True) as ledger:
        return {job_id: row["status"] for job_id, row in ledger.rows_by_id().items()}
