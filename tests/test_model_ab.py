"""manifests/model-ab.yaml, made small, end to end on the sandbox: each model's submits carry
only the fields it declares, under its own names, and the table and report show the models."""

from __future__ import annotations

import json
import re

import yaml

from pipeline import catalogue
from tests.runner_helpers import REPO, results

MODELS = ["google/veo-3.1-t2v-fast", "alibaba/wan-2-6-t2v", "pixverse/v5.5/text-to-video"]


def small_model_ab(extra_defaults: dict | None = None, **run) -> str:
    """The shipped manifest with one prompt (3 models x 2 seeds = 6 jobs) and fast settings."""
    manifest = yaml.safe_load((REPO / "manifests" / "model-ab.yaml").read_text())
    manifest["jobs"] = manifest["jobs"][:1]
    manifest["defaults"].update(extra_defaults or {})
    manifest["run"] = {"concurrency": 6, "poll_interval": 0.05, "poll_max_interval": 0.1, **run}
    manifest["name"] = "t"
    return yaml.safe_dump(manifest, sort_keys=False)


def test_each_model_gets_only_its_declared_fields_under_its_own_names(write, run_api, sandbox, workdir, cli):
    manifest = write("m.yaml", small_model_ab({"generate_audio": True}))
    result = run_api(sandbox, manifest)
    assert result.code == 0, result.err
    got = sandbox.stats()["submits"]["fields_by_model"]
    assert sorted(got) == sorted(MODELS)
    for model, fields in got.items():
        assert set(fields) <= set(catalogue.request_schema(model)["properties"]), model
        assert fields["model"] == 2 and "ratio" not in fields and "watermark" not in fields
    assert {"aspect_ratio", "seed", "negative_prompt", "enhance_prompt", "generate_audio"} <= set(
        got[MODELS[0]]
    )
    assert "enhance_prompt" not in got[MODELS[1]]  # per_model gave it to Veo only
    assert "generate_audio_switch" in got[MODELS[2]] and "generate_audio" not in got[MODELS[2]]
    table = results(workdir / "outputs" / "t")
    assert set(table["status"]) == {"completed"}
    assert sorted(zip(table["model"], table["duration"], strict=True)) == sorted(
        [(MODELS[0], 6)] * 2 + [(MODELS[1], 5)] * 2 + [(MODELS[2], 5)] * 2
    )
    assert set(table["qc"]) == {"passed"}, list(zip(table["model"], table["qc_problems"], strict=True))
    status = cli("status", str(workdir / "outputs" / "t"))  # no price known for these models
    assert status.code == 0, status.err
    assert status.out.startswith("outputs/t: 6 jobs: 6 completed")


def test_a_budget_refuses_a_run_with_no_known_price_before_any_post(write, run_api, sandbox):
    result = run_api(sandbox, write("m.yaml", small_model_ab(budget=10_000_000)))
    assert result.code == 2
    assert result.err_lines == [
        "error: run.budget is set, but 6 jobs have no known price (alibaba/wan-2-6-t2v, "
        "google/veo-3.1-t2v-fast, pixverse/v5.5/text-to-video); remove the budget to run them; nothing was sent"
    ]
    assert sandbox.stats()["submits"]["accepted"] == 0


def test_the_shipped_manifest_plans_24_jobs_priced_by_the_sandbox(cli):
    result = cli("plan", str(REPO / "manifests" / "model-ab.yaml"))
    assert result.code == 0, result.err
    assert "model-ab: 24 jobs on sandbox" in result.out
    assert "price unknown" not in result.out
    for model in ("google/veo-3.1-t2v-fast", "alibaba/wan-2-6-t2v", "pixverse/v5.5/text-to-video"):
        assert re.search(rf"{re.escape(model)} +8 +[\d,]+ +\$[\d.]+ +the sandbox's price list", result.out)


def test_compare_mode_and_rank_by_model_include_veo_at_its_own_duration(
    write, run_api, sandbox, workdir, cli
):
    """Veo's per_model duration (6 s, the others 5 s) does not split its jobs from the others':
    compare mode pairs it, and a vote or star on it counts for `rank --by model`."""
    import json

    assert run_api(sandbox, write("m.yaml", small_model_ab())).code == 0
    out = workdir / "outputs" / "t"
    assert cli("report", "outputs/t", "--cols", "model").code == 0
    page = (out / "report.html").read_text()
    data = json.loads(re.search(r'id="vote-data">(.*?)</script>', page).group(1))
    paired = {data["candidates"][i][1] for pair in data["pairs"] for i in pair}
    assert paired == set(MODELS), data["pairs"]
    table = results(out)
    job = {(row.model, row.seed): row.job_id for row in table.itertuples()}
    at = "2026-12-01T15:20:03Z"
    votes = [
        {"a": job[(MODELS[0], 11)], "b": job[(MODELS[1], 11)], "outcome": "a", "at": at},
        {"job": job[(MODELS[0], 12)], "mark": "star", "at": at},
    ]
    write("v.jsonl", "".join(json.dumps(vote) + "\n" for vote in votes))
    assert cli("votes", "import", "outputs/t", "v.jsonl").code == 0
    ranked = cli("rank", "outputs/t", "--by", "model", "--json")
    assert ranked.code == 0, ranked.err
    ranking = json.loads(ranked.out)
    assert (ranking["comparisons"], ranking["marks"], ranking["ignored"]) == (1, 1, 0)
    assert ranking["ranking"][0]["value"] == MODELS[0]


def test_plan_with_a_budget_and_no_known_price_refuses_as_run_does(write, cli, sandbox, monkeypatch):
    monkeypatch.setenv("AIMLAPI_BASE_URL", sandbox.base_url)
    text = small_model_ab(budget=10_000_000).replace("provider: sandbox", "provider: aimlapi")
    result = cli("plan", write("m.yaml", text))
    assert result.code == 2
    assert "a run refuses to start: some jobs have no known price" in result.out
    assert "within budget" not in result.out
    assert result.err_lines[-1] == (
        "error: run.budget is set, but 6 jobs have no known price (alibaba/wan-2-6-t2v, "
        "google/veo-3.1-t2v-fast, pixverse/v5.5/text-to-video); remove the budget to run them"
    )


def test_run_warns_before_submitting_when_adapt_nearest_changes_jobs(write, run_api, sandbox, cli):
    manifest = write("m.yaml", small_model_ab({"duration": 5}, adapt="nearest"))
    manifest.write_text(manifest.read_text().replace("duration: 6", "duration: 5"))
    plan = cli("plan", manifest)
    note = "run.adapt: nearest {} 2 of 6 jobs a value their model takes instead of the one asked"
    assert f"warning: {note.format('will send')}" in plan.err_lines
    result = run_api(sandbox, manifest)
    assert result.code == 0, result.err
    assert f"warning: {note.format('sends')}" in result.err_lines


def test_the_embedded_sandbox_charges_what_plan_priced_from_its_price_list(write, cli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    manifest = write("m.yaml", small_model_ab())
    planned = json.loads(cli("plan", manifest, "--json").out)["credits"]
    result = cli("run", manifest, "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["credits_spent"] == summary["credits_planned"] == planned
    assert planned != 6 * 105_000 * 5  # not the flat Runway rate for every model


def test_model_specific_fields_are_in_the_table_the_export_and_the_card(
    write, run_api, sandbox, workdir, cli
):
    manifest = write("m.yaml", small_model_ab({"generate_audio": True, "resolution": "720p"}))
    assert run_api(sandbox, manifest).code == 0
    folder = workdir / "outputs" / "t"
    table = results(folder)
    assert set(table["negative_prompt"]) == {"blurry, text, watermark"}
    assert set(table["resolution"]) == {"720p"}
    assert list(table["generate_audio"]).count(True) == 6
    veo = table[table["model"] == MODELS[0]]
    assert set(veo["extra"]) == {'{"enhance_prompt": false}'}
    assert set(table[table["model"] != MODELS[0]]["extra"].fillna("")) == {""}
    exported = cli("export", str(folder), "--to", str(workdir / "ds"))
    assert exported.code == 0, exported.err
    lines = [json.loads(line) for line in (workdir / "ds" / "metadata.jsonl").read_text().splitlines()]
    assert {line["negative_prompt"] for line in lines} == {"blurry, text, watermark"}
    assert {line["extra"] for line in lines if line["model"] == MODELS[0]} == {'{"enhance_prompt": false}'}
    card = (workdir / "ds" / "README.md").read_text()
    assert "| negative_prompt | blurry, text, watermark (6) |" in card
    assert "| extra |" in card
