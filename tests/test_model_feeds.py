"""Prices and deprecations from the service's model feeds, end to end: `vidpipe plan`, `run`
and `models` against the real sandbox over loopback, its ETag and 304, the fallbacks to the
cache and to the shipped snapshot, and what each deprecation status does to a run."""

from __future__ import annotations

import pytest
from aiohttp import web

from pipeline.net import model_feeds
from pipeline.sandbox import SandboxConfig, running_sandbox
from tests.hostile import HostileServer, serve
from tests.runner_helpers import manifest_text, results

PLAN = """
name: sweep
provider: aimlapi
defaults: {duration: 5}
matrix: {seed: [1, 2]}
jobs:
  - {prompt: a}
  - {prompt: b, duration: 10}
"""
SNAPSHOT = "prices: shipped snapshot of 2026-08-21"


@pytest.fixture
def online(monkeypatch):
    """The feeds are asked (the other tests read only the test's own, empty, cache)."""
    monkeypatch.delenv("VIDPIPE_OFFLINE")


def feeds_sandbox(credits_per_second=105_000, **models):
    settings = {"gen_time": 0.05, "models": models, "credits_per_second": credits_per_second}
    return running_sandbox(SandboxConfig.from_mapping(settings))


def plan(cli, monkeypatch, base_url, manifest):
    monkeypatch.setenv("AIMLAPI_BASE_URL", base_url)
    return cli("plan", manifest)


def test_plan_reads_live_prices_then_reuses_them_on_a_304(online, write, cli, monkeypatch):
    """The sandbox charges twice the snapshot's rate here: the plan's figures are the live ones."""
    manifest = write("m.yaml", PLAN)
    with feeds_sandbox(credits_per_second=210_000) as sandbox:
        first = plan(cli, monkeypatch, sandbox.base_url, manifest)
        second = plan(cli, monkeypatch, sandbox.base_url, manifest)
        feeds = sandbox.stats()["model_feeds"]
    assert first.code == second.code == 0
    for result in (first, second):
        assert "prices: live from 127.0.0.1" in result.out.splitlines()
        assert "Estimated cost: 6,300,000 credits (about $3.15)" in result.out.splitlines()
        (row,) = [line.split() for line in result.out.splitlines() if line.startswith("  gen3a_turbo ")]
        assert row == ["gen3a_turbo", "4", "6,300,000", "$3.15", "live", "from", "127.0.0.1"]
    assert feeds == {"requests": 4, "not_modified": 2}  # catalogue and deprecations, each twice


def test_unreachable_service_falls_back_to_the_cache_and_says_how_old(online, write, cli, monkeypatch):
    manifest = write("m.yaml", PLAN)
    with feeds_sandbox() as sandbox:
        assert plan(cli, monkeypatch, sandbox.base_url, manifest).code == 0
        base_url = sandbox.base_url
    result = plan(cli, monkeypatch, base_url, manifest)  # the same URL, nothing listening now
    (line,) = [line for line in result.out.splitlines() if line.startswith("prices:")]
    assert line.startswith("prices: cached just now (the service could not be reached: ")
    assert "deprecations: cached just now (the service could not be reached: " in result.out
    assert result.code == 0


def test_nothing_cached_falls_back_to_the_shipped_snapshot(online, write, cli, monkeypatch):
    with feeds_sandbox() as sandbox:
        base_url = sandbox.base_url
    result = plan(cli, monkeypatch, base_url, write("m.yaml", PLAN))
    lines = result.out.splitlines()
    (line,) = [line for line in lines if line.startswith("prices:")]
    assert line.startswith(f"{SNAPSHOT} (the service could not be reached: Cannot connect to host 127.0.0.1:")
    assert "Estimated cost: 3,150,000 credits (about $1.57)" in lines


def test_an_older_service_without_the_feeds_gets_one_line_each(online, write, cli, monkeypatch):
    with feeds_sandbox(routes=False) as sandbox:
        result = plan(cli, monkeypatch, sandbox.base_url, write("m.yaml", PLAN))
    lines = result.out.splitlines()
    assert f"{SNAPSHOT} (the service has no /v1/models (404))" in lines
    assert "deprecations: not checked (the service has no /v1/models/deprecations (404))" in lines
    assert result.code == 0


def test_a_withdrawn_model_stops_the_run_before_any_post(online, write, run_api):
    with feeds_sandbox(withdrawn={"gen3a_turbo": "runway/gen4_turbo"}) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=2)))
        submits = sandbox.stats()["submits"]
    assert result.code == 2
    assert result.err_lines == [
        "error: m.yaml: model gen3a_turbo is withdrawn: the service answers 404; "
        "use runway/gen4_turbo (no longer served); nothing was sent"
    ]
    assert submits["accepted"] == submits["rejected_total"] == 0


def test_the_sandbox_answers_404_to_a_withdrawn_model(write, run_api):
    """Offline (the feed unread), the submit itself is refused, as the service refuses it, and a
    404 to a submit stops the run with the service's message."""
    with feeds_sandbox(withdrawn={"gen3a_turbo": None}) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=1)))
        submits = sandbox.stats()["submits"]
    assert result.code == 3
    assert result.err_lines[-1].endswith("(Model gen3a_turbo is no longer available)")
    assert submits["accepted"] == 0 and submits["rejected"] == {"404": 1}


def test_a_deprecated_model_warns_with_its_shutdown_date_and_runs(online, write, run_api):
    with feeds_sandbox(deprecated={"gen3a_turbo": "2027-01-31"}) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=2)))
        accepted = sandbox.stats()["submits"]["accepted"]
    assert result.code == 0 and accepted == 2
    assert result.err_lines == [
        "warning: model gen3a_turbo is deprecated and shuts down on 2027-01-31 (the vendor retires this version)"
    ]


def test_a_superseded_name_is_sent_and_recorded_as_its_replacement(online, workdir, write, run_api):
    with feeds_sandbox(superseded={"gen3a_turbo": "runway/gen4_turbo"}) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=2)))
    assert result.code == 0, result.err
    assert result.err_lines == [
        "warning: model gen3a_turbo is superseded by runway/gen4_turbo: sent and recorded as runway/gen4_turbo"
    ]
    assert set(results(workdir / "outputs" / "t")["model"]) == {"runway/gen4_turbo"}


def test_a_model_superseded_after_a_run_keeps_its_jobs_ids_so_a_rerun_pays_nothing_again(
    online, workdir, write, run_api
):
    manifest = write("m.yaml", manifest_text(jobs=2))
    with feeds_sandbox() as sandbox:
        assert run_api(sandbox, manifest).code == 0
    before = sorted(results(workdir / "outputs" / "t")["job_id"])
    with feeds_sandbox(superseded={"gen3a_turbo": "runway/gen4_turbo"}) as sandbox:
        result = run_api(sandbox, manifest)
        accepted = sandbox.stats()["submits"]["accepted"]
    assert result.code == 0, result.err
    assert accepted == 0  # the same jobs, found done
    assert sorted(results(workdir / "outputs" / "t")["job_id"]) == before


def test_a_superseded_name_whose_replacement_is_not_catalogued_is_sent_as_written(
    online, workdir, write, run_api
):
    with feeds_sandbox(superseded={"gen3a_turbo": "runway/gen9_hyper"}) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=2)))
        accepted = sandbox.stats()["submits"]["accepted"]
    assert result.code == 0, result.err
    assert accepted == 2
    assert result.err_lines == [
        "warning: model gen3a_turbo is superseded by runway/gen9_hyper, which is not in vidpipe's "
        "catalogue: sent as gen3a_turbo (the service still resolves it)"
    ]
    assert set(results(workdir / "outputs" / "t")["model"]) == {"gen3a_turbo"}


def test_a_superseded_names_jobs_are_checked_against_the_replacement_before_any_post(online, write, run_api):
    text = "name: t\ndefaults: {duration: 5}\njobs:\n  - {prompt: a}\n"
    with feeds_sandbox(superseded={"gen3a_turbo": "google/veo-3.1-t2v-fast"}) as sandbox:
        result = run_api(sandbox, write("m.yaml", text))
        accepted = sandbox.stats()["submits"]["accepted"]
    assert result.code == 2
    assert accepted == 0
    assert result.err_lines[-1] == (
        "error: m.yaml:2: defaults.duration: 5 is not allowed; google/veo-3.1-t2v-fast takes 4, 6 or 8"
    )


def test_models_stays_offline_until_refresh(online, cli, monkeypatch):
    with feeds_sandbox(deprecated={"luma/ray-2": "2027-02-01"}) as sandbox:
        monkeypatch.setenv("AIMLAPI_BASE_URL", sandbox.base_url)
        offline = cli("models", "luma")
        assert sandbox.stats()["model_feeds"]["requests"] == 0
        refreshed = cli("models", "luma", "--refresh")
        assert sandbox.stats()["model_feeds"]["requests"] == 2
    assert offline.out.splitlines()[-1] == "Prices: none read yet; --refresh asks the service."
    lines = refreshed.out.splitlines()
    assert lines[1].split()[:3] == ["model", "seconds", "price"]
    assert "luma/ray-2: deprecated, shuts down on 2027-02-01" in lines
    assert lines[-1] == "Prices: live from 127.0.0.1."
    cached = cli("models", "luma", "--json")  # no sandbox now: the kept answer
    ray2 = next(item for item in __import__("json").loads(cached.out) if item["id"] == "luma/ray-2")
    assert ray2["deprecation"] == {"status": "deprecated", "shutdown_at": "2027-02-01", "replaced_by": None}
    assert ray2["price_source"] == "cached just now" and ray2["price"] is None  # a shutdown date: unlisted


EMBEDDED = """
name: t
sandbox: {gen_time: 0.05, models: {withdrawn: {gen3a_turbo: runway/gen4_turbo}}}
jobs:
  - {prompt: a}
"""


def test_the_embedded_sandbox_reads_its_feed_from_the_manifest(write, cli):
    manifest = write("m.yaml", EMBEDDED)
    expected = [
        "error: m.yaml: model gen3a_turbo is withdrawn: the service answers 404; "
        "use runway/gen4_turbo (no longer served); nothing was sent"
    ]
    planned = cli("plan", manifest)
    ran = cli("run", manifest, "--quiet")
    assert (planned.code, planned.err_lines) == (ran.code, ran.err_lines) == (2, expected)
    bad = cli("plan", write("bad.yaml", EMBEDDED.replace("withdrawn:", "gone:")))
    assert bad.code == 2 and "gone" in bad.err


HOSTILE_ANSWERS = [
    lambda request: web.json_response(
        {
            "data": [
                {
                    "id": "gen3a_turbo",
                    "pricing": {"kind": "fixed", "units": [{"name": "second", "price": "NaN"}]},
                }
            ]
        }
        if request.path == "/v1/models"
        else {"data": [{"id": "gen3a_turbo", "status": ["withdrawn"]}, "x", None]}
    ),
    lambda request: web.Response(body=b"[" * 100_000, content_type="application/json"),
    lambda request: web.Response(body=b"\x1b[2J not json", headers={"ETag": "x" * 10_000}),
    lambda request: web.Response(status=302, headers={"Location": "http://169.254.169.254/"}),
    lambda request: web.Response(status=500, text="boom"),
]


@pytest.mark.parametrize("answer", HOSTILE_ANSWERS)
def test_a_hostile_feed_prices_from_the_snapshot_and_never_crashes(online, write, cli, monkeypatch, answer):
    """Bad prices, bad JSON, a redirect, an error: the plan goes on, priced from the snapshot."""
    server = HostileServer(answer)
    with serve(server) as base_url:
        result = plan(cli, monkeypatch, base_url, write("m.yaml", PLAN))
    assert result.code == 0, result.err
    assert "Estimated cost: 3,150,000 credits (about $1.57)" in result.out.splitlines()
    (row,) = [line.split() for line in result.out.splitlines() if line.startswith("  gen3a_turbo ")]
    assert row[4:8] == ["shipped", "snapshot", "of", "2026-08-21"]
    assert "\x1b" not in result.out + result.err
    assert all("Authorization" not in seen for seen in server.seen)


def test_an_answer_over_the_size_limit_is_refused(online, write, cli, monkeypatch):
    monkeypatch.setattr(model_feeds, "MAX_BYTES", 1000)
    with serve(HostileServer(lambda request: web.json_response({"data": [], "pad": "x" * 2000}))) as base_url:
        result = plan(cli, monkeypatch, base_url, write("m.yaml", PLAN))
    assert f"{SNAPSHOT} (/v1/models answered more than 1,000 bytes)" in result.out.splitlines()
