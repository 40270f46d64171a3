"""Crashes and interrupts: the runner is killed or interrupted mid-run and resumed.

The runner runs as a real subprocess against a sandbox in this process (the sandbox outlives
the runner, as the real service would), so SIGKILL hits it wherever it is.
"""

from __future__ import annotations

import random
import signal
import time

import pytest

from pipeline.sandbox import SandboxConfig, running_sandbox
from tests.runner_helpers import (
    accepted_twice,
    ledger_statuses,
    manifest_text,
    results,
    sha256_of,
    start_runner,
    wait_for_submits,
)

RUN = "run: {concurrency: 4, poll_interval: 0.05, poll_max_interval: 0.2, requests_per_minute: 100000}"


def test_killed_runs_resume_without_paying_twice(write):
    """SIGKILL at several moments; every rerun resumes; no job with an id is ever submitted again."""
    jobs = 24
    manifest = write("m.yaml", manifest_text(jobs=jobs, run=RUN))
    out_dir = manifest.parent / "outputs" / "t"
    rng = random.Random(4)
    config = SandboxConfig(gen_time=0.4, concurrency=8)
    with running_sandbox(config) as sandbox:
        for kill in range(4):
            runner = start_runner(manifest, sandbox.base_url, "--quiet")
            wait_for_submits(out_dir, count=min(jobs, 3 + kill * 6))
            time.sleep(rng.uniform(0.0, 0.4))
            runner.send_signal(signal.SIGKILL)
            runner.communicate(timeout=30)
        final = start_runner(manifest, sandbox.base_url, "--quiet")
        final.communicate(timeout=120)
        statuses = ledger_statuses(out_dir)
        if "uncertain" in statuses.values():  # killed between a POST and its record: ask to resend
            retry = start_runner(manifest, sandbox.base_url, "--quiet", "--retry-uncertain")
            retry.communicate(timeout=120)
        stats = sandbox.stats()
    table = results(out_dir)
    assert len(table) == jobs
    assert set(table["status"]) == {"completed"}
    for row in table.itertuples():
        assert sha256_of(out_dir / row.path) == row.sha256
    # Only jobs that went through `uncertain` and --retry-uncertain may have been sent twice
    # (a kill can land after the intent is recorded and before the POST leaves, too).
    uncertain_resent = int((table["submits"] > 1).sum())
    assert len(accepted_twice(stats)) <= uncertain_resent
    assert jobs <= stats["submits"]["accepted"] <= jobs + uncertain_resent
    assert not list((out_dir / "videos").glob(".*.part"))


def test_ctrl_c_stops_submitting_finishes_running_work_and_resumes(write):
    jobs = 16
    manifest = write("m.yaml", manifest_text(jobs=jobs, run=RUN.replace("concurrency: 4", "concurrency: 2")))
    out_dir = manifest.parent / "outputs" / "t"
    with running_sandbox(SandboxConfig(gen_time=0.3, concurrency=8)) as sandbox:
        runner = start_runner(manifest, sandbox.base_url)
        wait_for_submits(out_dir, count=3)
        runner.send_signal(signal.SIGINT)
        out, err = runner.communicate(timeout=60)
        assert runner.returncode == 130, err
        assert "Interrupted: no new submits." in err
        assert (
            f"Stopped. To resume: vidpipe run m.yaml --provider aimlapi --base-url {sandbox.base_url}" in out
        )
        interrupted = ledger_statuses(out_dir)
        assert "submitting" not in interrupted.values() and "submitted" not in interrupted.values()
        assert 0 < list(interrupted.values()).count("completed") < jobs
        assert len(results(out_dir)) == jobs  # the table is whole even after an interrupt

        again = start_runner(manifest, sandbox.base_url, "--quiet")
        again.communicate(timeout=60)
        assert again.returncode == 0
        stats = sandbox.stats()
    assert stats["submits"]["accepted"] == jobs and accepted_twice(stats) == {}


@pytest.mark.parametrize("signal_count", [2])
def test_a_second_ctrl_c_exits_at_once_and_leaves_a_consistent_ledger(write, signal_count):
    jobs = 12
    manifest = write("m.yaml", manifest_text(jobs=jobs, run=RUN))
    out_dir = manifest.parent / "outputs" / "t"
    with running_sandbox(SandboxConfig(gen_time=5, concurrency=8)) as sandbox:
        runner = start_runner(manifest, sandbox.base_url, "--quiet")
        wait_for_submits(out_dir, count=4)
        time.sleep(0.3)
        for _ in range(signal_count):
            runner.send_signal(signal.SIGINT)
            time.sleep(0.1)
        started = time.monotonic()
        runner.communicate(timeout=30)
        assert runner.returncode == 130
        assert time.monotonic() - started < 5, "a second Ctrl-C must not wait for generations"
        statuses = ledger_statuses(out_dir)
        assert list(statuses.values()).count("submitted") == 4  # ids recorded: a rerun polls them
        assert sandbox.stats()["submits"]["accepted"] == 4
