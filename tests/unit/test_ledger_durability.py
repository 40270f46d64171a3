"""Which ledger commits wait for the disk (pipeline/run/ledger.py, "Durability"): the intent to
submit and the generation id do, so they survive a power cut; every commit survives a killed
process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.run.ledger import LEDGER_FILE, MIGRATIONS, GenerationFacts, Ledger

REPO = Path(__file__).resolve().parents[2]
FACTS = GenerationFacts("https://v", 8.0, 1.0, 2)
ROW = {"job_id": "r", "idx": 9, "request": "{}", "labels": "{}", "status": "submitted", "submits": 1,
       "resubmits": 0, "polls": 0, "generation_id": "gen-r", "updated_at": "then", "in_manifest": 1}  # fmt: skip

# Every write a run makes, in an order a run could make them.
WRITES: list[tuple[str, Callable[[Ledger], object]]] = [
    ("sync_jobs", lambda ledger: ledger.sync_jobs([("a", 0, {}, {}), ("b", 1, {}, {})])),
    ("assign_accounts", lambda ledger: ledger.assign_accounts({"a": "main"})),
    ("recover_interrupted_submits", lambda ledger: ledger.recover_interrupted_submits()),
    ("start_run", lambda ledger: ledger.start_run("m.yaml", "sandbox")),
    ("mark_submitting", lambda ledger: ledger.mark_submitting("a")),
    ("mark_submitted", lambda ledger: ledger.mark_submitted("a", "gen-a")),
    ("record_facts", lambda ledger: ledger.record_facts("a", FACTS)),
    ("mark_download_failed", lambda ledger: ledger.mark_download_failed("a", "HTTP 500", FACTS)),
    ("mark_completed", lambda ledger: ledger.mark_completed("a", "v/a.mp4", 1, "0" * 64, FACTS)),
    ("note_error", lambda ledger: ledger.note_error("a", "unexpected", "late")),
    ("mark_pending", lambda ledger: ledger.mark_pending("b")),
    ("mark_failed", lambda ledger: ledger.mark_failed("b", "http_400", "refused")),
    ("mark_timed_out", lambda ledger: ledger.mark_timed_out("b", "slow")),
    ("mark_uncertain", lambda ledger: ledger.mark_uncertain("b", "lost")),
    ("restore_jobs", lambda ledger: ledger.restore_jobs([ROW])),
    ("finish_run", lambda ledger: ledger.finish_run(1, 0)),
]
SYNCED = {"mark_submitting", "mark_submitted", "restore_jobs"}


def levels_at_commits(statements: list[str], level: str) -> list[str]:
    """The synchronous level each COMMIT in SQLite's trace of its statements ran under."""
    levels = []
    for statement in statements:
        if statement.upper().startswith("PRAGMA SYNCHRONOUS"):
            level = statement.split("=")[1].strip().upper()
        elif statement.upper() == "COMMIT":
            levels.append(level)
    return levels


def test_only_the_commits_that_guard_money_wait_for_the_disk(tmp_path: Path):
    """What SQLite was told at each COMMIT, read from its own trace of the statements it ran:
    synchronous FULL (an fsync before the call returns) exactly for the money's writes."""
    with Ledger(tmp_path / LEDGER_FILE) as ledger:
        statements: list[str] = []
        ledger._db.set_trace_callback(statements.append)
        level = {0: "OFF", 1: "NORMAL", 2: "FULL"}[ledger._db.execute("PRAGMA synchronous").fetchone()[0]]
        at_commit = {}
        for name, write in WRITES:
            statements.clear()
            write(ledger)
            commits = levels_at_commits(statements, level)
            assert len(commits) == 1, name  # one transaction per write
            at_commit[name] = level = commits[0]
    assert at_commit == {name: "FULL" if name in SYNCED else "NORMAL" for name, _ in WRITES}


def test_each_migration_waits_for_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    statements: list[str] = []
    original = Ledger._migrate

    def traced(ledger: Ledger) -> None:
        ledger._db.set_trace_callback(statements.append)
        original(ledger)

    monkeypatch.setattr(Ledger, "_migrate", traced)
    Ledger(tmp_path / LEDGER_FILE).close()
    # The first transaction creates the migrations table; then one per migration.
    assert levels_at_commits(statements, "NORMAL") == ["NORMAL"] + ["FULL"] * len(MIGRATIONS)


def test_a_commit_that_did_not_wait_for_the_disk_survives_a_killed_process(tmp_path: Path):
    """A job's end is not synced; SIGKILL right after it (no close, no checkpoint) loses nothing."""
    path = tmp_path / LEDGER_FILE
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from pipeline.run.ledger import GenerationFacts, Ledger
        ledger = Ledger(Path({str(path)!r}))
        ledger.sync_jobs([("a", 0, {{}}, {{}})])
        ledger.mark_submitting("a")
        ledger.mark_submitted("a", "gen-a")
        ledger.mark_completed("a", "v/a.mp4", 7, "0" * 64, GenerationFacts("https://v", 8.0, 1.0, 2))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    killed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / f"{LEDGER_FILE}-wal").stat().st_size > 0  # the commits were still in the WAL
    with Ledger(path, read_only=True) as ledger:
        job = ledger.job("a")
    assert (job["status"], job["generation_id"], job["bytes"], job["credits"]) == (
        "completed",
        "gen-a",
        7,
        8.0,
    )
