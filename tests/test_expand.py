"""Expansion: one row per generation, precedence of values, chosen seeds and stable job ids."""

from __future__ import annotations

import io

from PIL import Image

from pipeline.read.jobs import load_batch

AB_SWEEP = """
version: 1
model: gen3a_turbo
defaults: {duration: 5}
matrix:
  seed: {from: 1, count: 4}
  ratio: ["16:9", "9:16"]
jobs:
  - {id: a, prompt: "A lighthouse at dusk", tags: [coast, a]}
  - {id: b, prompt: "A lighthouse in a storm"}
"""


def test_ab_sweep_is_the_cartesian_product_in_a_readable_order(write):
    table = load_batch(write("m.yaml", AB_SWEEP)).table
    assert len(table) == 2 * 4 * 2
    first = table[table["id"] == "a"]
    assert first[["ratio", "seed"]].values.tolist() == [
        ["16:9", 1], ["16:9", 2], ["16:9", 3], ["16:9", 4],
        ["9:16", 1], ["9:16", 2], ["9:16", 3], ["9:16", 4],
    ]  # fmt: skip
    assert table["index"].tolist() == list(range(16))
    assert set(first["tags"]) == {"coast|a"}
    assert set(table["duration"]) == {5}
    assert table["job_id"].is_unique


def test_precedence_job_over_matrix_over_defaults_over_schema(write):
    path = write(
        "m.yaml",
        """
        version: 1
        model: runway/gen4_turbo
        defaults: {ratio: "9:16", duration: 10}
        matrix: {ratio: ["1:1", "4:3"]}
        jobs:
          - {prompt: own ratio, ratio: "21:9"}
          - {prompt: matrix ratio}
          - {prompt: own model, model: gen3a_turbo, ratio: "16:9", duration: 5}
        """,
    )
    rows = load_batch(path).table[["prompt", "model", "ratio", "duration"]].values.tolist()
    assert rows == [
        ["own ratio", "runway/gen4_turbo", "21:9", 10],
        ["matrix ratio", "runway/gen4_turbo", "1:1", 10],
        ["matrix ratio", "runway/gen4_turbo", "4:3", 10],
        ["own model", "gen3a_turbo", "16:9", 5],
    ]


def test_schema_defaults_apply_when_nothing_is_said(write):
    row = load_batch(write("m.yaml", "version: 1\njobs: [{prompt: a}]\n")).table.iloc[0]
    assert (row["model"], row["ratio"], row["duration"]) == ("gen3a_turbo", "16:9", 5)


def test_a_manifest_without_jobs_is_one_job_of_defaults_and_matrix(write):
    path = write("m.yaml", "version: 1\ndefaults: {prompt: a cat}\nmatrix: {seed: [1, 2, 3]}\n")
    assert load_batch(path).table["seed"].tolist() == [1, 2, 3]


def test_chosen_seeds_are_recorded_and_the_same_in_every_run(write):
    path = write("m.yaml", "version: 1\njobs: [{prompt: a cat, repeat: 3}, {prompt: a dog}]\n")
    first, again = load_batch(path).table, load_batch(path).table
    assert first["seed_chosen"].all()
    assert first["seed"].tolist() == again["seed"].tolist()
    assert first["job_id"].tolist() == again["job_id"].tolist()
    assert first["seed"].nunique() == 4  # every sample of a repeated job gets its own seed
    assert first["sample"].tolist() == [0, 1, 2, 0]
    assert first["seed"].between(0, 2**32 - 1).all()


def test_job_id_is_stable_across_versions(write):
    """Job ids identify paid work across runs; changing how they are computed would re-pay it."""
    path = write("m.yaml", 'version: 1\njobs: [{prompt: "A jellyfish", seed: 7}]\n')
    assert load_batch(path).table["job_id"].tolist() == ["abed233280244280"]


def test_the_same_request_from_yaml_or_csv_is_the_same_job(write):
    yaml_path = write(
        "m.yaml",
        "version: 1\njobs:\n  - {prompt: a, seed: 7, duration: 10, watermark: true}\n  - {prompt: b}\n",
    )
    csv_path = write("p.csv", "prompt,seed,duration,watermark\nb,,,\na,7,10,true\n")
    assert sorted(load_batch(yaml_path).table["job_id"]) == sorted(load_batch(csv_path).table["job_id"])


def test_job_id_depends_on_the_request_not_on_labels_or_order(write):
    one = write(
        "one.yaml", "version: 1\njobs: [{prompt: a, seed: 1, id: x, tags: t}, {prompt: b, seed: 2}]\n"
    )
    two = write("two.yaml", "version: 1\njobs: [{prompt: b, seed: 2}, {prompt: a, seed: 1, id: y}]\n")
    ids_one = dict(zip(*load_batch(one).table[["prompt", "job_id"]].values.T, strict=True))
    ids_two = dict(zip(*load_batch(two).table[["prompt", "job_id"]].values.T, strict=True))
    assert ids_one == ids_two
    changed = write("three.yaml", "version: 1\njobs: [{prompt: a, seed: 1, watermark: true}]\n")
    assert load_batch(changed).table["job_id"].iloc[0] != ids_one["a"]


def test_identical_rows_run_once_and_are_reported(write):
    path = write("m.yaml", "version: 1\njobs:\n  - {prompt: a, seed: [1, 2]}\n  - {prompt: a, seed: 2}\n")
    batch = load_batch(path)
    assert batch.table["seed"].tolist() == [1, 2]
    assert len(batch.notes) == 1
    assert batch.notes[0].startswith("m.yaml:4: same request as m.yaml:3 (job ")


def test_images_are_known_by_content_not_by_path(write):
    buffer = io.BytesIO()
    Image.new("RGB", (32, 18), (10, 200, 30)).save(buffer, "PNG")
    write("a.png", buffer.getvalue())
    write("renamed.png", buffer.getvalue())
    one = load_batch(write("one.yaml", "version: 1\njobs: [{prompt: p, seed: 1, image_url: a.png}]\n"))
    two = load_batch(write("two.yaml", "version: 1\njobs: [{prompt: p, seed: 1, image_url: renamed.png}]\n"))
    assert one.table["job_id"].tolist() == two.table["job_id"].tolist()
    assert one.table["image_sha256"].iloc[0] == two.table["image_sha256"].iloc[0]
    assert len(one.table["image_sha256"].iloc[0]) == 64


def test_csv_manifest_with_list_cells_and_defaults(write):
    path = write(
        "p.csv",
        """
        prompt,seed,ratio,tags,watermark
        "a | b stays one prompt",1|2,16:9|9:16,x|y,
        c,,,,yes
        """,
    )
    table = load_batch(path).table
    assert len(table) == 2 * 2 + 1
    assert table["prompt"].iloc[0] == "a | b stays one prompt"
    assert table["tags"].iloc[0] == "x|y"
    last = table.iloc[-1]
    assert (last["ratio"], last["watermark"], bool(last["seed_chosen"])) == ("16:9", True, True)
    assert table["source"].tolist()[-1] == "p.csv:3"


def test_yaml_sweep_over_csv_prompts(write):
    write("prompts.csv", "prompt,seed\nfixed seed,7\nswept\n")
    path = write("m.yaml", "version: 1\njobs_csv: prompts.csv\nmatrix: {seed: [1, 2]}\n")
    table = load_batch(path).table
    assert table[["prompt", "seed"]].values.tolist() == [["fixed seed", 7], ["swept", 1], ["swept", 2]]
