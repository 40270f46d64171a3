"""Manifests that name any catalogued model: each job is checked against its own model's
published request schema, at the line of the value at fault, before anything is sent."""

from __future__ import annotations

import pytest

from pipeline.errors import ManifestError
from pipeline.read.jobs import load_batch

VEO = "google/veo-3.1-t2v-fast"
WAN = "alibaba/wan-2-6-t2v"
KLING = "klingai/v2.1-master-text-to-video"


def problems_of(path) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        load_batch(path)
    return [str(p) for p in caught.value.problems]


def columns_of(path) -> dict:
    return load_batch(path).columns


def test_a_value_its_model_does_not_take_is_reported_at_its_line_naming_the_model(write):
    path = write(
        "m.yaml",
        f"""
        version: 1
        matrix:
          model: [{VEO}, {WAN}]
        jobs:
          - prompt: a red kite
            duration: 10
            resolution: 4k
        """,
    )
    assert problems_of(path) == [
        f"m.yaml:6: jobs[0].duration: 10 is not allowed; {VEO} takes 4, 6 or 8",
        f"m.yaml:7: jobs[0].resolution: '4k' is not allowed; {WAN} takes '720p' or '1080p'",
        f"m.yaml:7: jobs[0].resolution: '4k' is not allowed; {VEO} takes '720p' or '1080p'",
    ]


def test_an_unknown_model_names_the_closest_catalogued_ones(write):
    path = write("m.yaml", "version: 1\nmodel: alibaba/wan2.6-t2v\njobs: [{prompt: a}]\n")
    [problem] = problems_of(path)
    assert problem.startswith("m.yaml:2: model: 'alibaba/wan2.6-t2v' is not a catalogued model")
    assert problem.endswith("closest: alibaba/wan-2-6-t2v, alibaba/wan-2-7-t2v, alibaba/wan-2-6-r2v")


def test_a_seed_on_a_model_without_seeds_says_repeats_give_samples(write):
    path = write(
        "m.yaml",
        f"""
        version: 1
        matrix:
          model: [{VEO}, {KLING}]
          seed: {{from: 1, count: 3}}
        jobs:
          - prompt: a red kite
        """,
    )
    assert problems_of(path) == [
        f"m.yaml:4: matrix.seed: {KLING} takes no seed: repeats, not seeds, give it several samples "
        "(repeat: N in a job)"
    ]
    ok = write("ok.yaml", f"version: 1\njobs:\n  - {{model: {KLING}, prompt: a, repeat: 3}}\n")
    columns = columns_of(ok)
    assert columns["sample"] == [0, 1, 2] and len(set(columns["job_id"])) == 3


def test_the_runway_models_require_a_first_frame_on_the_universal_path_only(write):
    text = "version: 1\nrun: {{endpoint: {}}}\njobs: [{{model: runway/gen4_turbo, prompt: a}}]\n"
    assert problems_of(write("u.yaml", text.format("universal"))) == [
        "u.yaml:3: jobs[0]: runway/gen4_turbo requires image_url; the job sets none"
    ]
    assert columns_of(write("l.yaml", text.format("legacy")))["model"] == ["runway/gen4_turbo"]


def test_an_alias_is_resolved_and_the_table_records_the_canonical_id(write):
    path = write(
        "m.yaml",
        "version: 1\njobs: [{model: kling-video/v3/turbo/pro/image-to-video, image_url: https://x/a.png}]\n",
    )
    assert columns_of(path)["model"] == ["klingai/video-v3-turbo-pro-image-to-video"]


def test_per_model_fills_what_jobs_do_not_set_and_a_jobs_own_value_wins(write):
    path = write(
        "m.yaml",
        f"""
        version: 1
        defaults: {{duration: 5, negative_prompt: blur}}
        per_model:
          {VEO}: {{duration: 8, enhance_prompt: true}}
        matrix:
          model: [{VEO}, {WAN}]
        jobs:
          - prompt: a
          - prompt: b
            duration: 6
            model: {VEO}
        """,
    )
    columns = columns_of(path)
    rows = list(zip(columns["model"], columns["prompt"], columns["duration"], columns["extra"], strict=True))
    assert rows == [
        (VEO, "a", 8, {"negative_prompt": "blur", "enhance_prompt": True}),
        (WAN, "a", 5, {"negative_prompt": "blur"}),
        (VEO, "b", 6, {"negative_prompt": "blur", "enhance_prompt": True}),
    ]


def test_a_per_model_value_its_model_refuses_is_reported_under_per_model(write):
    path = write(
        "m.yaml", f"version: 1\nper_model:\n  {VEO}: {{duration: 5}}\njobs: [{{model: {VEO}, prompt: a}}]\n"
    )
    assert problems_of(path) == [
        f"m.yaml:3: per_model.{VEO}.duration: 5 is not allowed; {VEO} takes 4, 6 or 8"
    ]


def test_a_per_model_entry_for_a_model_no_job_uses_is_an_error_naming_the_used_ones(write):
    path = write(
        "m.yaml",
        f"""
        version: 1
        per_model:
          {VEO}: {{duration: 6}}
        matrix:
          model: [{WAN}, pixverse/v5.5/text-to-video]
        jobs:
          - prompt: a
            duration: 7
        """,
    )
    assert problems_of(path)[0] == (
        f"m.yaml:3: per_model.{VEO}: {VEO!r} is used by no job "
        f"(the jobs use: {WAN}, pixverse/v5.5/text-to-video)"
    )
    assert len(problems_of(path)) > 1  # the jobs' own problems come in the same pass


def test_a_model_specific_field_another_model_declares_is_an_error_for_one_that_does_not(write):
    path = write("m.yaml", f"version: 1\njobs:\n  - {{model: {KLING}, prompt: a, enhance_prompt: true}}\n")
    [problem] = problems_of(path)
    assert problem.startswith(
        f"m.yaml:3: jobs[0].enhance_prompt: {KLING} does not take 'enhance_prompt'; it takes "
    )


def test_a_field_no_model_declares_is_an_unknown_field_with_a_suggestion(write):
    path = write("m.yaml", f"version: 1\njobs:\n  - {{model: {VEO}, prompt: a, negative_promt: x}}\n")
    assert problems_of(path) == [
        "m.yaml:3: jobs[0].negative_promt: unknown field; did you mean 'negative_prompt'?"
    ]


def test_a_model_s_own_defaults_replace_vidpipes_when_nobody_wrote_a_value(write):
    """vidpipe's 16:9 and 5 s are the Runway models'; another model gets its published default,
    and a model without a ratio field gets none (nothing is sent)."""
    path = write(
        "m.yaml",
        f"version: 1\nmatrix:\n  model: [{VEO}, bytedance/seedance-1-0-pro-t2v, gen3a_turbo]\njobs: [{{prompt: a}}]\n",
    )
    columns = columns_of(path)
    assert list(zip(columns["ratio"], columns["duration"], strict=True)) == [
        ("16:9", 8),
        (None, 5),
        ("16:9", 5),
    ]


def test_adapt_nearest_sends_the_nearest_value_and_keeps_what_was_asked(write):
    path = write(
        "m.yaml",
        f"""
        version: 1
        run: {{adapt: nearest}}
        matrix:
          model: [{VEO}, {WAN}]
        jobs:
          - {{prompt: a, duration: 5, ratio: "4:3"}}
        """,
    )
    batch = load_batch(path)
    columns = batch.columns
    assert columns["duration"] == [6, 5] and columns["asked_duration"] == [5, None]
    assert columns["ratio"] == ["16:9", "4:3"] and columns["asked_ratio"] == ["4:3", None]
    assert (
        "run.adapt: nearest will send 1 of 2 jobs a value their model takes instead of the one asked"
        in batch.notes
    )


def test_adapt_nearest_still_refuses_a_value_with_no_distance(write):
    path = write(
        "m.yaml",
        f"version: 1\nrun: {{adapt: nearest}}\njobs: [{{model: {VEO}, prompt: a, resolution: 4k}}]\n",
    )
    assert problems_of(path) == [
        f"m.yaml:3: jobs[0].resolution: '4k' is not allowed; {VEO} takes '720p' or '1080p'"
    ]


def test_a_refused_per_model_value_is_reported_once_not_replaced_by_the_defaults(write):
    path = write(
        "m.yaml",
        f"version: 1\ndefaults: {{duration: 5}}\nper_model:\n  {VEO}: {{duration: six}}\njobs: [{{model: {VEO}, prompt: a}}]\n",
    )
    assert problems_of(path) == [
        f"m.yaml:4: per_model.{VEO}.duration: 'six' is not allowed; expected a whole number of seconds "
        "(each model takes its own: `vidpipe models`)"
    ]


def test_a_refused_model_specific_value_is_reported_once(write):
    path = write(
        "m.yaml",
        f"version: 1\nper_model:\n  {VEO}: {{enhance_prompt: maybe}}\njobs: [{{model: {VEO}, prompt: a}}]\n",
    )
    assert problems_of(path) == [
        f"m.yaml:3: per_model.{VEO}.enhance_prompt: 'maybe' is not allowed; expected true or false"
    ]
