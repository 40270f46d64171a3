"""vidpipe as users get it: a wheel installed in a fresh venv, and the pre-commit hook.

The rest of the suite runs on an editable install, which reads files from the checkout; these
tests catch a file the package needs at run time that the wheel leaves out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.timeout(600)

TWO_JOBS = """\
version: 1
name: installed
model: gen3a_turbo
matrix:
  seed: [1, 2]
jobs:
  - prompt: A paper boat on a puddle.
sandbox:
  gen_time: 0.1
output:
  formats: [csv, parquet]
"""

BROKEN = """\
version: 1
model: gen3a_turbo
jobs:
  - prompt: A paper boat.
    ratio: "4:3"
    sed: 3
"""


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding vidpipe[parquet] installed from its wheel; returns its bin folder."""
    root = tmp_path_factory.mktemp("installed")
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(root / "wheel"), str(REPO)], root
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (root / "wheel").glob("vidpipe-*.whl")
    venv = root / "venv"
    assert _run([sys.executable, "-m", "venv", str(venv)], root).returncode == 0
    pip = _run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[parquet]"], root)
    assert pip.returncode == 0, pip.stderr
    return venv / "bin"


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A folder outside the checkout, holding a valid and a broken manifest."""
    (tmp_path / "installed.yaml").write_text(TWO_JOBS)
    (tmp_path / "broken.yaml").write_text(BROKEN)
    return tmp_path


def test_the_installed_wheel_validates_plans_and_runs_outside_the_checkout(installed: Path, elsewhere: Path):
    vidpipe = str(installed / "vidpipe")
    validated = _run([vidpipe, "validate", "installed.yaml"], elsewhere)
    assert (validated.returncode, validated.stdout.strip()) == (0, "ok: installed.yaml (2 jobs)")

    planned = _run([vidpipe, "plan", "installed.yaml", "--out", "jobs.csv"], elsewhere)
    assert planned.returncode == 0, planned.stderr
    assert len((elsewhere / "jobs.csv").read_text().splitlines()) == 3

    ran = _run([vidpipe, "run", "installed.yaml", "--quiet"], elsewhere)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    out = elsewhere / "outputs" / "installed"
    assert len(list((out / "videos").glob("*.mp4"))) == 2
    read = _run(
        [
            str(installed / "python"),
            "-c",
            "import pandas; t = pandas.read_parquet('results.parquet'); print(sorted(t['status']))",
        ],
        out,
    )
    assert read.stdout.strip() == "['completed', 'completed']", read.stderr


def test_broken_manifest_from_the_installed_wheel_is_exit_2_with_every_problem(
    installed: Path, elsewhere: Path
):
    result = _run([str(installed / "vidpipe"), "validate", "broken.yaml"], elsewhere)
    assert result.returncode == 2
    assert "broken.yaml:6: jobs[0].sed" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_the_pre_commit_hook_passes_a_valid_manifest_and_fails_a_broken_one(tmp_path: Path):
    """`pre-commit try-repo` installs the hook from this repository as a wheel, as users get it."""
    pre_commit = Path(sys.executable).with_name("pre-commit")
    if not pre_commit.exists():
        pytest.skip("pre-commit is not installed (it is in the test extra)")
    project = tmp_path / "project"
    (project / "manifests").mkdir(parents=True)
    (project / "manifests" / "good.yaml").write_text(TWO_JOBS)
    (project / "manifests" / "broken.yaml").write_text(BROKEN)
    for args in (["init", "-q"], ["add", "."]):
        assert _run(["git", *args], project).returncode == 0
    env_home = {"PRE_COMMIT_HOME": str(tmp_path / "cache")}

    def hook(*files: str) -> subprocess.CompletedProcess[str]:
        args = [str(pre_commit), "try-repo", str(REPO), "vidpipe-validate", "--files", *files]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        return subprocess.run(
            args, cwd=project, env={**env, **env_home}, capture_output=True, text=True, timeout=400
        )

    good = hook("manifests/good.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "internal error" not in good.stdout

    broken = hook("manifests/broken.yaml")
    assert broken.returncode == 1, broken.stdout  # pre-commit's own code for a failed hook
    assert "- exit code: 2" in broken.stdout
    assert "manifests/broken.yaml:6: jobs[0].sed" in broken.stdout
    assert "internal error" not in broken.stdout
