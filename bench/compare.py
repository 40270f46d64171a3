"""vidpipe against the obvious alternatives, on one sandbox on loopback. Prints a table.

    .venv/bin/python bench/compare.py              # the README's figures (about 10 minutes)
    .venv/bin/python bench/compare.py --quick      # a smoke run (about 1 minute)
    .venv/bin/python bench/compare.py --only 120   # default settings: 120 jobs, concurrency 20

Each client runs in its own process, so its CPU time and peak RSS are its own (os.wait4); the
sandbox runs in another (`--render shared`: one clip per ratio and duration, so rendering is
not what is measured). Request counts come from the sandbox's stats, reset before each client.

- reference: the API docs' approach, one job at a time; poll every 10 s scaled by the
  generation time (10 s per 25 s generation). Slow by design, so it runs a sample of jobs and its
  makespan is extrapolated to the whole batch (marked ~).
- naive: asyncio.gather of every job under a semaphore, fixed 1 s poll interval.
- vidpipe: `vidpipe run` with the same concurrency, polls tuned for the short generations.
- defaults: `vidpipe run` at default settings but the concurrency (first table only).

Ideal makespan: ceil(jobs / concurrency) x generation time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_SAMPLE = 12


@dataclass
class Measured:
    client: str
    jobs: int
    seconds: float
    cpu_s: float
    peak_rss_mb: float
    polls: int
    requests: int
    extrapolated: bool = False


def start_sandbox(gen_time: float, concurrency: int) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.sandbox", "--port", "0", "--gen-time", str(gen_time),
         "--gen-time-dist", "fixed", "--concurrency", str(concurrency), "--render", "shared"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise SystemExit(f"the sandbox did not start: {line!r}")
    return process, line.split("listening on", 1)[1].strip()


def sandbox_call(base_url: str, path: str, method: str = "GET") -> dict:
    request = urllib.request.Request(base_url + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def run_client(name: str, command: list[str], jobs: int, base_url: str) -> Measured:
    """Run one client process; its own CPU and peak RSS come from wait4."""
    sandbox_call(base_url, "/_sandbox/reset", "POST")
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "AIMLAPI_KEY": "bench-key"}
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode not in (0,):
        raise SystemExit(f"{name} failed with exit {process.returncode}: {output[-500:]}")
    stats = sandbox_call(base_url, "/_sandbox/stats")
    try:
        inside = json.loads(output)  # vidpipe --json prints one indented object
    except ValueError:
        inside = json.loads(output.strip().splitlines()[-1])
    seconds = inside.get("seconds") or inside.get("wall_seconds") or wall
    polls = stats["polls"]["total"]
    requests_made = (
        stats["submits"]["accepted"] + stats["submits"]["rejected_total"] + polls + stats["downloads"]["ok"]
    )
    return Measured(
        name, jobs, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, polls, requests_made
    )


def vidpipe_command(
    base_url: str, jobs: int, concurrency: int, folder: Path, tuned: bool = True
) -> list[str]:
    """`vidpipe run` tuned for the benchmark (fast polls), or at default settings but concurrency."""
    name = f"bench-{jobs}" + ("" if tuned else "-defaults")
    manifest = folder / f"{name}.yaml"
    run = (
        f"run: {{concurrency: {concurrency}, requests_per_minute: 600000, poll_interval: 0.05, "
        "poll_max_interval: 0.5, retries: 8}"
        if tuned
        else f"run: {{concurrency: {concurrency}}}"
    )
    manifest.write_text(
        f"version: 1\nname: bench\n{run}\n"
        f"matrix:\n  seed: {{from: 1, count: {jobs}}}\njobs:\n  - prompt: a harbour at dawn\n"
    )
    return [sys.executable, "-m", "pipeline", "run", str(manifest), "--provider", "aimlapi",
            "--base-url", base_url, "--out", str(folder / name), "--json"]  # fmt: skip


def scenario(
    jobs: int, concurrency: int, gen_time: float, with_reference: bool, defaults: bool = False
) -> list[Measured]:
    process, base_url = start_sandbox(gen_time, concurrency)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if with_reference:
                sample = min(jobs, REFERENCE_SAMPLE)
                poll = max(gen_time * 10 / 25, 0.05)
                command = [
                    sys.executable,
                    "bench/clients/reference.py",
                    base_url,
                    str(sample),
                    str(poll),
                    str(folder / "ref"),
                ]
                measured = run_client("reference", command, sample, base_url)
                if sample < jobs:
                    scale = jobs / sample
                    measured = Measured("reference", jobs, measured.seconds * scale, measured.cpu_s * scale,
                                        measured.peak_rss_mb, round(measured.polls * scale),
                                        round(measured.requests * scale), extrapolated=True)  # fmt: skip
                rows.append(measured)
            naive = [
                sys.executable,
                "bench/clients/naive.py",
                base_url,
                str(jobs),
                str(concurrency),
                "1.0",
                str(folder / "naive"),
            ]
            rows.append(run_client("naive", naive, jobs, base_url))
            rows.append(
                run_client("vidpipe", vidpipe_command(base_url, jobs, concurrency, folder), jobs, base_url)
            )
            if defaults:
                command = vidpipe_command(base_url, jobs, concurrency, folder, tuned=False)
                rows.append(run_client("defaults", command, jobs, base_url))
    finally:
        process.terminate()
        process.wait(timeout=30)
    return rows


def print_table(title: str, rows: list[Measured], concurrency: int, gen_time: float) -> None:
    print(f"\n{title}")
    print(
        f"{'client':<10} {'jobs':>6} {'makespan s':>11} {'x ideal':>8} {'polls/job':>10} "
        f"{'requests/job':>13} {'CPU ms/job':>11} {'peak RSS MB':>12}"
    )
    for row in rows:
        ideal = math.ceil(row.jobs / concurrency) * gen_time
        ratio = f"{row.seconds / ideal:.3f}" if ideal else "-"
        mark = "~" if row.extrapolated else " "
        print(
            f"{row.client:<10} {row.jobs:>6,} {mark}{row.seconds:>10.1f} {ratio:>8} "
            f"{row.polls / row.jobs:>10.2f} {row.requests / row.jobs:>13.2f} "
            f"{row.cpu_s / row.jobs * 1000:>11.2f} {row.peak_rss_mb:>12.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--only", type=int, metavar="JOBS", help="only the scenario with this many jobs")
    args = parser.parse_args()
    # (jobs, concurrency, generation seconds, with the reference client, with vidpipe at defaults)
    defaults = (120, 20, 1.0, False, True)  # issue 13.5: target 1.15 x ideal at default settings
    if args.quick:
        plans = [defaults, (100, 50, 1.0, True, False), (1000, 50, 0.0, False, False)]
    else:
        plans = [
            defaults,
            (100, 50, 2.0, True, False),
            (1000, 50, 2.0, True, False),
            (10_000, 50, 0.0, False, False),
        ]
    if args.only:
        plans = [plan for plan in plans if plan[0] == args.only]
    for jobs, concurrency, gen_time, reference, at_defaults in plans:
        rows = scenario(jobs, concurrency, gen_time, reference, at_defaults)
        what = f"{gen_time:g} s generations" if gen_time else "zero generation time (overhead)"
        print_table(f"{jobs:,} jobs, concurrency {concurrency}, {what}", rows, concurrency, gen_time)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
