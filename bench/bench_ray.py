"""The Ray engine against the local engine, on one sandbox on loopback. Prints a table.

    .venv/bin/python bench/bench_ray.py            # README figures: 1,000 jobs x 2 s, then 2,000 x 0 s
    .venv/bin/python bench/bench_ray.py --quick    # 200 jobs x 1 s

Both engines run as `vidpipe run` processes (the Ray one starts a local 2-process Ray instance,
`--shards 2`, and its startup is included in its time). The sandbox is a third process with
`--render shared`, so rendering is not what is measured. Ideal = ceil(jobs / concurrency) x
generation time. Peak in flight is the sandbox's own count (queued + generating): it must never
pass the concurrency, whichever engine runs.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

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
            print(f"{'engine':<14}{'seconds':>9}{'x ideal':>9}{'polls/job':>11}{'peak in flight':>16}")
            for name, command in (("local", local), ("ray, 2 shards", on_ray)):
                measured = run_client(name, command, jobs, base_url)
                peak = sandbox_call(base_url, "/_sandbox/stats")["generations"]["peak_in_flight"]
                ratio = measured.seconds / ideal if ideal else float("nan")
                print(
                    f"{name:<14}{measured.seconds:>9.1f}{ratio:>9.3f}{measured.polls / jobs:>11.2f}{peak:>16}"
                )
    finally:
        process.kill()
        process.wait()


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
