"""`vidpipe status` and the dataset export, on real sandbox runs."""

from __future__ import annotations

import json

from pipeline.sandbox import FaultConfig, SandboxConfig, ScriptedFault, running_sandbox
from tests.runner_helpers import manifest_text, sha256_of


def test_status_counts_failures_uncertain_and_says_how_to_resume(write, run_api, cli, workdir):
    faults = FaultConfig(
        script=(ScriptedFault("submit", "drop_after"), ScriptedFault("generation", "error", skip=1)),
        error_message="Content moderation: rejected",
    )
    manifest = write("m.yaml", manifest_text(jobs=4, run="run: {concurrency: 1, poll_interval: 0.05}"))
    with running_sandbox(SandboxConfig(gen_time=0.05, faults=faults, logs_status=404)) as sandbox:
        assert run_api(sandbox, manifest).code == 1
        same_service = f"vidpipe run m.yaml --provider aimlapi --base-url {sandbox.base_url}"
    result = cli("status", "outputs/t")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == "outputs/t: 4 jobs: 2 completed, 1 failed, 1 uncertain"
    assert any(line.endswith(": Content moderation: rejected") and "failed" in line for line in lines)
    assert any(line.startswith("  uncertain: ") for line in lines)
    assert f"{same_service} --retry-uncertain" in result.out
    assert lines[-1] == f"To resume: {same_service}"
    as_json = json.loads(cli("status", "outputs/t", "--json").out)
    assert as_json["counts"] == {"completed": 2, "failed": 1, "uncertain": 1}
    assert as_json["credits"] == 2 * 525_000


def test_status_of_a_folder_without_a_run(cli, workdir):
    result = cli("status", workdir)
    assert result.code == 2
    assert result.err_lines == ["error: .: no ledger.sqlite here; expected the output folder of a run"]


def test_export_writes_videos_and_metadata_for_the_current_manifest(write, run_api, cli, sandbox, workdir):
    manifest = write("m.yaml", manifest_text(jobs=3))
    assert run_api(sandbox, manifest).code == 0
    assert cli("export", "outputs/t", "--to", "ds").code == 0
    records = [json.loads(line) for line in (workdir / "ds" / "metadata.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in records] == [1, 2, 3]
    for record in records:
        assert sha256_of(workdir / "ds" / record["file_name"]) == record["sha256"]
        assert {"prompt", "model", "ratio", "duration", "job_id"} <= set(record)

    # The manifest shrinks: the dataset follows it, and nothing is deleted from the run itself.
    assert run_api(sandbox, write("m.yaml", manifest_text(jobs=2))).code == 0
    assert cli("export", "outputs/t", "--to", "ds").out == "Exported 2 videos to ds/ with metadata.jsonl\n"
    assert len(list((workdir / "ds").glob("*.mp4"))) == 2
    assert len(list((workdir / "outputs" / "t" / "videos").glob("*.mp4"))) == 3


def test_output_dataset_true_exports_at_the_end_of_the_run(write, run_api, sandbox, workdir):
    text = manifest_text(jobs=2, extra="output: {dataset: true}")
    result = run_api(sandbox, write("m.yaml", text), "--json")
    assert result.code == 0
    assert json.loads(result.out)["dataset"] == "outputs/t/dataset"
    assert len((workdir / "outputs" / "t" / "dataset" / "metadata.jsonl").read_text().splitlines()) == 2


def test_export_to_a_file_or_an_unwritable_place_is_one_line(write, run_api, cli, sandbox, workdir):
    assert run_api(sandbox, write("m.yaml", manifest_text(jobs=1))).code == 0
    (workdir / "afile").write_text("x")
    result = cli("export", "outputs/t", "--to", "afile")
    assert (result.code, result.err_lines) == (
        2,
        ["error: afile: not a folder; give --to a new or empty folder"],
    )
    result = cli("export", "outputs/t", "--to", "/proc/nope")
    assert result.code not in (0, 1, 70) and len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("error: /proc/nope: ") and "Traceback" not in result.err


def test_export_never_mixes_layouts_or_other_files_in_one_folder(write, run_api, cli, sandbox, workdir):
    assert run_api(sandbox, write("m.yaml", manifest_text(jobs=2))).code == 0
    assert cli("export", "outputs/t", "--to", "ds").code == 0
    before = sorted(path.name for path in (workdir / "ds").iterdir())
    result = cli("export", "outputs/t", "--to", "ds", "--format", "webdataset")
    assert result.code == 2 and result.err_lines == [
        "error: ds: holds a videofolder export, not an earlier webdataset export; "
        "export to a new or empty folder (or remove that one first)"
    ]
    assert sorted(path.name for path in (workdir / "ds").iterdir()) == before
    assert cli("export", "outputs/t", "--to", "wds", "--format", "webdataset").code == 0
    assert cli("export", "outputs/t", "--to", "wds").code == 2
    (workdir / "notes").mkdir()
    (workdir / "notes" / "todo.txt").write_text("mine")
    result = cli("export", "outputs/t", "--to", "notes")
    assert result.code == 2 and "holds other files" in result.err
    assert cli("export", "outputs/t", "--to", "ds").code == 0  # an earlier export of its layout: updated


def test_a_malformed_rankings_file_is_a_warning_not_a_crash(write, run_api, cli, sandbox, workdir):
    out = workdir / "outputs" / "t"
    assert run_api(sandbox, write("m.yaml", manifest_text(jobs=1))).code == 0
    (out / "rankings.json").write_text(json.dumps({"rankings": {"model": {"ranking": [{"value": "a"}]}}}))
    result = run_api(sandbox, write("m.yaml", manifest_text(jobs=2)))
    assert result.code == 0, result.err
    assert [line for line in result.err_lines if "rankings.json" in line] == [
        "warning: outputs/t/rankings.json: ranking by model is not as vidpipe rank writes it; not drawn "
        "(vidpipe rank OUTPUT_DIR --by FIELD writes it again)"
    ]
    for document in ({"model": "x"}, {"rankings": {"seed": {"ranking": [{"value": 1, "score": None}]}}}):
        (out / "rankings.json").write_text(json.dumps(document))
        result = cli("report", "outputs/t")
        assert result.code == 0, result.err
    assert (out / "report.html").is_file()
