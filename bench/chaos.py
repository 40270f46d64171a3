"""Chaos soak: every fault class at once, the runner SIGKILLed at random moments, then resumed.

    .venv/bin/python bench/chaos.py                       # 1,000 jobs, 5 kills (about 5 minutes)
    .venv/bin/python bench/chaos.py --jobs 60 --kills 3   # the size the test suite runs

The sandbox runs in this process (it outlives every runner, as the real service would) and
injects, with fixed odds and a seed: 429 with and without Retry-After, 500, 502 (HTML), 503,
dropped connections before and after a submit is taken, submits taken and then answered with
a 504, answered after the client's read timeout, or answered without an id in the body, slow
answers, generations that end in error, truncated, short and expired downloads. Its usage logs
show each request 0.5 s late. The runner is `vidpipe run` in a subprocess, killed with SIGKILL
at random moments `--kills` times, then run to the end with the same command: maybe-sent
submits are settled from the usage logs (run.settle_grace 3 s, six times the logs' delay),
during the run and at the start of each rerun. No `--retry-uncertain`, no manual step.

Checked at the end (exit 1 if any fails): every job completed, or failed with a reason; none
left uncertain; every completed video decodes and matches its recorded sha256; the results
table agrees with the ledger; no request completed (was billed) twice; no job lost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.net.download import file_sha256  # noqa: E402
from pipeline.sandbox import FaultConfig, SandboxConfig, body_hash, running_sandbox  # noqa: E402

FAULTS = {
    "submit": {"429": 0.04, "429_retry_after": 0.03, "500": 0.02, "502_html": 0.02, "503": 0.02,
               "drop_before": 0.01, "drop_after": 0.01, "slow": 0.01, "accept_504": 0.01,
               "accept_late": 0.003, "accept_no_id": 0.01},
    "poll": {"429": 0.03, "500": 0.02, "502": 0.01, "503": 0.01, "drop": 0.02, "slow": 0.01},
    "download": {"truncated": 0.03, "short": 0.03, "expired": 0.03, "slow": 0.01},
    "generation": {"error": 0.03},
}  # fmt: skip
FINAL = ("completed", "failed", "uncertain")


def manifest(folder: Path, jobs: int, concurrency: int) -> Path:
    path = folder / "chaos.yaml"
    path.write_text(
        "version: 1\nname: chaos\n"
        f"run: {{concurrency: {concurrency}, requests_per_minute: 600000, poll_interval: 0.05, "
        "poll_max_interval: 0.3, retries: 10, timeout: 120, settle_grace: 3}\n"
        f"matrix:\n  seed: {{from: 1, count: {jobs}}}\n"
        "jobs:\n  - prompt: a lighthouse in a storm\n"
    )
    return path


def start(manifest_path: Path, base_url: str, *flags: str) -> subprocess.Popen:
    env = {**os.environ, "AIMLAPI_KEY": "chaos-key", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pipeline", "run", str(manifest_path), "--provider", "aimlapi",
               "--base-url", base_url, "--quiet", *flags]  # fmt: skip
    return subprocess.Popen(command, cwd=manifest_path.parent, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def ledger_rows(out_dir: Path) -> pd.DataFrame:
    with sqlite3.connect(out_dir / "ledger.sqlite") as db:
        return pd.read_sql_query("SELECT * FROM jobs", db)


def soak(jobs: int, kills: int, concurrency: int, seed: int) -> dict:
    rng = random.Random(seed)
    # A late answer comes after the client's 60 s read timeout (pipeline/net/http.py's Timeouts).
    faults = FaultConfig.from_mapping(
        {**FAULTS, "seed": seed, "retry_after": 0.2, "slow_seconds": 0.4, "late_seconds": 65}
    )
    config = SandboxConfig(
        gen_time=0.3, concurrency=concurrency * 2, faults=faults, render="shared", logs_delay=0.5
    )
    figures: dict = {"jobs": jobs, "kills": 0}
    with tempfile.TemporaryDirectory() as tmp, running_sandbox(config) as sandbox:
        path = manifest(Path(tmp), jobs, concurrency)
        out_dir = Path(tmp) / "outputs" / "chaos"
        started = time.monotonic()
        for _ in range(kills):
            runner = start(path, sandbox.base_url)
            time.sleep(rng.uniform(1.5, 4.0))
            if runner.poll() is None:
                runner.send_signal(signal.SIGKILL)
                figures["kills"] += 1
            runner.communicate(timeout=60)
        for _ in range(3):  # run to the end (failed jobs are tried again on each run)
            runner = start(path, sandbox.base_url)
            runner.communicate(timeout=900)
        figures["seconds"] = round(time.monotonic() - started, 1)
        stats = sandbox.stats()
        figures.update(check(out_dir, stats))
        figures["logs_requests"] = sandbox.server.usage.requests
    figures["faults_injected"] = stats["faults_total"]
    figures["faults_by_class"] = stats["faults"]
    return figures


def check(out_dir: Path, stats: dict) -> dict:
    rows = ledger_rows(out_dir)
    table = pd.read_csv(out_dir / "results.csv", keep_default_na=False)
    problems = []
    lost = rows[~rows["status"].isin(FINAL)]
    if len(lost):
        problems.append(f"{len(lost)} jobs not final: {sorted(set(lost['status']))}")
    reasonless = rows[rows["status"].isin(["failed", "uncertain"]) & rows["error_message"].isna()]
    if len(reasonless):
        problems.append(f"{len(reasonless)} failed jobs without a reason")
    for row in rows[rows["status"] == "completed"].itertuples():
        video = out_dir / row.path
        if file_sha256(video) != row.sha256:
            problems.append(f"{row.job_id}: the video does not match its sha256")
        try:
            with av.open(str(video)) as container:
                if sum(1 for _ in container.decode(video=0)) == 0:
                    problems.append(f"{row.job_id}: the video has no frames")
        except av.error.FFmpegError as error:
            problems.append(f"{row.job_id}: the video does not decode ({error})")
    ledger_view = rows.set_index("job_id")[["status", "sha256"]].fillna("")
    table_view = table.set_index("job_id")[["status", "sha256"]].astype(str)
    if not ledger_view.sort_index().equals(table_view.sort_index()):
        problems.append("the results table does not agree with the ledger")
    hash_to_job = {body_hash(sent_body(row.request)): row.job_id for row in rows.itertuples()}
    billed_twice = {hash_to_job.get(h, h): n for h, n in stats["generations"]["completed_twice"].items()}
    if billed_twice:
        problems.append(f"billed twice: {billed_twice}")
    uncertain = int((rows["status"] == "uncertain").sum())
    if uncertain:
        problems.append(f"{uncertain} jobs left uncertain")
    return {
        "completed": int((rows["status"] == "completed").sum()),
        "failed": int((rows["status"] == "failed").sum()),
        "uncertain_left": uncertain,
        "billed_twice": len(billed_twice),
        "settled_found": int((rows["settled"] == "found").sum()),
        "settled_not_arrived": int((rows["settled"] == "not_arrived").sum()),
        "resubmits": int((rows["submits"] - 1).clip(lower=0).sum()),
        "jobs_lost": len(lost),
        "problems": problems,
    }


def sent_body(request_json: str) -> dict:
    """The submit body the runner sent for a ledger row: the fields that are set."""
    return {key: value for key, value in json.loads(request_json).items() if value is not None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = soak(args.jobs, args.kills, args.concurrency, args.seed)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>36}: {value}")
    return 1 if figures["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
