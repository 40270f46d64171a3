"""Paths where a careless client pays twice, pays for nothing, or keeps paying after it should stop.

Each test here comes from a way the runner once could (or a reviewer showed it could) lose money.
"""

from __future__ import annotations

import signal
import time

from aiohttp import web

from pipeline.read.jobs import load_batch
from pipeline.run.ledger import RunLock
from pipeline.sandbox import FaultConfig, SandboxConfig, ScriptedFault, running_sandbox
from tests.conftest import KEY
from tests.hostile import HostileServer, serve
from tests.runner_helpers import ledger_statuses, manifest_text, results, start_runner, wait_for_submits

FAST = "run: {concurrency: 2, poll_interval: 0.05, poll_max_interval: 0.1, retries: 2}"


def scripted_api(poll_answer):
    """An API that gives every submit a new id and answers every poll with `poll_answer`."""
    counter = {"posts": 0, "gets": 0}

    def answer(request: web.Request) -> web.Response:
        if request.method == "POST":
            counter["posts"] += 1
            return web.json_response({"id": f"gen-{counter['posts']}", "status": "queued"})
        counter["gets"] += 1
        return web.json_response(poll_answer)

    return HostileServer(answer), counter


def test_two_runs_on_one_output_folder_cannot_both_pay(write, run_api, sandbox, workdir):
    manifest = write("m.yaml", manifest_text(jobs=2))
    with RunLock(workdir / "outputs" / "t"):
        result = run_api(sandbox, manifest)
    assert result.code == 3
    assert result.err_lines[-1].startswith("error: another vidpipe run (pid ")
    assert "give this run another --out" in result.err
    assert sandbox.stats()["submits"]["accepted"] == 0
    assert run_api(sandbox, manifest).code == 0  # the lock goes with its holder


def test_retry_uncertain_refused_by_the_budget_leaves_jobs_uncertain(write, run_api, workdir):
    faults = FaultConfig(script=(ScriptedFault("submit", "drop_after"),))
    config = SandboxConfig(gen_time=0.05, faults=faults, logs_status=404)  # nothing settles it
    manifest = write("m.yaml", manifest_text(jobs=2, run=FAST))
    with running_sandbox(config) as sandbox:
        assert run_api(sandbox, manifest).code == 1
        refused = run_api(sandbox, manifest, "--retry-uncertain", "--budget", "100")
        assert refused.code == 3 and "nothing was sent" in refused.err
        assert sorted(ledger_statuses(workdir / "outputs" / "t").values()) == ["completed", "uncertain"]
        assert run_api(sandbox, manifest).code == 1
        assert sandbox.stats()["submits"]["accepted"] == 2


def test_a_lost_id_is_uncertain_and_never_paid_for_again(write, run_api, workdir):
    """Status `unknown` is the contract's other 404: the generation may have run and been billed."""
    api, counter = scripted_api({"id": "x", "status": "unknown"})
    manifest = write("m.yaml", manifest_text(jobs=1, run=FAST))
    with serve(api) as base_url:
        assert run_api(base_url, manifest).code == 1
        assert run_api(base_url, manifest).code == 1
    assert counter["posts"] == 1
    row = results(workdir / "outputs" / "t").iloc[0]
    assert row["status"] == "uncertain" and "no longer knows this generation" in row["error_message"]


def test_a_completed_generation_without_a_url_is_polled_again_not_resubmitted(write, run_api, workdir):
    api, counter = scripted_api({"id": "x", "status": "completed", "video": []})
    manifest = write("m.yaml", manifest_text(jobs=1, run=FAST))
    with serve(api) as base_url:
        assert run_api(base_url, manifest).code == 1
        polls_first_run = counter["gets"]
        assert run_api(base_url, manifest).code == 1
    assert counter["posts"] == 1 and counter["gets"] > polls_first_run
    row = results(workdir / "outputs" / "t").iloc[0]
    assert (row["status"], row["error_name"]) == ("generated", "download")


def test_a_timed_out_generation_keeps_its_slot_because_it_still_runs(write, run_api, workdir):
    run = "run: {concurrency: 1, poll_interval: 0.05, poll_max_interval: 0.1, timeout: 0.5}"
    with running_sandbox(SandboxConfig(gen_time=3, gen_time_dist="fixed")) as sandbox:
        assert run_api(sandbox, write("m.yaml", manifest_text(jobs=3, run=run))).code == 1
        stats = sandbox.stats()
    assert stats["generations"]["peak_in_flight"] == 1
    assert sorted(ledger_statuses(workdir / "outputs" / "t").values()) == ["pending", "pending", "timed_out"]


def test_a_401_stops_submits_that_wait_in_backoff(write, run_api, workdir):
    script = (
        ScriptedFault("submit", "429_retry_after", times=3, retry_after=5),
        ScriptedFault("submit", "401"),
    )
    run = "run: {concurrency: 4, poll_interval: 0.05}"
    with running_sandbox(SandboxConfig(gen_time=0.05, faults=FaultConfig(script=script))) as sandbox:
        started = time.monotonic()
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=8, run=run)))
        elapsed = time.monotonic() - started
        stats = sandbox.stats()
    assert result.code == 3
    assert elapsed < 3, "submits sleeping in backoff must give up at once"
    assert stats["submits"]["accepted"] == 0
    assert set(ledger_statuses(workdir / "outputs" / "t").values()) == {"pending"}


def test_jobs_waiting_for_their_turn_are_not_marked_uncertain_when_stopped(write):
    """Only a POST that left can be uncertain; one still waiting on the rate limit was never sent."""
    run = "run: {concurrency: 20, requests_per_minute: 30, poll_interval: 0.5}"
    manifest = write("m.yaml", manifest_text(jobs=20, run=run))
    out_dir = manifest.parent / "outputs" / "t"
    with running_sandbox(SandboxConfig(gen_time=5)) as sandbox:
        runner = start_runner(manifest, sandbox.base_url, "--quiet")
        wait_for_submits(out_dir, count=10)
        time.sleep(0.3)
        runner.send_signal(signal.SIGTERM)  # stop submitting: the waiting submits give up
        time.sleep(0.1)
        runner.send_signal(signal.SIGTERM)  # and stop now, without waiting for the generations
        runner.communicate(timeout=30)
        accepted = sandbox.stats()["submits"]["accepted"]
    statuses = list(ledger_statuses(out_dir).values())
    assert runner.returncode == 130
    assert statuses.count("submitted") == accepted
    assert statuses.count("uncertain") == 0
    assert statuses.count("pending") == 20 - accepted


def test_an_error_writing_a_video_is_recorded_on_its_job(write, run_api, sandbox, workdir):
    """A disk problem is not a reason to lose track of a paid generation: it stays `generated`."""
    manifest = write("m.yaml", manifest_text(jobs=2, run=FAST))
    job_id = load_batch(manifest).table["job_id"].iloc[1]
    videos = workdir / "outputs" / "t" / "videos"
    (videos / f"{job_id}.mp4").mkdir(parents=True)  # the file cannot be written where a folder is
    assert run_api(sandbox, manifest).code == 1
    row = results(workdir / "outputs" / "t").set_index("job_id").loc[job_id]
    assert (row["status"], row["error_name"]) == ("generated", "download")
    assert row["error_message"].startswith("cannot write the video to ")


def test_a_key_echoed_by_the_server_is_not_repeated_anywhere(write, run_api, workdir):
    def echo(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        return web.json_response(
            {"message": f"bad request from {auth} (key {KEY})", "statusCode": 400}, status=400
        )

    api = HostileServer(echo)
    with serve(api) as base_url:
        result = run_api(base_url, write("m.yaml", manifest_text(jobs=1)), "--json")
    assert result.code == 1
    assert KEY not in result.out + result.err
    for path in (workdir / "outputs").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert "Bearer ***" in results(workdir / "outputs" / "t").iloc[0]["error_message"]


def test_a_404_to_a_submit_stops_the_run(write, run_api, workdir):
    api = HostileServer(
        lambda request: web.json_response({"message": "Cannot POST /v2/x", "statusCode": 404}, status=404)
    )
    with serve(api) as base_url:
        result = run_api(base_url, write("m.yaml", manifest_text(jobs=5, run=FAST)))
    assert result.code == 3
    assert "check --base-url and --endpoint" in result.err
    assert len(api.seen) <= 2  # one per slot at most, not one per job


def test_a_400_to_a_poll_makes_the_job_uncertain_not_polled_forever(write, run_api, workdir):
    def answer(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response({"id": "g", "status": "queued"})
        return web.json_response({"message": "Bad generation_id", "statusCode": 400}, status=400)

    with serve(HostileServer(answer)) as base_url:
        result = run_api(base_url, write("m.yaml", manifest_text(jobs=1, run=FAST + "\n")))
    assert result.code == 1
    assert results(workdir / "outputs" / "t").iloc[0]["status"] == "uncertain"


def test_429s_mean_later_not_failed_however_many(write, run_api, workdir):
    """429 is also the concurrency limit: it is retried for as long as the time limit allows."""
    script = (ScriptedFault("submit", "429", times=6),)
    run = "run: {concurrency: 1, poll_interval: 0.05, retries: 2}"
    with running_sandbox(SandboxConfig(gen_time=0.05, faults=FaultConfig(script=script))) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=2, run=run)))
        stats = sandbox.stats()
    assert result.code == 0, result.err
    assert stats["submits"]["rejected"] == {"429": 6} and stats["submits"]["accepted"] == 2


def test_a_poster_that_cannot_be_made_never_undoes_a_paid_job(write, run_api, sandbox, workdir, monkeypatch):
    def broken(video, poster, width=240):
        raise RuntimeError("codec exploded")

    monkeypatch.setattr("pipeline.run.publishing.extract_poster", broken)
    manifest = write("m.yaml", manifest_text(jobs=2, run=FAST))
    assert run_api(sandbox, manifest).code == 0
    assert set(ledger_statuses(workdir / "outputs" / "t").values()) == {"completed"}
    assert run_api(sandbox, manifest).code == 0
    assert sandbox.stats()["submits"]["accepted"] == 2
