"""Helpers for runner tests: a sandbox on loopback and the real CLI pointed at it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd

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
