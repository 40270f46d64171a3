"""Helpers for runner tests: a sandbox on loopback and the real CLI pointed at it."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
KEY = "sk-resume-test"
FAST_RUN = "run: {concurrency: 4, poll_interval: 0.05, poll_max_interval: 0.2, retries: 6}"


def manifest_text(
    jobs: int = 6, run: str = FAST_RUN, extra: str = "", prompt: str = "a red kite over a beach"
) -> str:
    return (
        f"version: 1\nname: t\n{run}\n{extra}\nmatrix:\n  seed: {{from: 1, count: {jobs}}}\n"
        f"jobs:\n  - prompt: {json.dumps(prompt)}\n"
    )


def results(out_dir: Path) -> pd.DataFrame:
    return pd.read_csv(out_dir / "results.csv", keep_default_na=False)


def ledger_statuses(out_dir: Path) -> dict[str, str]:
    with sqlite3.connect(out_dir / "ledger.sqlite") as db:
        return dict(db.execute("SELECT job_id, status FROM jobs"))


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def accepted_twice(stats: dict[str, Any]) -> dict[str, int]:
    """Submit bodies the sandbox accepted more than once (each is a generation paid twice)."""
    return stats["submits"]["duplicate_bodies"]


def start_runner(manifest: Path, base_url: str, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "AIMLAPI_KEY": KEY, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            str(manifest),
            "--provider",
            "aimlapi",
            "--base-url",
            base_url,
            *flags,
        ],
        cwd=manifest.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_slow_submits_at(sandbox, count: int, limit_s: float = 30) -> None:
    """Until `count` POSTs have reached the sandbox and are held there by its `slow` fault: in
    the air for sure (a job recorded `submitting` may still be waiting for the disk, and a stop
    then keeps its POST from leaving at all)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if sandbox.stats()["faults"].get("submit.slow", 0) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} POSTs at the sandbox after {limit_s} s")


def wait_for_submits(out_dir: Path, count: int, limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            statuses = ledger_statuses(out_dir).values()
        except Exception:  # the ledger may not exist yet, or be mid-migration
            statuses = []
        if sum(status != "pending" for status in statuses) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} submits after {limit_s} s")


# Runs in the child: make the terminal on stdin its controlling terminal (it leads a new
# session), as a login shell's would be, so closing the terminal sends it SIGHUP.
_ON_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'pipeline', *sys.argv[1:]])"
)


def start_runner_on_terminal(manifest: Path, base_url: str, terminal: int, *flags: str) -> subprocess.Popen:
    """start_runner, with a pseudo-terminal (its slave fd) as stdin, stdout, stderr and controlling tty."""
    env = {**os.environ, "AIMLAPI_KEY": KEY, "PYTHONPATH": str(REPO)}
    command = ["run", str(manifest), "--provider", "aimlapi", "--base-url", base_url, *flags]
    return subprocess.Popen(
        [sys.executable, "-c", _ON_TERMINAL, *command],
        cwd=manifest.parent,
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
