"""The command line: help that teaches, exit codes, and never a traceback for bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(
    "command",
    [
        *([], ["validate"], ["plan"], ["run"], ["sandbox"], ["status"], ["export"], ["report"], ["models"]),
        *(["votes"], ["votes", "import"], ["rank"]),
    ],
)
def test_help_teaches_with_an_example(cli, command):
    result = cli(*command, "--help")
    assert result.code == 0
    assert "Example:" in result.out
    assert "vidpipe " in result.out.split("Example:")[1]


def test_validate_reports_each_file(write, cli):
    good = write("good.yaml", "version: 1\njobs: [{prompt: a, seed: [1, 2]}]\n")
    bad = write("bad.yaml", "version: 1\njobs: [{prompt: a, ratio: '5:4'}]\n")
    result = cli("validate", good, bad)
    assert result.code == 2
    assert result.out == "ok: good.yaml (2 jobs)\n"
    assert result.err_lines == [
        "error: bad.yaml:2: jobs[0].ratio: '5:4' is not allowed; expected '16:9', '9:16', '4:3', '3:4', '1:1' or '21:9'"
    ]
    assert cli("validate", good).code == 0


def test_duplicates_are_warnings_not_errors(write, cli):
    path = write("m.yaml", "version: 1\njobs: [{prompt: a, seed: 1}, {prompt: a, seed: 1}]\n")
    result = cli("validate", path)
    assert result.code == 0
    assert result.out == "ok: m.yaml (1 job)\n"
    assert result.err.startswith("warning: m.yaml:2: same request as m.yaml:2 (job ")


MALFORMED = {
    "empty.yaml": b"",
    "list.yaml": b"- 1\n- 2\n",
    "tabs.yaml": b"version: 1\n\tjobs: []\n",
    "binary.yaml": b"\x89PNG\r\n\x1a\n\x00\x00",
    "latin1.csv": b"prompt\ncaf\xe9\n",
    "huge-number.yaml": b"version: 1\njobs: [{prompt: a, seed: 99999999999999999999999999}]\n",
    "deep.yaml": b"version: 1\njobs: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "nan.yaml": b"version: 1\njobs: [{prompt: a, duration: .nan, seed: .inf}]\n",
    "jobs-not-list.yaml": b"version: 1\njobs: {prompt: a}\n",
    "job-not-mapping.yaml": b"version: 1\njobs: [a, 3, null]\n",
    "key-not-text.yaml": b"version: 1\njobs: [{1: a, [x]: b}]\n",
    "null-fields.yaml": b"version: 1\nrun: null\nmatrix: {seed: null}\njobs: [{prompt: null}]\n",
    "header-only.csv": b"prompt,seed\n",
    "bad-header.csv": b"prompt,prompt\na,b\n",
    "nul.csv": b"prompt\na\x00b\n",
    "anchor-bomb.yaml": b"a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\njobs: *c\n",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_is_exit_2_with_one_line_per_problem(write, cli, name):
    result = cli("validate", write(name, MALFORMED[name]))
    assert result.code == 2, result
    assert "Traceback" not in result.err
    assert result.err_lines, "a reason must be given"
    assert all(line.startswith("error: ") for line in result.err_lines), result.err


def test_a_header_only_csv_has_no_jobs(write, cli):
    result = cli("validate", write("p.csv", "prompt,seed\n"))
    assert result.err_lines == ["error: p.csv:1: the CSV has no jobs; expected a row under the header"]


def test_python_dash_m_runs_the_same_cli():
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "validate", "manifests/ab-seed-sweep.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok: manifests/ab-seed-sweep.yaml (16 jobs)\n"
