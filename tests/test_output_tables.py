"""The output table in every format: declared types, files shared as the umask says, and
spreadsheet formulas defused in CSV only."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.runner_helpers import REPO

MANIFEST = """\
version: 1
name: t
sandbox:
  gen_time: 0.05
  faults:
    script:
      - {target: generation, kind: error, skip: 2}
    error_message: '=HYPERLINK("http://evil.example","click")'
run: {concurrency: 1, poll_interval: 0.05}
output:
  formats: [csv, jsonl, parquet]
jobs:
  - prompt: A lighthouse at dusk.
    tags: [coast, a]
  - prompt: "=HYPERLINK(\\"http://evil.example\\",\\"x\\")"
  - prompt: "@SUM(A1:A2) and -slow pan +zoom"
    seed: 5
"""


@pytest.fixture
def finished_run(write, cli):
    manifest = write("m.yaml", MANIFEST)
    result = cli("run", manifest, "--quiet")
    assert result.code == 1, result.out + result.err  # the third job's generation ends in error
    return manifest.parent / "outputs" / "t"


def test_parquet_keeps_each_columns_type_even_when_empty(finished_run):
    schema = pq.read_schema(finished_run / "results.parquet")
    assert schema.field("submitted_at").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("completed_at").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("credits").type == pa.int64()
    assert schema.field("tags").type == pa.list_(pa.string())
    assert schema.field("watermark").type == pa.bool_()  # never set: still a boolean
    assert schema.field("last_image_url").type == pa.string()  # never set: still text
    assert schema.field("in_manifest").type == pa.bool_()
    table = pd.read_parquet(finished_run / "results.parquet")
    assert list(table["tags"].map(list)) == [["coast", "a"], [], []]
    assert table["credits"].tolist()[:2] == [525_000, 525_000]
    assert str(table["submitted_at"].dt.tz) == "UTC"


def test_jsonl_has_lists_integers_and_utc_times(finished_run):
    rows = [json.loads(line) for line in (finished_run / "results.jsonl").read_text().splitlines()]
    assert [row["tags"] for row in rows] == [["coast", "a"], [], []]
    assert rows[0]["credits"] == 525_000 and isinstance(rows[0]["credits"], int)
    assert rows[0]["submitted_at"].endswith("Z") and "T" in rows[0]["submitted_at"]
    assert rows[0]["watermark"] is None
    assert rows[1]["prompt"] == '=HYPERLINK("http://evil.example","x")'  # the exact text


def test_csv_defuses_formulas_and_writes_empty_tags_as_empty(finished_run):
    table = pd.read_csv(finished_run / "results.csv", keep_default_na=False)
    assert table["prompt"].tolist() == [
        "A lighthouse at dusk.",
        '\'=HYPERLINK("http://evil.example","x")',
        "'@SUM(A1:A2) and -slow pan +zoom",
    ]
    assert table["error_message"].tolist()[2].startswith("'=HYPERLINK(")
    assert table["tags"].tolist() == ["coast|a", "", ""]
    assert table["submitted_at"].str.endswith("Z").all()


def test_the_export_metadata_has_tags_as_a_list(finished_run, cli, workdir):
    assert cli("export", finished_run, "--to", "ds").code == 0
    rows = [json.loads(line) for line in (workdir / "ds" / "metadata.jsonl").read_text().splitlines()]
    assert sorted(map(str, (row["tags"] for row in rows))) == ["['coast', 'a']", "[]"]


def test_plan_out_csv_defuses_formulas(write, cli):
    manifest = write("m.yaml", MANIFEST)
    assert cli("plan", manifest, "--out", "jobs.csv").code == 0
    text = (manifest.parent / "jobs.csv").read_text()
    assert "'=HYPERLINK(" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_tables_are_shared_as_the_umask_says(write, cli, umask, mode):
    manifest = write("m.yaml", MANIFEST)
    previous = os.umask(umask)
    try:
        cli("run", manifest, "--quiet")
        cli("plan", manifest, "--out", "jobs.jsonl")
    finally:
        os.umask(previous)
    out = manifest.parent / "outputs" / "t"
    for path in (
        out / "results.csv",
        out / "results.jsonl",
        out / "results.parquet",
        manifest.parent / "jobs.jsonl",
    ):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path


def test_parquet_asked_for_without_pyarrow_is_refused_before_anything_is_sent(write):
    manifest = write("m.yaml", MANIFEST)
    hide_pyarrow = "import sys; sys.modules['pyarrow'] = None; from pipeline.cli import main; sys.exit(main(sys.argv[1:]))"
    result = subprocess.run(
        [sys.executable, "-c", hide_pyarrow, "run", "m.yaml", "--quiet"],
        cwd=manifest.parent,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: output.formats asks for parquet, which needs pyarrow: pip install 'vidpipe[parquet]' "
        "(or drop parquet from output.formats); nothing was sent"
    )
    assert not (manifest.parent / "outputs" / "t" / "ledger.sqlite").exists()


def test_an_empty_table_keeps_its_types_in_parquet(tmp_path):
    from pipeline.write.columns import OUTPUT_COLUMN_NAMES, OUTPUT_COLUMNS
    from pipeline.write.table import write_table

    write_table(pd.DataFrame(columns=list(OUTPUT_COLUMN_NAMES)), tmp_path / "t.parquet", OUTPUT_COLUMNS)
    assert pq.read_schema(tmp_path / "t.parquet").field("tags").type == pa.list_(pa.string())
