"""Damaged local state: a lost ledger, a read-only folder, a full disk, a locked or garbage ledger.

None of these may lead to a submit that pays again, and none is a bug of vidpipe: each is one
line naming the path and what to do, with exit 4 ("the environment refused"). The disks are
real: a tmpfs of a few hundred KB (mounting needs root; those tests are skipped without it).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from pipeline.cli import build_parser
from pipeline.errors import EXIT_ENVIRONMENT
from pipeline.read.manifest import display_path
from pipeline.sandbox import SandboxConfig, running_sandbox
from tests.conftest import REPO
from tests.runner_helpers import (
    accepted_twice,
    ledger_statuses,
    manifest_text,
    results,
    start_runner,
    wait_for_submits,
)

FAST = "run: {concurrency: 4, poll_interval: 0.05, poll_max_interval: 0.2, retries: 2}"


@pytest.fixture
def small_disk(tmp_path: Path):
    """small_disk(kb) -> the mount point of a real tmpfs that size, unmounted after the test."""
    mounts: list[Path] = []

    def make(kb: int) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root")
        point = tmp_path / f"disk{len(mounts)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kb}k", "tmpfs", str(point)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(point)
        return point

    yield make
    for point in mounts:
        subprocess.run(["umount", "-l", str(point)], check=False)


def remount(point: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(point)], check=True)


def one_error_line(result) -> str:
    assert "Traceback" not in result.err and "internal error" not in result.err, result.err
    lines = [line for line in result.err_lines if line.startswith("error: ")]
    assert len(lines) == 1, result.err
    return lines[0]


# --- item 1: a lost ledger beside results ----------------------------------------------------


def finished_run(write, run_api, sandbox, jobs: int = 3) -> tuple[Path, Path]:
    manifest = write("m.yaml", manifest_text(jobs=jobs, run=FAST))
    assert run_api(sandbox, manifest).code == 0
    return manifest, manifest.parent / "outputs" / "t"


def lose_ledger(out_dir: Path, how: str) -> None:
    ledger = out_dir / "ledger.sqlite"
    for suffix in ("-wal", "-shm"):
        (out_dir / f"ledger.sqlite{suffix}").unlink(missing_ok=True)
    if how == "empty":
        ledger.write_bytes(b"")  # `: > ledger.sqlite`
    elif how == "missing":
        ledger.unlink()
    elif how == "unreadable":
        ledger.unlink()
        ledger.mkdir()  # unreadable as a file, even for root (who reads a chmod 000 file)
    else:
        ledger.write_bytes(os.urandom(8192))


@pytest.mark.parametrize(
    ("how", "said"),
    [
        ("empty", "is empty (0 bytes)"),
        ("missing", "is missing"),
        ("unreadable", "cannot be read (Is a directory)"),
        ("garbage", "is damaged"),
    ],
)
def test_a_lost_ledger_beside_results_is_refused_and_nothing_is_sent(write, run_api, sandbox, how, said):
    manifest, out_dir = finished_run(write, run_api, sandbox)
    lose_ledger(out_dir, how)
    result = run_api(sandbox, manifest)
    assert result.code == EXIT_ENVIRONMENT
    line = one_error_line(result)
    assert line.startswith(
        f"error: outputs/t/ledger.sqlite {said}, but results.jsonl, results.csv and 3 video(s)"
    )
    assert "nothing was sent" in line and "--rebuild-ledger" in line and "--fresh" in line
    assert sandbox.stats()["submits"]["accepted"] == 3


def test_a_ledger_rebuilt_after_a_finished_run_resumes_exactly(write, run_api, sandbox):
    """The table written at the end of a run is the ledger's copy: nothing is paid for again,
    and the jobs that run never reached are submitted once."""
    manifest = write("m.yaml", manifest_text(jobs=4, run=FAST))
    assert run_api(sandbox, manifest, "--limit", "2").code == 0
    out_dir = manifest.parent / "outputs" / "t"
    before = results(out_dir).set_index("job_id")
    lose_ledger(out_dir, "empty")
    result = run_api(sandbox, manifest, "--rebuild-ledger")
    assert result.code == 0, result.err
    assert (
        "Rebuilt outputs/t/ledger.sqlite from outputs/t/results.jsonl: 2 completed, 2 pending." in result.err
    )
    after = results(out_dir).set_index("job_id")
    for job_id, row in before.iterrows():
        assert after.loc[job_id, "generation_id"] == row["generation_id"]
        assert after.loc[job_id, "sha256"] == row["sha256"]
    stats = sandbox.stats()
    assert stats["submits"]["accepted"] == 4 and accepted_twice(stats) == {}
    assert list((out_dir).glob("ledger.sqlite.*.bak")), "the lost ledger is kept aside"


def test_a_ledger_rebuilt_from_a_table_written_mid_run_polls_ids_and_resends_nothing(write, run_api, sandbox):
    """A table that lags its ledger (edited below to be one; the final mark left beside it
    vouches for other states): a job with a generation id is polled and fetched, not resent; a
    job whose video is on disk is completed; a job the table shows unsent or failed may have been
    submitted since, so it is uncertain."""
    manifest, out_dir = finished_run(write, run_api, sandbox, jobs=4)
    rows = [json.loads(line) for line in (out_dir / "results.jsonl").read_text().splitlines()]
    polled, on_disk, unsent, failed = rows
    for row in (polled, unsent, failed):
        (out_dir / row["path"]).unlink()
    gone = {"path": None, "bytes": None, "sha256": None, "completed_at": None}
    polled.update(status="submitted", **gone)
    on_disk.update(status="submitted")
    unsent.update(status="pending", generation_id=None, **gone)
    failed.update(status="failed", error_message="the generation failed", **gone)
    (out_dir / "results.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    lose_ledger(out_dir, "missing")
    polls_before = sandbox.stats()["polls"]["total"]

    result = run_api(sandbox, manifest, "--rebuild-ledger")
    assert result.code == 1, result.err  # the unsent one stays uncertain
    assert "1 completed, 1 submitted, 2 uncertain" in result.err
    assert ledger_statuses(out_dir) == {
        polled["job_id"]: "completed",
        on_disk["job_id"]: "completed",
        unsent["job_id"]: "uncertain",
        # Uncertain after the rebuild, but its generation id is known and still answers: the run
        # polls it (it completed) instead of leaving it for --retry-uncertain.
        failed["job_id"]: "completed",
    }
    assert (out_dir / results(out_dir).set_index("job_id").loc[polled["job_id"], "path"]).is_file()
    stats = sandbox.stats()
    assert stats["submits"]["accepted"] == 4 and stats["polls"]["total"] > polls_before


def test_a_run_takes_the_final_mark_away_before_its_first_submit(write, workdir):
    """From its first submit until its last table, a run's table lags its ledger: the mark that
    lets a rebuild trust "pending" is gone for that whole time (here: a run SIGKILLed mid-way)."""
    manifest = write("m.yaml", manifest_text(jobs=6, run=FAST))
    out_dir = workdir / "outputs" / "t"
    with running_sandbox(SandboxConfig(gen_time=0.05)) as sandbox:
        first = start_runner(manifest, sandbox.base_url, "--quiet", "--limit", "2")
        first.communicate(timeout=60)
        assert first.returncode == 0
        assert (out_dir / "results.final").is_file()
    with running_sandbox(SandboxConfig(gen_time=30)) as sandbox:
        runner = start_runner(manifest, sandbox.base_url, "--quiet")
        wait_for_submits(out_dir, count=4)
        assert not (out_dir / "results.final").exists()
        runner.send_signal(signal.SIGKILL)
        runner.communicate(timeout=30)


def test_rebuild_is_refused_on_a_healthy_ledger(write, run_api, sandbox):
    manifest, _ = finished_run(write, run_api, sandbox, jobs=1)
    result = run_api(sandbox, manifest, "--rebuild-ledger")
    assert result.code == 2
    assert (
        "is readable and has jobs: --rebuild-ledger is only for a missing, empty or damaged one" in result.err
    )


# --- item 12: the machine refuses ------------------------------------------------------------


def test_a_read_only_output_folder_is_one_line_before_anything_is_sent(write, run_api, sandbox, small_disk):
    disk = small_disk(512)
    remount(disk, "ro")
    result = run_api(sandbox, write("m.yaml", manifest_text(jobs=2, run=FAST)), "--out", disk / "t")
    assert result.code == EXIT_ENVIRONMENT
    assert one_error_line(result) == (
        f"error: {display_path(disk / 't')}: Read-only file system; make it writable, or give this run another --out"
    )
    assert sandbox.stats()["submits"]["accepted"] == 0


def test_a_full_disk_is_one_line_before_anything_is_sent(write, run_api, sandbox, small_disk):
    disk = small_disk(64)
    (disk / "t").mkdir()
    with (disk / "filler").open("wb", buffering=0) as filler, pytest.raises(OSError):
        while True:
            filler.write(bytes(4096))
    result = run_api(sandbox, write("m.yaml", manifest_text(jobs=2, run=FAST)), "--out", disk / "t")
    assert result.code == EXIT_ENVIRONMENT
    assert one_error_line(result) == (
        f"error: {display_path(disk / 't')}: No space left on device; free some space, or give this run another --out"
    )
    assert sandbox.stats()["submits"]["accepted"] == 0


# Opt-in (-m slow) until it is understood: under heavy load it failed in 3 of about 10 runs and
# passed every time alone; which write meets the full disk first varies with timing.
@pytest.mark.slow
def test_a_disk_that_fills_mid_run_stops_it_with_every_paid_job_resumable(
    write, run_api, sandbox, small_disk
):
    """Videos fill the disk, then the ledger cannot write: the run stops at once, in one line,
    and with room again a rerun finishes every job without paying twice."""
    disk = small_disk(600)
    manifest = write("m.yaml", manifest_text(jobs=20, run=FAST))
    result = run_api(sandbox, manifest, "--out", disk / "t")
    assert result.code == EXIT_ENVIRONMENT
    line = one_error_line(result)  # the ledger, most often; a results table if it came first
    assert line.startswith(f"error: {disk / 't'}/"), line
    assert "the disk is full; free some space" in line or "No space left on device; free some space" in line
    with sqlite3.connect(disk / "t" / "ledger.sqlite") as db:
        known = db.execute("SELECT COUNT(*) FROM jobs WHERE generation_id IS NOT NULL").fetchone()[0]
        mid_submit = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'submitting'").fetchone()[0]
    assert sandbox.stats()["submits"]["accepted"] == known + mid_submit

    remount(disk, "size=20m")
    again = run_api(sandbox, manifest, "--out", disk / "t")
    assert again.code == (1 if mid_submit else 0), again.err
    assert list(results(disk / "t")["status"]).count("completed") == 20 - mid_submit
    stats = sandbox.stats()
    assert stats["submits"]["accepted"] == 20 and accepted_twice(stats) == {}


def test_a_ledger_locked_by_another_program_is_reported_at_once(write, run_api, sandbox):
    manifest, out_dir = finished_run(write, run_api, sandbox, jobs=1)
    holder = sqlite3.connect(out_dir / "ledger.sqlite", isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")  # as an sqlite3 shell in the middle of a transaction
        started = time.monotonic()
        result = run_api(sandbox, manifest)
        waited = time.monotonic() - started
    finally:
        holder.close()
    assert result.code == EXIT_ENVIRONMENT
    assert one_error_line(result).startswith(
        "error: outputs/t/ledger.sqlite: locked by another program (not a vidpipe run: those hold ledger.lock)"
    )
    assert waited < 10, "a lock is reported at once, not after the 30 s a write waits"
    assert sandbox.stats()["submits"]["accepted"] == 1


def test_a_garbage_ledger_alone_is_one_line(write, run_api, sandbox):
    manifest = write("m.yaml", manifest_text(jobs=1, run=FAST))
    write("outputs/t/ledger.sqlite", b"SQLite format 3\x00" + os.urandom(4000))
    result = run_api(sandbox, manifest)
    assert result.code == EXIT_ENVIRONMENT
    line = one_error_line(result)
    assert line.startswith("error: outputs/t/ledger.sqlite: damaged, not a readable ledger (")
    assert "--rebuild-ledger" in line
    assert sandbox.stats()["submits"]["accepted"] == 0


def test_exit_4_is_listed_in_help_and_in_the_readme():
    listed = "4 the environment refused"
    assert listed in " ".join(build_parser().format_help().split())
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "| 4 | the environment refused" in readme


def test_a_results_table_that_cannot_be_rebuilt_from_is_one_line(write, run_api, sandbox):
    manifest, out_dir = finished_run(write, run_api, sandbox, jobs=2)
    table = out_dir / "results.jsonl"
    table.write_text(table.read_text().splitlines()[0] + "\n{not json\n")
    lose_ledger(out_dir, "empty")
    result = run_api(sandbox, manifest, "--rebuild-ledger")
    assert result.code == EXIT_ENVIRONMENT
    assert one_error_line(result).startswith(
        "error: outputs/t/results.jsonl:2: not a line of JSON, so the ledger cannot be rebuilt from it;"
    )
    assert sandbox.stats()["submits"]["accepted"] == 2


def test_a_ledger_is_rebuilt_from_results_parquet_when_it_is_the_only_table(write, run_api, sandbox):
    """formats [csv, parquet]: Parquet's arrays and timestamps are read as the JSONL's values."""
    manifest = write("m.yaml", manifest_text(jobs=3, run=FAST, extra="output: {formats: [csv, parquet]}"))
    assert run_api(sandbox, manifest).code == 0
    out_dir = manifest.parent / "outputs" / "t"
    lose_ledger(out_dir, "missing")
    result = run_api(sandbox, manifest, "--rebuild-ledger")
    assert result.code == 0, result.err
    assert "from outputs/t/results.parquet: 3 completed" in result.err
    assert sandbox.stats()["submits"]["accepted"] == 3  # nothing paid again
