"""`vidpipe models`, through the real command line: the table, filters, --json, no match."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from pipeline import catalogue
from tests.conftest import REPO


def test_the_table_lists_every_model_under_a_heading_with_the_docs_commit(cli):
    result = cli("models")
    assert result.code == 0
    lines = result.out.splitlines()
    commit = catalogue.load_catalogue()["source"]["commit"][:12]
    assert lines[0] == f"143 video models (catalogue of aimlapi/api-docs at {commit})"
    assert lines[1].split()[:4] == ["model", "seconds", "seed", "last"]
    ids = {line[2:].split(" ", 1)[0] for line in lines[2:]}
    assert set(catalogue.model_ids()) <= ids
    assert lines[2 + catalogue.model_ids().index("gen3a_turbo")].startswith("* gen3a_turbo ")
    assert max(len(line) for line in lines) <= 80


def test_a_filter_narrows_word_by_word(cli):
    result = cli("models", "Veo", "3.1", "t2v")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].startswith("2 of 143 video models (")
    rows = [line.split() for line in lines[2:4]]
    assert rows == [
        ["google/veo-3.1-t2v", "4,6,8", "yes", "no", "16:9,9:16", "720p,1080p"],
        ["google/veo-3.1-t2v-fast", "4,6,8", "yes", "no", "16:9,9:16", "720p,1080p"],
    ]


def test_json_is_an_array_of_the_same_facts(cli):
    result = cli("models", "hailuo-02", "--json")
    assert result.code == 0
    assert json.loads(result.out) == [
        {
            "id": "minimax/hailuo-02",
            "aliases": [],
            "path": "/v2/video/generations",
            "durations": [6, 10],
            "ratios": None,
            "resolutions": ["768P", "1080P"],
            "seed": False,
            "last_frame": True,
            "legacy_path": False,
        }
    ]
    every = json.loads(cli("models", "--json").out)
    assert [item["id"] for item in every] == catalogue.model_ids()


def test_a_filter_that_matches_nothing_names_the_closest_ids(cli):
    result = cli("models", "veo-3.1-t2x")
    assert result.code == 2
    assert result.out == ""
    assert result.err_lines == [
        "error: no video model matches 'veo-3.1-t2x'; closest: google/veo-3.1-t2v, google/veo-3.1-i2v, google/veo-3.1-t2v-fast"
    ]
    assert (
        cli("models", "veo", "kling")
        .err_lines[0]
        .startswith("error: no video model matches 'veo kling'; closest: ")
    )


def test_the_readme_example_is_what_the_command_prints(cli):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```text\n\$ vidpipe (models .*?)\n(.*?)```", readme, re.S)
    assert cli(*block[0].split()).out == block[1]


@pytest.mark.parametrize("command", [["models"], ["models", "--json"], ["plan", "manifests/tour.yaml"]])
def test_a_reader_that_stops_early_is_not_an_error(command):
    """`vidpipe models | head`: the reader is gone before vidpipe writes; no traceback, exit 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    process.stdout.close()  # the only reader: every write from now on meets a broken pipe
    with process.stderr:
        stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0, stderr
    assert stderr == ""
