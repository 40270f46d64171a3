"""Crashes and interrupts: the runner is killed or interrupted mid-run and resumed.

The runner runs as a real subprocess against a sandbox in this process (the sandbox outlives
the runner, as the real service would), so SIGKILL hits it wherever it is.
"""

from __future__ import annotations

import os
import pty
import random
import select
import signal
import threading
import time

import pytest

from pipeline.sandbox import FaultConfig, SandboxConfig, running_sandbox
from tests.runner_helpers import (
    accepted_twice,
    ledger_statuses,
    manifest_text,
    results,
    sha256_of,
    start_runner,
    start_runner_on_terminal,
    wait_for_slow_submits_at,
    wait_for_submits,
)

# settle_grace: a kill can land between a submit's record and its POST; the sandbox's usage logs
# have no delay, so after a second such an attempt is known never to have arrived (the default
# waits 15 minutes for the real service's logs).
RUN = (
    "run: {concurrency: 4, poll_interval: 0.05, poll_max_interval: 0.2, requests_per_minute: 100000, "
    "settle_grace: 1}"
)


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


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_waits_for_paid_posts_in_the_air_and_records_them(write, signum):
    """SIGTERM (docker stop, systemd) and SIGHUP (a closed terminal) are a first Ctrl-C: the four
    POSTs on their way are answered and recorded, their generations finish, nothing is uncertain."""
    manifest = write("m.yaml", manifest_text(jobs=8, run=RUN))
    out_dir = manifest.parent / "outputs" / "t"
    faults = FaultConfig(submit={"slow": 1.0}, slow_seconds=1.5)
    with running_sandbox(SandboxConfig(gen_time=0.2, concurrency=8, faults=faults)) as sandbox:
        runner = start_runner(manifest, sandbox.base_url)
        wait_for_slow_submits_at(sandbox, count=4)
        assert sandbox.stats()["submits"]["accepted"] == 0  # all four still in the air
        runner.send_signal(signum)
        out, err = runner.communicate(timeout=60)
        assert runner.returncode == 130, err
        assert "Interrupted: no new submits." in err
        assert (
            f"Stopped. To resume: vidpipe run m.yaml --provider aimlapi --base-url {sandbox.base_url}" in out
        )
        statuses = list(ledger_statuses(out_dir).values())
        assert statuses.count("completed") == 4 and statuses.count("pending") == 4, statuses
        assert sandbox.stats()["submits"]["accepted"] == 4


def test_closing_the_terminal_records_paid_posts_and_finishes_them(write):
    """A real closed terminal: SIGHUP, then a screen that is gone. The POSTs in the air are
    recorded, their generations finish, the table is written, and the run exits 130."""
    manifest = write("m.yaml", manifest_text(jobs=8, run=RUN))
    out_dir = manifest.parent / "outputs" / "t"
    faults = FaultConfig(submit={"slow": 1.0}, slow_seconds=1.5)
    master, slave = pty.openpty()
    closing = threading.Event()

    def read_the_screen() -> None:  # as a terminal does, until it is closed
        while not closing.is_set():
            if select.select([master], [], [], 0.05)[0]:
                try:
                    os.read(master, 65536)
                except OSError:
                    return

    screen = threading.Thread(target=read_the_screen, daemon=True)
    with running_sandbox(SandboxConfig(gen_time=0.2, concurrency=8, faults=faults)) as sandbox:
        runner = start_runner_on_terminal(manifest, sandbox.base_url, slave)
        os.close(slave)
        screen.start()
        wait_for_slow_submits_at(sandbox, count=4)
        closing.set()
        screen.join()
        os.close(master)  # the terminal window is closed
        assert runner.wait(timeout=60) == 130
        statuses = list(ledger_statuses(out_dir).values())
        assert statuses.count("completed") == 4 and statuses.count("pending") == 4, statuses
        assert sandbox.stats()["submits"]["accepted"] == 4
    assert list(results(out_dir)["status"]).count("completed") == 4


@pytest.mark.parametrize(
    "signals",
    [(signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGTERM), (signal.SIGHUP, signal.SIGINT)],
    ids=lambda pair: "-".join(s.name for s in pair),
)
def test_a_second_stop_signal_exits_at_once_and_leaves_a_consistent_ledger(write, signals):
    jobs = 12
    manifest = write("m.yaml", manifest_text(jobs=jobs, run=RUN))
    out_dir = manifest.parent / "outputs" / "t"
    with running_sandbox(SandboxConfig(gen_time=5, concurrency=8)) as sandbox:
        runner = start_runner(manifest, sandbox.base_url, "--quiet")
        wait_for_submits(out_dir, count=4)
        time.sleep(0.3)
        for signum in signals:
            runner.send_signal(signum)
            time.sleep(0.1)
        started = time.monotonic()
        runner.communicate(timeout=30)
        assert runner.returncode == 130
        assert time.monotonic() - started < 5, "a second signal must not wait for generations"
        statuses = ledger_statuses(out_dir)
        assert list(statuses.values()).count("submitted") == 4  # ids recorded: a rerun polls them
        assert sandbox.stats()["submits"]["accepted"] == 4
