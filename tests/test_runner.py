"""`vidpipe run` against the real sandbox over loopback: results, faults, money, resume."""

from __future__ import annotations

import av
import pytest

from pipeline.sandbox import FaultConfig, SandboxConfig, ScriptedFault, running_sandbox
from tests.conftest import KEY
from tests.runner_helpers import REPO, accepted_twice, ledger_statuses, manifest_text, results, sha256_of


def test_happy_path_writes_videos_table_and_ledger(write, run_api, sandbox, workdir):
    result = run_api(sandbox, write("m.yaml", manifest_text(jobs=6)))
    assert result.code == 0, result.err
    table = results(workdir / "outputs" / "t")
    assert len(table) == 6
    assert set(table["status"]) == {"completed"}
    assert sorted(table["seed"]) == [1, 2, 3, 4, 5, 6]
    for row in table.itertuples():
        path = workdir / "outputs" / "t" / row.path
        assert sha256_of(path) == row.sha256 and path.stat().st_size == row.bytes
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == (320, 180)
            assert float(stream.duration * stream.time_base) == pytest.approx(5, abs=0.3)
    assert table["credits"].tolist() == [525000.0] * 6
    assert (table["submits"] == 1).all() and table["generation_id"].str.len().gt(0).all()
    stats = sandbox.stats()
    assert stats["submits"]["accepted"] == 6 and accepted_twice(stats) == {}
    assert not list((workdir / "outputs" / "t" / "videos").glob(".*part"))
    assert (workdir / "outputs" / "t" / "report.html").is_file()
    assert len(list((workdir / "outputs" / "t" / "posters").glob("*.jpg"))) == 6


def test_rerun_skips_completed_jobs_and_pays_nothing(write, run_api, sandbox, workdir):
    manifest = write("m.yaml", manifest_text(jobs=3))
    assert run_api(sandbox, manifest).code == 0
    first = results(workdir / "outputs" / "t")
    again = run_api(sandbox, manifest, "--json")
    assert again.code == 0
    assert sandbox.stats()["submits"]["accepted"] == 3
    assert results(workdir / "outputs" / "t")["sha256"].tolist() == first["sha256"].tolist()


def test_growing_the_manifest_submits_only_the_new_jobs(write, run_api, sandbox, workdir):
    assert run_api(sandbox, write("m.yaml", manifest_text(jobs=3))).code == 0
    assert run_api(sandbox, write("m.yaml", manifest_text(jobs=5))).code == 0
    assert sandbox.stats()["submits"]["accepted"] == 5
    assert len(results(workdir / "outputs" / "t")) == 5


@pytest.mark.parametrize(
    ("endpoint", "variant"),
    [
        ("legacy", {"video_shape": "list"}),
        ("legacy", {"video_shape": "object", "id_key": "generation_id", "id_form": "uuid_model"}),
        ("universal", {"video_shape": "object", "submit_status": 200, "id_form": "numeric"}),
        (
            "universal",
            {"video_shape": "list_objects", "running_status": "processing", "usage_key": "tokens_used"},
        ),
        ("legacy", {"video_shape": "string", "id_form": "nanoid", "pending_video": "empty_list"}),
        ("legacy", {"video_shape": "object_legacy", "unknown_id": "unknown", "queued_status": "waiting"}),
    ],
)
def test_every_endpoint_and_response_shape(write, run_api, workdir, endpoint, variant):
    # The Runway models' published universal schema requires a first frame.
    extra = ""
    if endpoint == "universal":
        write("first.png", (REPO / "manifests" / "images" / "first.png").read_bytes())
        extra = "defaults: {image_url: first.png}"
    with running_sandbox(SandboxConfig(gen_time=0.05, **variant)) as sandbox:
        manifest = write("m.yaml", manifest_text(jobs=2, extra=extra))
        result = run_api(sandbox, manifest, "--endpoint", endpoint)
        assert result.code == 0, result.err
        assert sandbox.stats()["submits"]["by_endpoint"] == {endpoint: 2}
    table = results(workdir / "outputs" / "t")
    assert set(table["status"]) == {"completed"}
    assert table["credits"].tolist() == [525000.0, 525000.0]


def test_transient_faults_are_retried_until_every_job_completes(write, run_api, workdir):
    script = [
        ScriptedFault("submit", "429_retry_after", times=2),
        ScriptedFault("submit", "429"),
        ScriptedFault("submit", "503"),
        ScriptedFault("submit", "500"),  # (a 502 to a submit is settled: tests/test_settling.py)
        ScriptedFault("poll", "500"),
        ScriptedFault("poll", "drop"),
        ScriptedFault("poll", "429"),
        ScriptedFault("download", "truncated"),
        ScriptedFault("download", "short"),
        ScriptedFault("download", "expired"),
    ]
    config = SandboxConfig(gen_time=0.05, faults=FaultConfig(script=tuple(script), retry_after=0.2))
    with running_sandbox(config) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=4)))
        stats = sandbox.stats()
    assert result.code == 0, result.err
    assert set(results(workdir / "outputs" / "t")["status"]) == {"completed"}
    assert stats["faults_total"] == 11
    assert stats["submits"]["accepted"] == 4 and accepted_twice(stats) == {}
    assert stats["downloads"]["expired"] == 1 and stats["downloads"]["truncated"] == 1


def test_a_submit_lost_after_sending_is_uncertain_never_resent_blindly(write, run_api, workdir):
    """Where the usage logs cannot settle it (here they answer 404)."""
    faults = FaultConfig(script=(ScriptedFault("submit", "drop_after"),))
    config = SandboxConfig(gen_time=0.05, faults=faults, logs_status=404)
    manifest = write("m.yaml", manifest_text(jobs=3))
    with running_sandbox(config) as sandbox:
        first = run_api(sandbox, manifest)
        assert first.code == 1
        table = results(workdir / "outputs" / "t")
        assert sorted(table["status"]) == ["completed", "completed", "uncertain"]
        uncertain = table[table["status"] == "uncertain"].iloc[0]
        assert "may have been received" in uncertain["error_message"]
        assert sandbox.stats()["generations"]["created"] == 3  # the lost one exists and runs

        assert run_api(sandbox, manifest).code == 1  # a plain rerun does not pay again
        assert sandbox.stats()["submits"]["accepted"] == 3

        assert run_api(sandbox, manifest, "--retry-uncertain").code == 0
        stats = sandbox.stats()
    assert stats["submits"]["accepted"] == 4 and len(accepted_twice(stats)) == 1
    final = results(workdir / "outputs" / "t")
    assert set(final["status"]) == {"completed"}
    assert final.set_index("job_id").loc[uncertain["job_id"], "submits"] == 2


def test_a_dropped_submit_is_uncertain_even_if_the_server_made_nothing(write, run_api, workdir):
    """The client cannot tell a drop before the generation was made from one after: both are
    `uncertain` until the usage logs settle them (here they answer 404); only a refused
    connection proves nothing was sent."""
    config = SandboxConfig(
        gen_time=0.05, faults=FaultConfig(script=(ScriptedFault("submit", "drop_before"),)), logs_status=404
    )
    with running_sandbox(config) as sandbox:
        assert run_api(sandbox, write("m.yaml", manifest_text(jobs=2))).code == 1
        assert sandbox.stats()["generations"]["created"] == 1
    assert sorted(results(workdir / "outputs" / "t")["status"]) == ["completed", "uncertain"]


def test_a_refused_connection_is_retried_because_nothing_was_sent(write, run_api, workdir):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with running_sandbox(SandboxConfig(gen_time=0.05)) as sandbox:
        moved = type("Sandbox", (), {"base_url": f"http://127.0.0.1:{port}"})()
        result = run_api(moved, write("m.yaml", manifest_text(jobs=1, run="run: {retries: 1}")))
        assert sandbox.stats()["submits"]["accepted"] == 0
    assert result.code == 1
    row = results(workdir / "outputs" / "t").iloc[0]
    assert row["status"] == "failed"
    assert row["error_message"].startswith("cannot connect to http://127.0.0.1:")


def test_a_generation_error_fails_its_job_with_the_apis_message(write, run_api, workdir):
    faults = FaultConfig(
        script=(ScriptedFault("generation", "error"),), error_message="Content moderation: rejected"
    )
    with running_sandbox(SandboxConfig(gen_time=0.05, faults=faults)) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=2)))
    assert result.code == 1
    failed = results(workdir / "outputs" / "t").query("status == 'failed'")
    assert len(failed) == 1
    assert failed.iloc[0]["error_message"] == "Content moderation: rejected"


def test_opt_in_resubmits_a_failed_generation_and_counts_it(write, run_api, workdir):
    run = "run: {concurrency: 2, poll_interval: 0.05, poll_max_interval: 0.2, resubmit_failed: 1}"
    faults = FaultConfig(script=(ScriptedFault("generation", "error"),))
    with running_sandbox(SandboxConfig(gen_time=0.05, faults=faults)) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=2, run=run)), "--json")
        stats = sandbox.stats()
    assert result.code == 0, result.err
    assert '"resubmits": 1' in result.out
    table = results(workdir / "outputs" / "t")
    assert set(table["status"]) == {"completed"} and table["resubmits"].sum() == 1
    assert stats["submits"]["accepted"] == 3


def test_a_rejected_request_fails_at_once_without_retrying(write, run_api, workdir):
    long_prompt = "a long prompt " * 45  # 630 characters: our limit raised to 1000, the server keeps 512
    run = "run: {concurrency: 2, poll_interval: 0.05, prompt_limit: 1000}"
    with running_sandbox(SandboxConfig(gen_time=0.05)) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=1, run=run, prompt=long_prompt)))
        stats = sandbox.stats()
    assert result.code == 1
    assert stats["submits"]["rejected"] == {"400": 1}
    row = results(workdir / "outputs" / "t").iloc[0]
    assert (row["status"], row["error_name"]) == ("failed", "http_400")
    assert row["error_message"].startswith("HTTP 400: ")


def test_a_bad_key_stops_the_run_after_the_first_answers(write, cli, monkeypatch, workdir):
    monkeypatch.setenv("AIMLAPI_KEY", "sk-wrong")
    with running_sandbox(SandboxConfig(gen_time=0.05, require_key=KEY)) as sandbox:
        result = cli(
            "run",
            write("m.yaml", manifest_text(jobs=40)),
            "--provider",
            "aimlapi",
            "--base-url",
            sandbox.base_url,
        )
        stats = sandbox.stats()
    assert result.code == 3
    assert stats["submits"]["rejected"]["401"] <= 4  # one wave at most, not 40
    assert result.err_lines[-1].startswith("error: the API refused the key (HTTP 401, check AIMLAPI_KEY): ")
    assert set(ledger_statuses(workdir / "outputs" / "t").values()) == {"pending"}


def test_out_of_credits_stops_the_run_and_says_so(write, run_api, workdir):
    faults = FaultConfig(script=(ScriptedFault("submit", "403"),))
    with running_sandbox(SandboxConfig(gen_time=0.05, faults=faults)) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=10)), "--concurrency", "1")
        stats = sandbox.stats()
    assert result.code == 3
    assert stats["submits"]["accepted"] == 0
    assert result.err_lines == [
        "error: the API refused the request (HTTP 403, usually no credits left): "
        "You've run out of credits. Please top up your balance to continue."
    ]


def test_the_key_never_leaves_the_api_host_or_lands_in_a_file(write, run_api, workdir):
    with running_sandbox(SandboxConfig(gen_time=0.05)) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=3)))
        stats = sandbox.stats()
    assert result.code == 0
    assert stats["downloads"]["ok"] == 3 and stats["downloads"]["with_authorization"] == 0
    for path in (workdir / "outputs").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in result.out + result.err


def test_a_missing_key_is_a_clear_error_before_anything_is_sent(write, cli, monkeypatch):
    monkeypatch.delenv("AIMLAPI_KEY", raising=False)
    result = cli("run", write("m.yaml", manifest_text(jobs=1)), "--provider", "aimlapi")
    assert result.code == 2
    assert result.err_lines == [
        "error: AIMLAPI_KEY is not set: export AIMLAPI_KEY=<your key> to use provider aimlapi"
    ]


@pytest.mark.parametrize("url", ["http://api.example.com", "ftp://127.0.0.1", "not a url"])
def test_plain_http_is_refused_except_on_loopback(write, cli, monkeypatch, url):
    monkeypatch.setenv("AIMLAPI_KEY", KEY)
    result = cli("run", write("m.yaml", manifest_text(jobs=1)), "--provider", "aimlapi", "--base-url", url)
    assert result.code == 2
    assert "expected https://HOST (plain http only for localhost)" in result.err


def test_the_budget_is_checked_before_anything_is_sent(write, run_api, sandbox):
    result = run_api(sandbox, write("m.yaml", manifest_text(jobs=4)), "--budget", "2000000")
    assert result.code == 3
    assert "over the budget of 2,000,000" in result.err and "nothing was sent" in result.err
    assert sandbox.stats()["submits"]["accepted"] == 0


def test_limit_runs_only_the_first_jobs(write, run_api, sandbox, workdir):
    assert run_api(sandbox, write("m.yaml", manifest_text(jobs=5)), "--limit", "2").code == 0
    assert sandbox.stats()["submits"]["accepted"] == 2
    assert results(workdir / "outputs" / "t")["seed"].tolist() == [1, 2]


def test_the_window_keeps_at_most_n_generations_in_flight(write, run_api, workdir):
    """End to end, coarsely: never more than N generations at the service, and every job done.
    That a freed slot is refilled at once is proven on a fake clock (tests/unit/test_window.py)."""
    jobs, concurrency = 24, 4
    run = f"run: {{concurrency: {concurrency}, poll_interval: 0.02, poll_max_interval: 0.05}}"
    config = SandboxConfig(gen_time=0.2, gen_time_dist="fixed", concurrency=concurrency)
    with running_sandbox(config) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=jobs, run=run)), "--json")
        stats = sandbox.stats()
    assert result.code == 0, result.err
    assert stats["generations"]["peak_in_flight"] <= concurrency
    assert stats["generations"]["completed"] == jobs and stats["submits"]["accepted"] == jobs
    assert set(results(workdir / "outputs" / "t")["status"]) == {"completed"}


def test_the_budget_is_enforced_while_running_on_what_the_service_reports(write, run_api, workdir):
    """The service charges more than estimated: submitting stops before the budget is passed."""
    config = SandboxConfig(gen_time=0.05, credits_per_second=210_000)  # twice the estimate
    run = "run: {concurrency: 1, poll_interval: 0.05, poll_max_interval: 0.1, budget: 3150000}"
    with running_sandbox(config) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=6, run=run)))
        stats = sandbox.stats()
    assert result.code == 3
    assert result.err_lines[-1].startswith("error: stopped submitting: the next job would bring this run to")
    spent = results(workdir / "outputs" / "t")["credits"].replace("", 0).astype(float).sum()
    assert spent <= 3_150_000
    assert stats["submits"]["accepted"] == 3  # 3 x 1,050,000 reported; a 4th would pass the budget


def test_a_video_url_that_is_not_https_is_refused(write, run_api, workdir):
    with running_sandbox(SandboxConfig(gen_time=0.05, cdn_host="cdn.example.com")) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=1)))
        assert sandbox.stats()["downloads"]["ok"] == 0
    assert result.code == 1
    row = results(workdir / "outputs" / "t").iloc[0]
    assert (row["status"], row["error_name"]) == ("generated", "download")
    assert "expected https (plain http only on loopback)" in row["error_message"]


@pytest.mark.parametrize(
    ("template", "row", "expected"),
    [
        ("{job_id}.mp4", {"id": ""}, "abc123.mp4"),
        ("{id}-{ratio}-{seed}-{job_id}.mp4", {"id": "../../etc"}, "etc-16x9-7-abc123.mp4"),
        ("{model}-{job_id}.mp4", {"model": "runway/gen4_turbo"}, "runway-gen4_turbo-abc123.mp4"),
    ],
)
def test_file_names_are_made_safe(template, row, expected):
    from pipeline.run.runplan import render_filename

    base = {
        "job_id": "abc123",
        "id": "x",
        "seed": 7,
        "ratio": "16:9",
        "duration": 5,
        "model": "gen3a_turbo",
        "index": 0,
    }
    assert render_filename(template, {**base, **row}) == expected
