"""Maybe-paid submits are settled from the service's usage logs (pipeline/run/settle.py), against
the real sandbox over loopback: found ones are polled, never sent again; ones that never arrived
are sent once more after the grace period; without logs they stay uncertain, with one line."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from pipeline.sandbox import FaultConfig, SandboxConfig, ScriptedFault, running_sandbox
from tests.runner_helpers import ledger_statuses, manifest_text

FAST = "run: {concurrency: 2, poll_interval: 0.05, poll_max_interval: 0.1, retries: 2, settle_grace: 2}"


def faulty(*steps: ScriptedFault, **config) -> SandboxConfig:
    return SandboxConfig(gen_time=0.05, faults=FaultConfig(script=steps, late_seconds=2.0), **config)


def rows(out_dir: Path) -> list[dict]:
    with sqlite3.connect(out_dir / "ledger.sqlite") as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM jobs ORDER BY idx")]


def test_a_submit_taken_then_lost_is_found_in_the_logs_and_polled_not_sent_again(write, run_api, workdir):
    for kind in ("drop_after", "accept_504"):
        manifest = write(f"{kind}.yaml", manifest_text(jobs=2, run=FAST).replace("name: t", f"name: {kind}"))
        with running_sandbox(faulty(ScriptedFault("submit", kind))) as sandbox:
            result = run_api(sandbox, manifest)
            stats = sandbox.stats()
        assert result.code == 0, result.err
        assert stats["submits"]["accepted"] == 2, kind  # no second POST of the lost one
        assert stats["generations"]["completed_twice"] == {}
        settled = [row["settled"] for row in rows(workdir / "outputs" / kind)]
        assert settled.count("found") == 1, (kind, settled)


def test_a_submit_that_never_arrived_is_sent_once_more_after_the_grace(write, run_api, workdir):
    manifest = write("m.yaml", manifest_text(jobs=2, run=FAST))
    with running_sandbox(faulty(ScriptedFault("submit", "502"))) as sandbox:
        result = run_api(sandbox, manifest)
        stats = sandbox.stats()
    assert result.code == 0, result.err
    assert stats["submits"]["accepted"] == 2
    job = next(row for row in rows(workdir / "outputs" / "t") if row["settled"])
    assert job["settled"] == "not_arrived" and job["submits"] == 2 and job["status"] == "completed"


def test_an_answer_without_an_id_takes_it_from_x_inference_id(write, run_api, workdir):
    manifest = write("m.yaml", manifest_text(jobs=1, run=FAST))
    with running_sandbox(faulty(ScriptedFault("submit", "accept_no_id"))) as sandbox:
        result = run_api(sandbox, manifest)
        assert sandbox.stats()["submits"]["accepted"] == 1
    assert result.code == 0, result.err
    assert rows(workdir / "outputs" / "t")[0]["settled"] is None  # nothing to settle


def test_without_logs_the_job_stays_uncertain_with_one_line(write, run_api, workdir):
    manifest = write("m.yaml", manifest_text(jobs=2, run=FAST))
    config = faulty(ScriptedFault("submit", "drop_after"), logs_status=404)
    with running_sandbox(config) as sandbox:
        result = run_api(sandbox, manifest)
        assert sandbox.stats()["submits"]["accepted"] == 2
        lines = [line for line in result.err_lines if "settling is unavailable" in line]
        assert len(lines) == 1 and "404" in lines[0]
        assert sorted(ledger_statuses(workdir / "outputs" / "t").values()) == ["completed", "uncertain"]
        again = run_api(sandbox, manifest, "--retry-uncertain")  # still the user's way out
        assert again.code == 0, again.err
        assert sandbox.stats()["submits"]["accepted"] == 3


def test_a_rerun_settles_what_a_run_left_uncertain(write, run_api, workdir):
    """A run whose logs were unavailable leaves a job uncertain; the next run, with logs, finds
    the generation and polls it: nothing is sent again, no flag needed."""
    manifest = write("m.yaml", manifest_text(jobs=2, run=FAST))
    with running_sandbox(faulty(ScriptedFault("submit", "drop_after"))) as sandbox:
        sandbox.server.config = sandbox.server.config.replace(logs_status=404)
        assert run_api(sandbox, manifest).code == 1
        sandbox.server.config = sandbox.server.config.replace(logs_status=200)
        result = run_api(sandbox, manifest)
        assert result.code == 0, result.err
        assert sandbox.stats()["submits"]["accepted"] == 2
    assert [row["settled"] for row in rows(workdir / "outputs" / "t")].count("found") == 1


def test_reconcile_settles_on_demand_and_billing_lists_every_difference(write, run_api, cli, workdir):
    manifest = write("m.yaml", manifest_text(jobs=3, run=FAST))
    out = workdir / "outputs" / "t"
    # drop_before: the connection closes after the POST left, no generation made (no row).
    steps = (ScriptedFault("submit", "drop_after"), ScriptedFault("submit", "drop_before"))
    with running_sandbox(faulty(*steps, logs_status=404)) as sandbox:
        assert run_api(sandbox, manifest).code == 1
        assert sorted(ledger_statuses(out).values()) == ["completed", "uncertain", "uncertain"]
        refused = cli("reconcile", out)
        assert refused.code == 3 and "settling is unavailable: GET /v2/logs answered 404" in refused.err
        sandbox.server.config = sandbox.server.config.replace(logs_status=200)
        early = cli("reconcile", out)  # drop_before left no row, but its grace has not passed
        assert early.code == 1, early.err
        assert "1 found in the service's logs" in early.out and "not in the logs yet" in early.out
        done = cli("reconcile", out, "--grace", "0")
        assert done.code == 0, done.err
        assert "never arrived" in done.out
        assert sorted(ledger_statuses(out).values()) == ["completed", "pending", "submitted"]
        assert run_api(sandbox, manifest).code == 0
        assert sandbox.stats()["submits"]["accepted"] == 3  # the found one was polled, not resent
        billing = cli("reconcile", out, "--billing")
        assert billing.code == 0, billing.out + billing.err
        assert "0 difference(s)" in billing.out


def test_billing_shows_a_generation_the_ledger_does_not_know(write, run_api, cli, workdir):
    """Resent blindly (--retry-uncertain, no logs at the time), a lost submit is paid twice: the
    logs show the first generation billed, which the ledger no longer knows."""
    manifest = write("m.yaml", manifest_text(jobs=1, run=FAST))
    out = workdir / "outputs" / "t"
    with running_sandbox(faulty(ScriptedFault("submit", "drop_after"), logs_status=404)) as sandbox:
        assert run_api(sandbox, manifest).code == 1
        assert run_api(sandbox, manifest, "--retry-uncertain").code == 0
        time.sleep(0.3)  # the first generation completes (and is billed) meanwhile
        sandbox.server.config = sandbox.server.config.replace(logs_status=200)
        billing = cli("reconcile", out, "--billing")
    assert billing.code == 1
    assert "1 difference(s)" in billing.out
    assert "which the ledger does not know" in billing.out


def test_reconcile_sends_the_key_to_a_recorded_base_url_only_when_it_is_this_machine(
    write, run_api, cli, workdir, sandbox
):
    """A folder whose run went to another URL (someone else's, an old test server) does not
    get the key sent there unasked: one line, exit 2; --base-url says where to look."""
    out = workdir / "outputs" / "t"
    assert run_api(sandbox, write("m.yaml", manifest_text(jobs=1, run=FAST))).code == 0
    with sqlite3.connect(out / "ledger.sqlite") as db:
        (command,) = db.execute("SELECT command FROM runs").fetchone()
        db.execute(
            "UPDATE runs SET command = ?", (command.replace(sandbox.base_url, "https://old-test.example"),)
        )
    refused = cli("reconcile", out)
    assert refused.code == 2 and len(refused.err_lines) == 1, refused.err
    assert "https://old-test.example" in refused.err and "pass --base-url" in refused.err
    chosen = cli("reconcile", out, "--base-url", sandbox.base_url)
    assert chosen.code == 0, chosen.err


def test_reconcile_of_a_run_on_the_embedded_sandbox_says_there_is_nothing_to_settle(
    write, cli, workdir, sandbox
):
    """Free, and its logs ended with it: nothing to settle or bill-check, exit 0, even when a
    fresh sandbox's URL is given (its logs know nothing of this folder)."""
    out = workdir / "outputs" / "t"
    assert cli("run", write("m.yaml", manifest_text(jobs=2, run=FAST)), "--quiet").code == 0
    for flags in ((), ("--billing", "--base-url", sandbox.base_url)):
        result = cli("reconcile", out, *flags)
        assert result.code == 0, result.err
        assert result.out.splitlines() == [
            f"{out} ran on the embedded sandbox (free; its logs ended with its run): nothing to settle or "
            "bill-check (a rerun sends any uncertain job again)"
        ]


def test_without_logs_a_gateway_502_to_a_submit_is_retried_as_the_contract_says(write, run_api, workdir):
    """Nothing could settle it: the 5xx answer says it was not taken, so it is sent again
    rather than left uncertain; the logs are asked once, before the first POST."""
    manifest = write("m.yaml", manifest_text(jobs=2, run=FAST))
    with running_sandbox(faulty(ScriptedFault("submit", "502"), logs_status=404)) as sandbox:
        result = run_api(sandbox, manifest)
        assert sandbox.stats()["submits"]["accepted"] == 2
    assert result.code == 0, result.err
    assert sorted(ledger_statuses(workdir / "outputs" / "t").values()) == ["completed", "completed"]
    assert [line for line in result.err_lines if "settling is unavailable" in line] != []
