"""The automatic checks end to end: a run against the sandbox making broken videos, `vidpipe qc`,
and what `vidpipe export` makes of the verdicts (left out, the dataset card, webdataset shards)."""

from __future__ import annotations

import gc
import hashlib
import json
import re
import sqlite3
import warnings

import pytest
import webdataset as wds

from pipeline.sandbox import FaultConfig, SandboxConfig, ScriptedFault, running_sandbox
from tests.runner_helpers import manifest_text, results, sha256_of

# Six jobs, one after another: the first whole, then one of each broken kind.
FLAWS = ("black", "frozen", "short", "wrong_size", "undecodable")
PROBLEMS = {
    "black": "black for 5.0 s",
    "frozen": "frozen for 5.0 s",
    "short": "lasts 2.5 s; 5 s was asked",
    "wrong_size": "is 180x320, not 16:9",
    "undecodable": "stops decoding after N frames: Invalid data found when processing input",
}
SERIAL = "run: {concurrency: 1, poll_interval: 0.05}"


def read_webdataset(shards: list[str]) -> list[dict]:
    # webdataset 1.0 leaves each shard's file to the garbage collector (a ResourceWarning, which
    # pytest makes an error): not ours to fix, so it is silenced here and collected at once.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        samples = list(wds.WebDataset(shards, shardshuffle=False))
        gc.collect()
    return samples


@pytest.fixture
def broken_run(write, run_api, workdir):
    script = tuple(ScriptedFault("video", flaw, skip=int(i == 0)) for i, flaw in enumerate(FLAWS))
    manifest = write("m.yaml", manifest_text(jobs=6, run=SERIAL))
    with running_sandbox(SandboxConfig(gen_time=0.02, faults=FaultConfig(script=script))) as sandbox:
        result = run_api(sandbox, manifest)
    assert result.code == 0, result.err  # broken videos are still completed jobs
    return workdir / "outputs" / "t"


def test_each_video_is_checked_as_it_arrives_and_stays_completed(broken_run):
    table = results(broken_run)
    assert list(table["status"]) == ["completed"] * 6
    assert list(table["qc"]) == ["passed", *["failed"] * 5]
    assert [re.sub(r"after \d+ frames", "after N frames", text) for text in table["qc_problems"]] == [
        "",
        *(PROBLEMS[flaw] for flaw in FLAWS),
    ]
    lines = (broken_run / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["qc_problems"] for line in lines][:2] == [[], ["black for 5.0 s"]]


def test_the_report_marks_the_cells_that_failed(broken_run, cli):
    assert cli("report", broken_run).code == 0
    page = (broken_run / "report.html").read_text()
    assert page.count(">QC failed</span>") == 5
    assert 'title="black for 5.0 s">QC failed' in page


def test_vidpipe_qc_reruns_the_checks_on_what_is_on_disk(broken_run, cli):
    videos = sorted((broken_run / "videos").glob("*.mp4"))
    first = results(broken_run)["path"][0]
    (broken_run / first).write_bytes(b"not a video any more")
    with sqlite3.connect(broken_run / "ledger.sqlite") as db:  # a folder from before the checks
        db.execute("UPDATE jobs SET qc = NULL, qc_problems = NULL")
    result = cli("qc", broken_run)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == f"{first}: does not open as a video: Invalid data found when processing input"
    assert len(lines) == 7 and lines[-1] == "Checked 6 videos: 6 failed"
    assert list(results(broken_run)["qc"]) == ["failed"] * 6
    assert list(results(broken_run)["status"]) == ["completed"] * 6
    assert len(videos) == 6


def test_vidpipe_qc_exits_0_when_all_pass_and_says_so(write, run_api, cli, sandbox, workdir):
    assert run_api(sandbox, write("m.yaml", manifest_text(jobs=2))).code == 0
    result = cli("qc", "outputs/t")
    assert (result.code, result.out) == (0, "Checked 2 videos: 0 failed\n")


def test_vidpipe_qc_of_a_folder_without_a_run(cli, workdir):
    result = cli("qc", workdir)
    assert result.code == 2
    assert result.err_lines == ["error: .: no ledger.sqlite here; expected the output folder of a run"]


def test_export_leaves_out_failed_videos_unless_asked(broken_run, cli, workdir):
    result = cli("export", broken_run, "--to", "ds")
    assert result.out.splitlines() == [
        "Exported 1 videos to ds/ with metadata.jsonl",
        "Left out 5 that failed their checks (--include-failed-qc exports them)",
    ]
    records = [json.loads(line) for line in (workdir / "ds" / "metadata.jsonl").read_text().splitlines()]
    assert [(r["qc"], r["qc_problems"]) for r in records] == [("passed", [])]
    assert len(list((workdir / "ds").glob("*.mp4"))) == 1

    result = cli("export", broken_run, "--to", "ds", "--include-failed-qc")
    assert result.out == "Exported 6 videos to ds/ with metadata.jsonl\n"
    records = [json.loads(line) for line in (workdir / "ds" / "metadata.jsonl").read_text().splitlines()]
    assert [r["qc"] for r in records] == ["passed", *["failed"] * 5]
    assert len(list((workdir / "ds").glob("*.mp4"))) == 6


def test_videos_not_checked_yet_are_exported_and_counted(broken_run, cli, workdir):
    with sqlite3.connect(broken_run / "ledger.sqlite") as db:  # a folder from before the checks
        db.execute("UPDATE jobs SET qc = NULL, qc_problems = NULL WHERE idx > 0")
    assert cli("export", broken_run, "--to", "ds").out == "Exported 6 videos to ds/ with metadata.jsonl\n"
    card = (workdir / "ds" / "README.md").read_text()
    assert "- failed their automatic checks: 0 (left out); not checked yet: 5" in card
    assert cli("report", broken_run).code == 0


def test_the_dataset_card_says_what_was_asked_and_what_failed(broken_run, cli, workdir):
    ranked = {"value": 1, "score": 0.7, "low": 0.5, "high": 0.9, "wins": 3, "losses": 1, "ties": 0}
    seed = {"by": "seed", "comparisons": 4, "marks": 0, "ranking": [{**ranked, "stars": 0, "flags": 1}]}
    (broken_run / "rankings.json").write_text(json.dumps({"version": 1, "rankings": {"seed": seed}}))
    assert cli("export", broken_run, "--to", "ds").code == 0
    card = (workdir / "ds" / "README.md").read_text()
    assert card.startswith("# ds\n")
    assert f"from `m.yaml`: sha256 `{sha256_of(workdir / 'm.yaml')}`" in card
    assert "Its 6 requests, in order: sha256 `" in card
    assert "| seed | 1 (1), 2 (1), 3 (1), 4 (1), 5 (1), 6 (1) |" in card
    assert "| prompt | a red kite over a beach (6) |" in card
    assert "- jobs in the manifest: 6; completed: 6" in card
    assert "- videos in this dataset: 1" in card
    assert "- failed their automatic checks: 5 (left out); not checked yet: 0" in card
    assert "- credits spent: 3,150,000" in card
    assert "| gen3a_turbo | 1 | 1 |" in card
    for problem in ("black for N s", "frozen for N s", "lasts N s; N s was asked", "is NxN, not N:N"):
        assert f"| {problem} | 1 |" in card
    assert "By seed (Bradley-Terry scores, 95% bootstrap intervals; 4 comparisons" in card
    assert "| 1 | 1 | +0.70 | [+0.50, +0.90] | 3 | 1 | 0 | 0 | 1 |" in card


def test_webdataset_shards_read_back_with_the_webdataset_package(broken_run, cli, workdir):
    result = cli(
        "export",
        broken_run,
        "--to",
        "wds",
        "--format",
        "webdataset",
        "--shard-size",
        "4",
        "--include-failed-qc",
    )
    assert result.out == "Exported 6 videos to wds/ in 2 webdataset shards\n", result.err
    shards = sorted(str(path) for path in (workdir / "wds").glob("shard-*.tar"))
    assert [path.rsplit("/", 1)[1] for path in shards] == ["shard-000000.tar", "shard-000001.tar"]
    samples = read_webdataset(shards)
    assert [sample["__key__"] for sample in samples] == [f"{i:06d}" for i in range(6)]
    table = results(broken_run)
    for sample, row in zip(samples, table.to_dict("records"), strict=True):
        metadata = json.loads(sample["json"])
        assert metadata["job_id"] == row["job_id"] and metadata["qc"] == row["qc"]
        assert hashlib.sha256(sample["mp4"]).hexdigest() == metadata["sha256"] == row["sha256"]
    assert (workdir / "wds" / "README.md").is_file()

    # A smaller export leaves no stale shard behind.
    assert cli("export", broken_run, "--to", "wds", "--format", "webdataset").code == 0
    assert sorted(path.name for path in (workdir / "wds").glob("*.tar")) == ["shard-000000.tar"]


def resized_clip(path) -> None:
    """A clip whose frame size changes mid-stream (two MPEG-TS segments, 64x64 then 96x64)."""
    import io

    import av
    import numpy as np

    def segment(width: int, height: int) -> bytes:
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mpegts") as container:
            stream = container.add_stream("mpeg2video", rate=24)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for seed in range(12):
                picture = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        return buffer.getvalue()

    path.write_bytes(segment(64, 64) + segment(96, 64))


def test_vidpipe_qc_checks_a_clip_whose_frame_size_changes(write, run_api, cli, sandbox, workdir):
    assert run_api(sandbox, write("m.yaml", manifest_text(jobs=2))).code == 0
    out = workdir / "outputs" / "t"
    first = results(out)["path"][0]
    resized_clip(out / first)
    result = cli("qc", "outputs/t")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"{first}: lasts 1.0 s; 5 s was asked; is 96x64, not 16:9",
        "Checked 2 videos: 1 failed",
    ]
    assert list(results(out)["qc"]) == ["failed", "passed"]
