"""`vidpipe plan`: what would run, what it costs, how long it takes, and the budget."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.run.cadence import poll_delays, polls_until
from pipeline.run.plan import credits_for

SWEEP = """
version: 1
name: sweep
provider: aimlapi
defaults: {duration: 5}
matrix: {seed: [1, 2, 3, 4], ratio: ["16:9", "9:16"]}
jobs:
  - {prompt: a}
  - {prompt: b, duration: 10}
run: {concurrency: 4, budget: 10000000}
"""


def test_plan_counts_costs_and_time(write, cli):
    result = cli("plan", write("m.yaml", SWEEP))
    lines = result.out.splitlines()
    assert lines[0] == "sweep: 16 jobs on aimlapi (gen3a_turbo)"
    assert "  seed: 4 values: 1 x4, 2 x4, 3 x4, 4 x4" in lines
    assert "  ratio: 2 values: '16:9' x8, '9:16' x8" in lines
    # 8 x 525,000 (5 s) + 8 x 1,050,000 (10 s)
    assert "Estimated cost: 12,600,000 credits (about $6.30)" in lines
    assert "Budget: 10,000,000 credits (OVER BUDGET)" in lines


def test_over_budget_exits_3_with_the_reason(write, cli):
    result = cli("plan", write("m.yaml", SWEEP))
    assert result.code == 3
    assert result.err_lines == [
        "error: the plan needs 12,600,000 credits, over the budget of 10,000,000 (run.budget or --budget)"
    ]


def test_budget_flag_overrides_the_manifest(write, cli):
    assert cli("plan", write("m.yaml", SWEEP), "--budget", "20000000").code == 0


def test_time_estimate_uses_waves_of_concurrency(write, cli):
    result = cli("plan", write("m.yaml", SWEEP), "--budget", "99999999", "--json")
    plan = json.loads(result.out)
    # 16 jobs / 4 at once = 4 waves of about 25 s (gen3a_turbo's typical time)
    assert plan["wall_seconds"] == 100.0
    assert plan["jobs"] == 16 and plan["credits"] == 12_600_000 and plan["usd"] == 6.3
    assert plan["swept"]["seed"] == {"1": 4, "2": 4, "3": 4, "4": 4}
    faster = json.loads(
        cli("plan", write("m.yaml", SWEEP), "--budget", "99999999", "--json", "--concurrency", "16").out
    )
    assert faster["wall_seconds"] == 25.0


def test_out_writes_the_job_table(write, cli, workdir):
    result = cli("plan", write("m.yaml", SWEEP), "--budget", "99999999", "--out", "jobs.csv")
    assert result.code == 0
    table = pd.read_csv(workdir / "jobs.csv")
    assert len(table) == 16
    assert table["job_id"].is_unique
    assert {"job_id", "prompt", "seed", "ratio", "duration", "model", "source"} <= set(table.columns)
    assert not list(workdir.glob(".jobs.csv.*"))  # no temporary file left behind


def test_out_jsonl_writes_tags_as_a_list(write, cli, workdir):
    text = "version: 1\njobs:\n  - {prompt: a, tags: [coast, dusk]}\n  - {prompt: b}\n"
    assert cli("plan", write("m.yaml", text), "--out", "jobs.jsonl").code == 0
    rows = [json.loads(line) for line in (workdir / "jobs.jsonl").read_text().splitlines()]
    assert [row["tags"] for row in rows] == [["coast", "dusk"], []]


def test_out_refuses_unknown_formats(write, cli):
    result = cli("plan", write("m.yaml", SWEEP), "--out", "jobs.xlsx")
    assert result.code == 2
    assert result.err_lines == [
        "error: jobs.xlsx: unknown table format; expected a .csv, .jsonl or .parquet file"
    ]


def test_credits_follow_duration():
    assert credits_for("gen3a_turbo", 5) == 525_000
    assert credits_for("gen3a_turbo", 10) == 1_050_000


def test_poll_schedule_backs_off_to_a_cap():
    delays = poll_delays(2, 15)
    assert [round(next(delays), 2) for _ in range(7)] == [2, 3, 4.5, 6.75, 10.12, 15, 15]
    assert polls_until(25, 2, 15) == 5  # 2 + 3 + 4.5 + 6.75 + 10.125 = 26.4 s >= 25 s
    assert polls_until(0, 2, 15) == 1


@pytest.mark.parametrize("concurrency", ["0", "-1", "x"])
def test_bad_flags_are_usage_errors(write, cli, concurrency):
    result = cli("plan", write("m.yaml", SWEEP), "--concurrency", concurrency)
    assert result.code == 2
    assert "--concurrency" in result.err
