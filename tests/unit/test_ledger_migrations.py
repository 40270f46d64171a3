"""The ledger's named migrations (pipeline/run/ledger.py), as sqlite_utils/migrations.py does them:
each applied once, with its record, in one transaction, whenever a ledger is opened; ledgers made
before the names (counted by `PRAGMA user_version`) migrate without noticing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pipeline.errors import LedgerDamagedError
from pipeline.run import ledger as ledger_module
from pipeline.run.ledger import MIGRATIONS, Ledger, Migration

# The schema as the ledger's code before named migrations wrote it, frozen here: the SQL of each
# positional version, exactly (`;`-separated, as it was applied), so this test keeps proving that
# those files open, whatever the migrations become.
POSITIONAL_VERSIONS = (
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
    "ALTER TABLE jobs ADD COLUMN account TEXT",
    "ALTER TABLE runs ADD COLUMN command TEXT",
)
NAMES = [migration.name for migration in MIGRATIONS]


def positional_ledger(path: Path, version: int) -> None:
    """A ledger as the code before named migrations left it at `version`, with a paid job and a run."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for sql in POSITIONAL_VERSIONS[:version]:
        db.executescript(sql)
    db.execute(f"PRAGMA user_version = {version}")
    db.execute(
        "INSERT INTO jobs (job_id, idx, request, labels, status, generation_id, submits, updated_at) "
        "VALUES ('a1', 0, '{\"prompt\": \"dawn\"}', '{}', 'submitted', 'gen-1', 1, '2026-01-01T00:00:00Z')"
    )
    db.execute(
        "INSERT INTO runs (started_at, manifest, provider) VALUES ('2026-01-01T00:00:00Z', 'm.yaml', 'p')"
    )
    db.close()


def recorded(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[0] for row in db.execute("SELECT name FROM migrations ORDER BY rowid")]


def columns(path: Path, table: str) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def test_migration_names_are_unique():
    assert len(set(NAMES)) == len(NAMES)


def test_a_new_ledger_records_every_migration_by_name(tmp_path: Path):
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    assert recorded(path) == NAMES
    assert user_version(path) == len(MIGRATIONS)


@pytest.mark.parametrize("version", range(1, len(POSITIONAL_VERSIONS) + 1))
def test_a_ledger_counted_by_position_migrates_and_keeps_its_rows(tmp_path: Path, version: int):
    """Its first `version` migrations are recorded as applied (running one again would fail:
    the column exists), the rest are applied, and its job and run are as they were."""
    path = tmp_path / "ledger.sqlite"
    positional_ledger(path, version)
    with Ledger(path) as ledger:
        job = ledger.job("a1")
        assert (job["status"], job["generation_id"], job["submits"]) == ("submitted", "gen-1", 1)
        assert job["account"] is None
        assert [(run["manifest"], run["command"]) for run in ledger.runs()] == [("m.yaml", None)]
    assert recorded(path) == NAMES
    assert {"account"} <= columns(path, "jobs") and {"command"} <= columns(path, "runs")
    assert user_version(path) == len(MIGRATIONS)


def test_opening_again_applies_nothing_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    counting = Migration("a run is noted", ("INSERT INTO runs (started_at) VALUES ('then')",))
    monkeypatch.setattr(ledger_module, "MIGRATIONS", (*MIGRATIONS, counting))
    path = tmp_path / "ledger.sqlite"
    for _ in range(3):
        Ledger(path).close()
    with Ledger(path) as ledger:
        assert len(ledger.runs()) == 1
    assert recorded(path) == [*NAMES, "a run is noted"]


def test_a_failing_migration_rolls_back_and_leaves_the_ledger_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "ledger.sqlite"
    positional_ledger(path, len(POSITIONAL_VERSIONS))
    failing = Migration(
        "jobs remember a colour",
        ("ALTER TABLE jobs ADD COLUMN colour TEXT", "UPDATE no_such_table SET colour = 'red'"),
    )
    monkeypatch.setattr(ledger_module, "MIGRATIONS", (*MIGRATIONS, failing))
    with pytest.raises(LedgerDamagedError) as raised:
        Ledger(path)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: cannot apply the ledger change 'jobs remember a colour' (")
    assert "no such table: no_such_table" in message and "left as it was" in message
    assert "colour" not in columns(path, "jobs")  # not half applied
    assert recorded(path) == NAMES  # the positional ones adopted; the failed one not recorded
    assert user_version(path) == len(MIGRATIONS)

    monkeypatch.setattr(ledger_module, "MIGRATIONS", MIGRATIONS)
    with Ledger(path) as ledger:  # the ledger opens as before, its paid job intact
        assert ledger.job("a1")["generation_id"] == "gen-1"


def test_a_migration_that_failed_is_applied_once_when_it_can_be(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
    notes = Migration("notes are copied", ("INSERT INTO notes_copy SELECT * FROM notes",))
    monkeypatch.setattr(ledger_module, "MIGRATIONS", (*MIGRATIONS, notes))
    with pytest.raises(LedgerDamagedError):
        Ledger(path)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes_copy (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('kept')")
    Ledger(path).close()
    Ledger(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT text FROM notes_copy").fetchall() == [("kept",)]
    assert recorded(path) == [*NAMES, "notes are copied"]
