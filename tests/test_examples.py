"""The shipped example manifests validate and expand to what their comments promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.read.jobs import load_batch
from tests.conftest import REPO

EXAMPLES = sorted((REPO / "manifests").glob("*.yaml")) + sorted((REPO / "manifests").glob("*.csv"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(path: Path):
    assert len(load_batch(path).table) > 0


def test_examples_carry_the_schema_comment_for_editors():
    for path in (REPO / "manifests").glob("*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=../schemas/manifest.schema.json")


def test_ab_seed_sweep_is_2_prompts_by_4_seeds_by_2_ratios():
    table = load_batch(REPO / "manifests" / "ab-seed-sweep.yaml").table
    assert len(table) == 16
    assert table.groupby(["prompt", "ratio"])["seed"].apply(list).map(tuple).unique().tolist() == [
        (1, 2, 3, 4)
    ]


def test_image_example_sends_the_shipped_frames():
    batch = load_batch(REPO / "manifests" / "image-to-video.yaml")
    assert set(batch.table["image_url"]) == {"images/first.png", "images/last.png"}
    assert {info.mime for info in batch.images.values()} == {"image/png"}
