"""The commands vidpipe prints to resume a run are the exact ones that resume that folder."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from pipeline.run.resume import ResumeCommand, resume_command
from pipeline.run.runner import RunRequest
from pipeline.sandbox import SandboxConfig, running_sandbox
from tests.runner_helpers import (
    KEY,
    REPO,
    ledger_statuses,
    manifest_text,
    results,
    start_runner,
    wait_for_submits,
)

RUN = "run: {concurrency: 2, poll_interval: 0.05, poll_max_interval: 0.2, requests_per_minute: 100000}"


def _shell(command: str, cwd) -> subprocess.CompletedProcess[str]:
    """Run a printed command as a user would paste it into a shell."""
    env = {
        **os.environ,
        "AIMLAPI_KEY": KEY,
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
    }
    return subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_printed_resume_command_finishes_the_interrupted_folder(write, cli):
    jobs = 10
    manifest = write("sweep.yaml", manifest_text(jobs=jobs, run=RUN))
    out_dir = manifest.parent / "outputs" / "sweep2"
    with running_sandbox(SandboxConfig(gen_time=0.3, concurrency=8)) as sandbox:
        runner = start_runner(manifest, sandbox.base_url, "--out", "outputs/sweep2")
        wait_for_submits(out_dir, count=2)
        runner.send_signal(signal.SIGINT)
        out, err = runner.communicate(timeout=60)
        assert runner.returncode == 130, err
        (hint,) = re.findall(r"^Stopped\. To resume: (.+)$", out, re.MULTILINE)
        assert "--out outputs/sweep2" in hint
        assert not [line for line in out.splitlines() if line.endswith(": None")]

        status = cli("status", out_dir)
        assert f"To resume: {hint}" in status.out

        resumed = _shell(hint, manifest.parent)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert set(ledger_statuses(out_dir).values()) == {"completed"}
    assert len(results(out_dir)) == jobs
    assert not (manifest.parent / "outputs" / "t").exists()  # the manifest's own folder was left alone


def test_the_resume_command_repeats_what_chose_folder_service_and_spend(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    request = RunRequest(
        manifest=tmp_path / "my sweep.yaml",
        provider="aimlapi",
        out=tmp_path / "runs" / "b",
        budget=900,
        limit=2,
        engine="ray",
        shards=3,
        fresh=True,
        retry_uncertain=True,
        quiet=True,
    )
    command = resume_command(request, "https://proxy.example")
    assert command.shown() == (
        "vidpipe run 'my sweep.yaml' --provider aimlapi --base-url https://proxy.example "
        "--out runs/b --budget 900 --limit 2 --engine ray --shards 3"
    )
    assert command.shown("--retry-uncertain").endswith("--shards 3 --retry-uncertain")


def test_from_another_folder_the_command_starts_with_cd(tmp_path):
    command = ResumeCommand(("m.yaml",), str(tmp_path / "project dir"))
    assert command.shown(cwd=str(tmp_path)) == f"cd '{tmp_path}/project dir' && vidpipe run m.yaml"
    assert ResumeCommand.from_record(command.as_record()) == command


def test_kill_9_on_the_embedded_sandbox_then_the_same_command_finishes_every_job(write):
    """The default sandbox keeps its generations next to the ledger: a rerun polls them by id."""
    jobs = 12
    manifest = write(
        "m.yaml", manifest_text(jobs=jobs, run=RUN, extra="sandbox: {gen_time: 1.0, concurrency: 4}")
    )
    out_dir = manifest.parent / "outputs" / "t"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "pipeline", "run", "m.yaml", "--quiet"]
    runner = subprocess.Popen(
        command, cwd=manifest.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    wait_for_submits(out_dir, count=2)
    time.sleep(0.3)  # their ids recorded; generations take 1 s
    runner.send_signal(signal.SIGKILL)
    runner.communicate(timeout=30)
    before = ledger_statuses(out_dir)
    assert "pending" in before.values()

    again = subprocess.run(command, cwd=manifest.parent, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    table = results(out_dir)
    assert set(table["status"]) == {"completed"} and len(table) == jobs
    assert table["generation_id"].is_unique
    with_ids = [job for job, status in before.items() if status in ("submitted", "generated")]
    assert with_ids
    polled_not_resent = table.set_index("job_id").loc[with_ids, "submits"]
    assert set(polled_not_resent) == {1}


def test_a_folder_run_on_the_real_api_is_not_resumed_on_the_sandbox(write, cli, run_api):
    """The sandbox resends lost submits freely; it must never do so for jobs of the paid service."""
    manifest = write("m.yaml", manifest_text(jobs=2, run=RUN))
    with running_sandbox(SandboxConfig(gen_time=0.05)) as service:
        assert run_api(service, manifest).code == 0
    result = cli("run", manifest, "--quiet")  # the manifest's default provider: the sandbox
    assert result.code == 2
    assert result.err.strip() == (
        "error: outputs/t holds jobs run on aimlapi; this run would use sandbox: pass --provider aimlapi "
        "to resume them, or --out another folder (--fresh starts this one over)"
    )
