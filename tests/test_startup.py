"""What a command pays before it starts: `--help` and `validate` import none of the heavy libraries.

The timing figures are measured by hand (bench/bench_startup.py); a test only checks what is
imported, which does not depend on how fast the machine is.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator

from pipeline.read.schema import manifest_schema
from tests.conftest import REPO

HEAVY = {"pandas", "numpy", "aiohttp", "pyarrow", "av", "PIL"}


def imported_by(*args: str, exit_code: int = 0) -> set[str]:
    """Top-level packages `python -X importtime -m pipeline ARGS` imported (its stderr)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipeline", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == exit_code, done.stderr[-500:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    assert lines, "no -X importtime output"
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines[1:]}


@pytest.mark.parametrize("command", [(), ("run",), ("validate",), ("sandbox",), ("plan",), ("models",)])
def test_help_imports_neither_pandas_nor_numpy_nor_aiohttp(command):
    modules = imported_by(*command, "--help")
    assert "pipeline" in modules
    assert modules & HEAVY == set()


@pytest.mark.parametrize(
    "manifest", ["manifests/ab-seed-sweep.yaml", "manifests/csv-sweep.yaml", "manifests/prompts.csv"]
)
def test_validate_imports_neither_pandas_nor_numpy_nor_aiohttp(manifest):
    """A pre-commit hook runs validate on every commit: the expansion it checks is plain Python."""
    modules = imported_by("validate", manifest)
    assert "jsonschema" in modules  # it did validate
    assert modules & HEAVY == set()


def test_validate_of_a_broken_manifest_imports_none_of_them_either(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\njobs:\n  - {prompt: '', seed: -1, ratio: '4:3'}\n", encoding="utf-8")
    assert imported_by("validate", str(broken), exit_code=2) & HEAVY == set()


@pytest.mark.parametrize("args", [("models",), ("models", "veo", "--json")])
def test_models_imports_neither_pandas_nor_numpy_nor_aiohttp(args):
    """It reads a JSON file and prints: nothing it imports should take longer than that."""
    modules = imported_by(*args)
    assert "pipeline" in modules
    assert modules & HEAVY == set()


def test_the_shipped_schema_is_a_valid_json_schema():
    """Checked here rather than on every run: the check took longer than a whole `validate`."""
    Draft202012Validator.check_schema(manifest_schema())
