"""The Ray engine against the local engine, on one sandbox on loopback. Prints a table.

    .venv/bin/python bench/bench_ray.py            # README figures: 1,000 jobs x 2 s, then 2,000 x 0 s
    .venv/bin/python bench/bench_ray.py --quick    # 200 jobs x 1 s

Both engines run as `vidpipe run` processes (the Ray one starts a local 2-process Ray instance,
`--shards 2`). "seconds" is the whole command, Ray's startup included; "span" is from the first
submit to the last video written (from the results table), and "x ideal" compares it with the
ideal, ceil(jobs / concurrency) x generation time. The sandbox is a third process with
`--render shared`, so rendering is not what is measured. Peak (in flight) is the sandbox's own
count (queued + generating): it must never pass the concurrency, whichever engine runs.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import run_client, sandbox_call, start_sandbox, vidpipe_command


def scenario(jobs: int, concurrency: int, gen_time: float) -> None:
    process, base_url = start_sandbox(gen_time, concurrency)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            (folder / "local").mkdir()
            (folder / "ray").mkdir()
            local = vidpipe_command(base_url, jobs, concurrency, folder / "local")
            on_ray = [
                *vidpipe_command(base_url, jobs, concurrency, folder / "ray"),
                "--engine",
                "ray",
                "--shards",
                "2",
            ]
            ideal = math.ceil(jobs / concurrency) * gen_time
            print(f"\n{jobs:,} jobs x {gen_time:g} s, concurrency {concurrency} (ideal {ideal:.1f} s)")
            print(f"{'engine':<14}{'seconds':>9}{'span':>8}{'x ideal':>9}{'polls/job':>11}{'peak':>6}")
            for name, command, out in (("local", local, "local"), ("ray, 2 shards", on_ray, "ray")):
                measured = run_client(name, command, jobs, base_url)
                peak = sandbox_call(base_url, "/_sandbox/stats")["generations"]["peak_in_flight"]
                span = work_span(folder / out / f"vidpipe-{jobs}" / "results.csv")
                ratio = span / ideal if ideal else float("nan")
                print(
                    f"{name:<14}{measured.seconds:>9.1f}{span:>8.1f}{ratio:>9.3f}"
                    f"{measured.polls / jobs:>11.2f}{peak:>6}"
                )
    finally:
        process.kill()
        process.wait()


def work_span(table: Path) -> float:
    """Seconds from the first submit to the last completion."""
    frame = pd.read_csv(table)
    first, last = pd.to_datetime(frame["submitted_at"]).min(), pd.to_datetime(frame["completed_at"]).max()
    return (last - first).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        scenario(200, 20, 1.0)
    else:
        scenario(1000, 50, 2.0)
        scenario(2000, 50, 0.0)


if __name__ == "__main__":
    main()
