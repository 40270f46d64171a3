"""`vidpipe run --engine ray` on a local Ray instance against the sandbox over loopback.

Each Ray run is a real `vidpipe` process (Ray starts its own local instance, about 4 s), so a
shard's worker can be killed from here while the run goes on.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("ray")

from pipeline.sandbox import SandboxConfig, running_sandbox
from tests.runner_helpers import accepted_twice, manifest_text, results, start_runner

CONCURRENCY = 4
RATE = 1500  # requests a minute: 25 a second, for the whole cluster


def run_section(requests_per_minute: int) -> str:
    return (
        f"run: {{concurrency: {CONCURRENCY}, requests_per_minute: {requests_per_minute}, "
        "poll_interval: 0.05, poll_max_interval: 0.2, retries: 6}"
    )


@pytest.fixture(scope="module")
def shared_sandbox():
    """One sandbox for the module."""
    # One frame a second: every job still gets a clip of its own (so comparing sha256 catches a
    # video landing under another job's name), at a seventh of the rendering time.
    with running_sandbox(SandboxConfig(gen_time=0.15, concurrency=16, fps=1)) as handle:
        yield handle


def ray_run(manifest: Path, base_url: str, *flags: str, timeout: float = 240):
    process = start_runner(manifest, base_url, "--engine", "ray", "--quiet", *flags)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def by_job(out_dir: Path):
    frame = results(out_dir)
    return {row.job_id: (row.status, row.sha256) for row in frame.itertuples()}


def submits_per_job(out_dir: Path) -> dict[str, int]:
    with sqlite3.connect(out_dir / "ledger.sqlite") as db:
        return dict(db.execute("SELECT job_id, submits FROM jobs"))


def test_ray_engine_gives_the_same_table_as_the_local_engine_within_the_cluster_wide_limits(
    write, run_api, shared_sandbox, workdir
):
    # The run section is not part of a job's identity: both manifests make the same 200 job ids.
    fast = write("fast.yaml", manifest_text(jobs=200, run=run_section(600_000)))
    limited = write("limited.yaml", manifest_text(jobs=200, run=run_section(RATE)))
    local = run_api(shared_sandbox, fast, "--out", "local")
    assert local.code == 0, local.err
    shared_sandbox.reset()  # counts start again; rendered clips stay cached

    started = time.monotonic()
    code, _, err = ray_run(limited, shared_sandbox.base_url, "--out", "ray", "--shards", "2")
    elapsed = time.monotonic() - started

    assert code == 0, err
    on_ray = by_job(workdir / "ray")
    assert len(on_ray) == 200 and {status for status, _ in on_ray.values()} == {"completed"}
    assert on_ray == by_job(workdir / "local")
    assert len({sha256 for _, sha256 in on_ray.values()}) == 200  # 200 different videos
    stats = shared_sandbox.stats()
    assert stats["submits"]["accepted"] == 200
    assert accepted_twice(stats) == {}
    # Two shards, each allowed the account's 4 on its own: only the shared window keeps the
    # cluster at 4 (peak_in_flight is the sandbox's own count of queued + generating).
    assert stats["generations"]["peak_in_flight"] <= CONCURRENCY
    # One shared rate: 200 submits and at least 200 polls, past a burst of 10, take at least
    # 390 / 25 = 15.6 s. A limiter per shard would let them through in half that.
    api_requests = stats["submits"]["accepted"] + stats["polls"]["total"]
    assert elapsed >= (api_requests - 10) / (RATE / 60)
    assert set(results(workdir / "ray")["account"]) == {"AIMLAPI_KEY"}


def test_killing_a_shard_worker_mid_run_still_completes_with_no_job_submitted_twice(
    write, shared_sandbox, workdir, monkeypatch
):
    mark = _mark_this_run(monkeypatch)
    manifest = write("m.yaml", manifest_text(jobs=80, run=run_section(600_000), prompt="a lighthouse in fog"))
    shared_sandbox.reset()
    # --retry-uncertain: even so, a submit in the air when the worker died is not sent again.
    process = start_runner(
        manifest, shared_sandbox.base_url, "--engine", "ray", "--shards", "2", "--out", "k", "--quiet",
        "--retry-uncertain",
    )  # fmt: skip
    victim = _kill_a_shard_worker_after_submits(shared_sandbox, mark, submits=20, limit_s=60)
    _, err = process.communicate(timeout=240)

    assert victim is not None, "no shard worker was found to kill"
    assert "was lost" in err and "starting it again" in err, err
    table = results(workdir / "k")
    statuses = table["status"].value_counts().to_dict()
    # Every job ends: completed, or uncertain if its submit was in the air at the kill (never resent).
    assert set(statuses) <= {"completed", "uncertain"}, statuses
    assert statuses.get("uncertain", 0) <= CONCURRENCY
    assert process.returncode == (0 if "uncertain" not in statuses else 1), err
    assert max(submits_per_job(workdir / "k").values()) == 1
    assert accepted_twice(shared_sandbox.stats()) == {}


def _kill_a_shard_worker_after_submits(
    sandbox, mark: str, submits: int, limit_s: float, victim: int | None = None
) -> int | None:
    """SIGKILL one of this run's shard workers (or `victim`) once `submits` were accepted."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if sandbox.stats()["submits"]["accepted"] >= submits:
            for pid in [victim] if victim else _shard_workers(mark):
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.05)
    return None


def test_jobs_are_spread_over_several_keys_within_the_cluster_wide_limit(
    write, shared_sandbox, workdir, monkeypatch
):
    monkeypatch.setenv("AIMLAPI_KEY_A", "sk-team-a-123456")
    monkeypatch.setenv("AIMLAPI_KEY_B", "sk-team-b-123456")
    accounts = (
        "run:\n  poll_interval: 0.05\n  poll_max_interval: 0.2\n  requests_per_minute: 600000\n  accounts:\n"
        "    - {key_env: AIMLAPI_KEY_A, concurrency: 2}\n    - {key_env: AIMLAPI_KEY_B, concurrency: 3}\n"
    )
    manifest = write("m.yaml", manifest_text(jobs=40, run=accounts, prompt="a paper boat"))
    shared_sandbox.reset()

    code, _, err = ray_run(manifest, shared_sandbox.base_url, "--out", "two", "--shards", "3")

    assert code == 0, err
    table = results(workdir / "two")
    assert table["account"].value_counts().to_dict() == {"AIMLAPI_KEY_B": 24, "AIMLAPI_KEY_A": 16}
    assert set(table["status"]) == {"completed"}
    stats = shared_sandbox.stats()
    assert stats["generations"]["peak_in_flight"] <= 5
    assert stats["submits"]["accepted"] == 40 and accepted_twice(stats) == {}


def test_a_missing_key_for_one_account_is_a_one_line_error_before_anything_is_sent(
    write, cli, monkeypatch, workdir
):
    monkeypatch.setenv("AIMLAPI_KEY_A", "sk-team-a-123456")
    monkeypatch.delenv("AIMLAPI_KEY_B", raising=False)
    accounts = "run:\n  accounts:\n    - {key_env: AIMLAPI_KEY_A}\n    - {key_env: AIMLAPI_KEY_B}\n"
    manifest = write("m.yaml", manifest_text(jobs=2, run=accounts))

    result = cli(
        "run", manifest, "--provider", "aimlapi", "--base-url", "http://127.0.0.1:9", "--engine", "ray"
    )

    assert result.code == 2
    assert (
        result.err.strip()
        == "error: AIMLAPI_KEY_B is not set: export AIMLAPI_KEY_B=<your key> to use provider aimlapi"
    )
    assert not (workdir / "outputs").exists()


def test_shards_publish_videos_straight_to_s3(write, shared_sandbox, workdir, monkeypatch, tmp_path_factory):
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
    from tests.s3_server import BUCKET, serve_s3

    s3_server = serve_s3(monkeypatch, tmp_path_factory)
    s3 = next(s3_server)
    try:
        url = f"s3://{BUCKET}/ray-run"
        manifest = write(
            "m.yaml",
            manifest_text(
                jobs=12, run=run_section(600_000), extra=f"output: {{dir: {url}}}", prompt="a tram at night"
            ),
        )
        shared_sandbox.reset()

        code, _, err = ray_run(manifest, shared_sandbox.base_url, "--shards", "2")

        assert code == 0, err
        with sqlite3.connect(workdir / "outputs" / "t" / "ledger.sqlite") as db:
            rows = db.execute("SELECT status, path, bytes, sha256 FROM jobs").fetchall()
        keys = s3.keys("ray-run/")
        assert len(rows) == 12
        for status, path, size, sha256 in rows:
            assert status == "completed"
            assert keys[f"ray-run/{path}"] == size and s3.sha256(f"ray-run/{path}") == sha256
        assert {"ray-run/results.csv", "ray-run/report.html"} <= set(keys)
        assert not list((workdir / "outputs" / "t" / "videos").glob("*.mp4"))  # uploaded, not kept
    finally:
        s3_server.close()


def test_after_the_driver_is_killed_a_rerun_finishes_the_run_paying_for_nothing_twice(
    write, shared_sandbox, workdir, monkeypatch
):
    mark = _mark_this_run(monkeypatch)
    manifest = write("m.yaml", manifest_text(jobs=60, run=run_section(600_000), prompt="a kite in a storm"))
    shared_sandbox.reset()
    driver = start_runner(
        manifest, shared_sandbox.base_url, "--engine", "ray", "--shards", "2", "--out", "d", "--quiet"
    )
    assert _kill_a_shard_worker_after_submits(shared_sandbox, mark, submits=15, limit_s=60, victim=driver.pid)
    driver.communicate(timeout=60)
    _wait_until_gone(mark, limit_s=60)  # Ray tears the instance down when its driver dies

    try:
        code, _, err = ray_run(manifest, shared_sandbox.base_url, "--shards", "2", "--out", "d")
    finally:
        _kill_orphans(mark, workdir)

    statuses = results(workdir / "d")["status"].value_counts().to_dict()
    assert set(statuses) <= {"completed", "uncertain"}, statuses
    assert code == (0 if "uncertain" not in statuses else 1), err
    assert max(submits_per_job(workdir / "d").values()) == 1
    assert accepted_twice(shared_sandbox.stats()) == {}


def _ray_processes(mark: str, folder: Path | None = None, tasks: tuple[bytes, ...] = (b"",)) -> list[int]:
    """This run's Ray processes (found by the mark in their environment, or by their working
    folder) whose name starts with ray::<one of tasks>: Ray names a worker after its task."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            ours = mark.encode() in (entry / "environ").read_bytes().split(b"\0")
            ours = ours or (folder is not None and (entry / "cwd").resolve() == folder.resolve())
        except OSError:
            continue
        if ours and any(command.startswith(b"ray::" + task) for task in tasks):
            found.append(int(entry.name))
    return found


def _shard_workers(mark: str) -> list[int]:
    return _ray_processes(mark, tasks=(b"run_shard",))


def _wait_until_gone(mark: str, limit_s: float) -> None:
    """Until the shards and the actors are gone: Ray stops them when their driver dies."""
    deadline = time.monotonic() + limit_s
    while _ray_processes(mark, tasks=(b"run_shard", b"LedgerService", b"Coordinator")):
        assert time.monotonic() < deadline, "shards outlived their driver"
        time.sleep(0.1)


def _kill_orphans(mark: str, folder: Path) -> None:
    """Ray's agent processes outlive a SIGKILLed driver."""
    for pid in _ray_processes(mark, folder):
        os.kill(pid, signal.SIGKILL)


def test_a_refused_key_on_one_shard_stops_every_shard(write, workdir, monkeypatch):
    monkeypatch.setenv("AIMLAPI_KEY_GOOD", "sk-good-key-123456")
    monkeypatch.setenv("AIMLAPI_KEY_BAD", "sk-bad-key-1234567")
    accounts = (
        "run:\n  poll_interval: 0.05\n  requests_per_minute: 600000\n  accounts:\n"
        "    - {key_env: AIMLAPI_KEY_GOOD, concurrency: 2}\n    - {key_env: AIMLAPI_KEY_BAD, concurrency: 2}\n"
    )
    manifest = write("m.yaml", manifest_text(jobs=40, run=accounts, prompt="a snail on a leaf"))
    config = SandboxConfig(gen_time=0.5, concurrency=8, render="shared", require_key="sk-good-key-123456")
    with running_sandbox(config) as strict:
        code, out, err = ray_run(manifest, strict.base_url, "--shards", "2", "--out", "auth", "--json")
        accepted = strict.stats()["submits"]["accepted"]

    assert code == 3, err
    assert "HTTP 401" in json.loads(out)["stop_reason"]
    # The good key's shard stopped too, long before its 20 jobs (0.5 s each, 2 at a time) were done.
    assert accepted < 20
    statuses = results(workdir / "auth")["status"].value_counts().to_dict()
    assert statuses.get("pending", 0) >= 20


def test_joining_a_running_cluster_with_ray_address(write, shared_sandbox, workdir, monkeypatch):
    """`ray start --head` (on loopback, in a folder of its own), then `--ray-address` to it."""
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # tests stay on loopback
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # Ray's socket paths must stay short
    port = _free_port()
    ray = Path(sys.executable).with_name("ray")
    start = [str(ray), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
             "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", str(temp)]  # fmt: skip
    subprocess.run(start, check=True, capture_output=True, timeout=120)
    try:
        manifest = write("m.yaml", manifest_text(jobs=10, run=run_section(600_000), prompt="a fox in snow"))
        shared_sandbox.reset()

        code, _, err = ray_run(
            manifest, shared_sandbox.base_url, "--ray-address", f"127.0.0.1:{port}", "--out", "j"
        )

        assert code == 0, err
        assert set(results(workdir / "j")["status"]) == {"completed"}
        assert shared_sandbox.stats()["submits"]["accepted"] == 10
        assert _processes_using(temp), "the cluster should outlive a run that joined it"
    finally:
        for pid in _processes_using(temp):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _processes_using(folder: Path) -> list[int]:
    """The cluster's processes: their command lines name its session folder."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(folder).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _mark_this_run(monkeypatch) -> str:
    """Ray's workers inherit the run's environment: the mark tells this run's workers from
    those of any other Ray run on the machine."""
    mark = f"VIDPIPE_TEST_RUN={uuid.uuid4().hex}"
    monkeypatch.setenv(*mark.split("="))
    return mark
