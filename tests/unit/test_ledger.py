"""The ledger's job states and their transitions (pipeline/run/ledger.py), without a sandbox: each
write is one transaction that happens wholly or not at all, and keeps what a rerun needs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pipeline.errors import EnvironmentRefusedError
from pipeline.run.ledger import LEDGER_FILE, GenerationFacts, Ledger, statuses_in


@pytest.fixture
def ledger(tmp_path: Path):
    with Ledger(tmp_path / LEDGER_FILE) as opened:
        opened.sync_jobs((f"j{n}", n, {"prompt": f"p{n}"}, {"tag": n}) for n in range(3))
        yield opened


def status(ledger: Ledger, job_id: str = "j0") -> str:
    return ledger.job(job_id)["status"]


def test_synced_jobs_are_pending_and_a_later_manifest_keeps_the_ones_it_dropped(ledger: Ledger):
    assert ledger.counts() == {"pending": 3}
    assert json.loads(ledger.job("j1")["request"]) == {"prompt": "p1"}
    assert ledger.sync_jobs([("j1", 0, {"prompt": "p1"}, {"tag": "new"}), ("j9", 1, {}, {})]) == 1
    assert ledger.job_count() == 4
    assert ledger.counts() == {"pending": 2}  # only the jobs the manifest still has
    assert ledger.job("j0")["in_manifest"] == 0
    assert (ledger.job("j1")["idx"], json.loads(ledger.job("j1")["labels"])) == (0, {"tag": "new"})
    assert list(ledger.frame()["job_id"]) == ["j1", "j9", "j0", "j2"]


def test_a_submit_records_its_intent_then_its_generation_id(ledger: Ledger):
    ledger.mark_submitting("j0")
    assert (status(ledger), ledger.job("j0")["submits"]) == ("submitting", 1)
    ledger.mark_submitted("j0", "gen-1")
    job = ledger.job("j0")
    assert (job["status"], job["generation_id"]) == ("submitted", "gen-1")
    assert job["submitted_at"] is not None


def test_a_resubmit_forgets_the_earlier_generation_and_counts_itself(ledger: Ledger):
    ledger.mark_submitting("j0")
    ledger.mark_submitted("j0", "gen-1")
    ledger.mark_failed("j0", "http_422", "refused", polls=2)
    ledger.mark_submitting("j0", resubmit=True)
    job = ledger.job("j0")
    assert (job["status"], job["generation_id"], job["error_name"]) == ("submitting", None, None)
    assert (job["submits"], job["resubmits"], job["polls"]) == (2, 1, 2)


def test_interrupted_submits_become_uncertain_and_nothing_else_moves(ledger: Ledger):
    for job_id in ("j0", "j1"):
        ledger.mark_submitting(job_id)
    ledger.mark_submitted("j1", "gen-1")
    assert ledger.recover_interrupted_submits() == 1
    assert [status(ledger, job) for job in ("j0", "j1", "j2")] == ["uncertain", "submitted", "pending"]
    assert ledger.job("j0")["error_name"] == "uncertain"


def test_recovering_some_jobs_leaves_the_others_in_the_air(ledger: Ledger):
    for job_id in ("j0", "j1"):
        ledger.mark_submitting(job_id)
    assert ledger.recover_interrupted_submits(["j1", "j2"]) == 1
    assert (status(ledger, "j0"), status(ledger, "j1")) == ("submitting", "uncertain")


def test_completion_writes_the_video_and_the_facts_kept_since_the_final_poll(ledger: Ledger):
    ledger.mark_submitting("j0")
    ledger.mark_submitted("j0", "gen-1")
    ledger.note_error("j0", "unexpected", "a hiccup")
    ledger.mark_completed("j0", "videos/j0.mp4", 123, "ab" * 32, GenerationFacts("https://v", 8.0, 1.5, 3))
    job = ledger.job("j0")
    written = {key: job[key] for key in ("status", "path", "bytes", "video_url", "credits", "polls")}
    assert written == {"status": "completed", "path": "videos/j0.mp4", "bytes": 123,
                       "video_url": "https://v", "credits": 8.0, "polls": 3}  # fmt: skip
    assert (job["sha256"], job["generation_seconds"]) == ("ab" * 32, 1.5)
    assert (job["error_name"], job["error_message"], job["generation_id"]) == (None, None, "gen-1")


def test_facts_without_credits_keep_the_credits_recorded_before(ledger: Ledger):
    ledger.mark_failed("j0", "failed", "the generation failed", credits=4.0, polls=1)
    ledger.record_facts("j0", GenerationFacts("https://v", None, None, 2))
    job = ledger.job("j0")
    assert (job["status"], job["credits"], job["polls"], job["video_url"]) == ("failed", 4.0, 3, "https://v")


def test_a_failed_download_leaves_the_paid_job_generated(ledger: Ledger):
    ledger.mark_submitting("j0")
    ledger.mark_submitted("j0", "gen-1")
    ledger.mark_download_failed("j0", "HTTP 500", GenerationFacts("https://v", 8.0, None, 1))
    job = ledger.job("j0")
    assert (job["status"], job["error_name"], job["credits"], job["generation_id"]) == (
        "generated", "download", 8.0, "gen-1",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mark", "expected"),
    [
        (lambda ledger: ledger.mark_uncertain("j0", "lost", polls=2), ("uncertain", "uncertain", 2)),
        (lambda ledger: ledger.mark_timed_out("j0", "too slow", polls=2), ("timed_out", "timeout", 2)),
        (lambda ledger: ledger.mark_failed("j0", "http_400", "no", polls=2), ("failed", "http_400", 2)),
        (lambda ledger: ledger.mark_pending("j0", polls=2), ("pending", None, 2)),
    ],
)
def test_each_ending_sets_its_status_and_error_and_adds_its_polls(ledger: Ledger, mark, expected):
    ledger.mark_submitting("j0")
    ledger.mark_submitted("j0", "gen-1")
    mark(ledger)
    job = ledger.job("j0")
    assert (job["status"], job["error_name"], job["polls"]) == expected
    assert job["generation_id"] == "gen-1"  # kept for a rerun's poll


def test_a_noted_error_does_not_change_the_status(ledger: Ledger):
    ledger.mark_completed("j0", "videos/j0.mp4", 1, "0" * 64, GenerationFacts())
    ledger.note_error("j0", "unexpected", "after the video")
    assert (status(ledger), ledger.job("j0")["error_message"]) == ("completed", "after the video")


def test_runs_record_their_command_and_exit_code(ledger: Ledger):
    first = ledger.start_run("m.yaml", "sandbox", {"argv": ["vidpipe", "run", "m.yaml"]})
    second = ledger.start_run("m.yaml", "aimlapi")
    ledger.finish_run(first, 1)
    runs = ledger.runs()
    assert [run["run_id"] for run in runs] == [first, second]
    assert json.loads(runs[0]["command"]) == {"argv": ["vidpipe", "run", "m.yaml"]}
    assert (runs[0]["exit_code"], runs[1]["command"], runs[1]["finished_at"]) == (1, None, None)


def test_accounts_are_recorded_per_job(ledger: Ledger):
    ledger.assign_accounts({"j0": "main", "j2": "spare"})
    assert [ledger.job(job)["account"] for job in ("j0", "j1", "j2")] == ["main", None, "spare"]


def test_a_write_that_fails_changes_nothing_and_the_ledger_goes_on(ledger: Ledger):
    """restore_jobs inserts every row in one transaction: a duplicate id rolls all back."""
    row = {"idx": 5, "request": "{}", "labels": "{}", "status": "completed", "submits": 1, "resubmits": 0,
           "polls": 0, "updated_at": "then", "in_manifest": 1}  # fmt: skip
    with pytest.raises(sqlite3.IntegrityError, match=r"UNIQUE constraint failed: jobs\.job_id"):
        ledger.restore_jobs([{**row, "job_id": "r1"}, {**row, "job_id": "j0"}])
    assert ledger.job("r1") is None and ledger.job_count() == 3
    ledger.mark_submitting("j1")  # no transaction left open
    assert status(ledger, "j1") == "submitting"


def test_rows_by_id_reads_all_or_the_ones_asked_for(ledger: Ledger):
    assert sorted(ledger.rows_by_id()) == ["j0", "j1", "j2"]
    assert sorted(ledger.rows_by_id(["j2", "nope"])) == ["j2"]


def test_a_read_only_ledger_refuses_writes_in_one_line(tmp_path: Path, ledger: Ledger):
    with Ledger(ledger.path, read_only=True) as reader:
        assert reader.job_count() == 3
        with pytest.raises(EnvironmentRefusedError, match="cannot be written"):
            reader.mark_submitting("j0")
    assert statuses_in(tmp_path) == {"j0": "pending", "j1": "pending", "j2": "pending"}
    assert statuses_in(tmp_path / "elsewhere") is None
