"""The standalone server: flags, --help, and the vendor's reference example running unchanged."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

import pipeline.sandbox as sandbox_package
from pipeline.sandbox import FaultConfig, SandboxConfig, cli

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).with_name("reference_example.py")


@contextmanager
def standalone(*flags: str) -> Iterator[str]:
    """`python -m pipeline.sandbox --port 0 ...` in a subprocess; yields its base URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.sandbox", "--port", "0", *flags],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "listening on" in line, line + process.stderr.read()
        yield line.split("listening on", 1)[1].strip()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        finally:
            process.stdout.close()
            process.stderr.close()
    assert process.returncode == 0


def test_reference_example_runs_unchanged_against_the_standalone_sandbox(tmp_path):
    """The vendor's requests-based example, only base URL and key changed, completes."""
    with standalone("--gen-time", "0", "--render", "shared") as base_url, requests.Session() as s:
        # Render the shared 16:9/5 s clip first, so the example's first poll finds it done
        # and the example's fixed 10-second sleep never runs.
        auth = {"Authorization": "Bearer warm-up"}
        url = base_url + "/v2/generate/video/runway/generation"
        gen_id = s.post(url, json={"model": "gen3a_turbo"}, headers=auth).json()["id"]
        while s.get(url, params={"generation_id": gen_id}, headers=auth).json()["status"] != "completed":
            time.sleep(0.02)
        s.post(base_url + "/_sandbox/reset").raise_for_status()

        example = tmp_path / "example.py"
        example.write_text(REFERENCE.read_text().replace("http://127.0.0.1:8000", base_url))
        done = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "Generation: {'id': " in done.stdout
        assert "Generation complete:" in done.stdout
        assert "'status': 'completed'" in done.stdout
        assert "/cdn/wolf/" in done.stdout and "_jwt=" in done.stdout
        stats = s.get(base_url + "/_sandbox/stats").json()
        assert stats["submits"]["accepted"] == 1 and stats["generations"]["completed"] == 1


def test_reference_example_is_the_vendor_code_with_two_edits():
    """The copy differs from the vendor's only in the base URL and the key."""
    text = REFERENCE.read_text()
    assert text.count("http://127.0.0.1:8000/v2/generate/video/runway/generation") == 2
    assert text.count('"Authorization": "Bearer sandbox-key"') == 2
    assert "api.aimlapi.com" not in text.split("import time", 1)[1]
    assert "time.sleep(10)" in text


def test_standalone_flags_reach_the_server():
    """--require-key and fault flags work in the standalone server."""
    with standalone("--require-key", "sk-one", "--fault", "submit.503=1") as base_url:
        url = base_url + "/v2/video/generations"
        body = {"model": "gen3a_turbo", "duration": 5}
        assert requests.post(url, json=body, headers={"Authorization": "Bearer x"}).status_code == 401
        answer = requests.post(url, json=body, headers={"Authorization": "Bearer sk-one"})
        assert answer.status_code == 503


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_help_has_an_example_block():
    """--help ends with an Example: block."""
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert "Example:" in parser.format_help()


def test_flags_build_the_config(tmp_path):
    """Flags, a fault file and shortcuts combine into one SandboxConfig."""
    faults = tmp_path / "faults.yaml"
    faults.write_text("seed: 3\nsubmit:\n  429: 0.1\nscript:\n  - {on: poll, fault: drop, times: 2}\n")
    args = parse(
        "--gen-time", "25", "--concurrency", "4", "--video-shape", "object",
        "--faults", str(faults), "--gen-errors", "0.2", "--bad-downloads", "0.3",
    )  # fmt: skip
    config = cli.config_from_args(args)
    assert config.gen_time == 25 and config.concurrency == 4 and config.video_shape == "object"
    assert config.faults.seed == 3
    assert config.faults.submit == {"429": 0.1}
    assert config.faults.generation == {"error": 0.2}
    assert config.faults.download == pytest.approx({"truncated": 0.1, "short": 0.1, "expired": 0.1})
    assert config.faults.script[0].times == 2


def test_bad_fault_flag_is_a_one_line_error_and_exit_2(capsys):
    """A misspelt fault is reported in one line with a suggestion; the exit code is 2."""
    assert cli.run(parse("--fault", "sumbit.429=0.1")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "did you mean 'submit'" in err


def test_sandbox_config_from_manifest_section():
    """The manifest's sandbox: {gen_time, concurrency, faults} maps onto SandboxConfig."""
    config = SandboxConfig.from_mapping(
        {"gen_time": 1, "concurrency": 2, "faults": {"submit": {"429_retry_after": 0.5}}}
    )
    assert config.concurrency == 2
    assert config.faults == FaultConfig(submit={"429_retry_after": 0.5})
    with pytest.raises(ValueError, match="did you mean 'gen_time'"):
        SandboxConfig.from_mapping({"gentime": 1})
    with pytest.raises(ValueError, match="did you mean 'list'"):
        SandboxConfig(video_shape="lists")


def test_public_names_are_pinned():
    """The runner relies on exactly these names."""
    assert set(sandbox_package.__all__) == {
        "FaultConfig",
        "SandboxConfig",
        "SandboxServer",
        "SandboxThread",
        "ScriptedFault",
        "body_hash",
        "running_sandbox",
    }
