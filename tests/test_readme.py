"""The README's examples stay true: its manifests validate and its commands exist."""

from __future__ import annotations

import re

import pytest

from pipeline.cli import build_parser
from pipeline.read.jobs import load_batch
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(yaml|csv)\n(.*?)```", README, re.S)


@pytest.mark.parametrize(("kind", "body"), BLOCKS, ids=[f"{kind}-{n}" for n, (kind, _) in enumerate(BLOCKS)])
def test_readme_manifests_validate(tmp_path, kind, body):
    path = tmp_path / f"example.{kind}"
    path.write_text(body, encoding="utf-8")
    assert len(load_batch(path).table) > 0


def test_the_readme_starts_with_the_two_commands_and_ci_runs_the_second():
    commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)[:2]
    assert commands[0].endswith("vidpipe run manifests/ab-seed-sweep.yaml")
    assert commands[1] == "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest"
    assert (REPO / ".ci" / "run").read_text().rstrip().endswith(commands[1])


def test_every_command_the_readme_lists_exists():
    code = "\n".join(re.findall(r"```(?:text|bash)\n(.*?)```", README, re.S))
    listed = set(re.findall(r"vidpipe (\w+)", code))
    known = set(build_parser()._subparsers._group_actions[0].choices)
    assert listed and listed <= known


def test_the_readme_tour_manifest_is_the_shipped_file():
    (tour,) = [body for kind, body in BLOCKS if "name: tour" in body]
    assert tour == (REPO / "manifests" / "tour.yaml").read_text(encoding="utf-8")


def test_the_readme_votes_example_lines_are_votes():
    """The votes file format's example lines parse as a comparison and a mark."""
    from pipeline.write.votes import Comparison, Mark, parse_line

    lines = [line for line in re.findall(r"^\{.*\}$", README, re.M) if '"at"' in line]
    jobs = {job for line in lines for job in re.findall(r'"([0-9a-f]{16})"', line)}
    votes = [parse_line(line, jobs) for line in lines]
    assert [type(vote) for vote in votes] == [Comparison, Mark]
