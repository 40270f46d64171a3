"""What the automatic checks (pipeline/write/qc.py) add to a run's wall time. Prints a table.

    .venv/bin/python bench/bench_qc.py               # 6 pairs of 120 jobs, concurrency 20 (~3 min)
    .venv/bin/python bench/bench_qc.py --pairs 2     # a smoke run

Paired runs against one sandbox (`--render shared`, 1 s generations, as bench/compare.py --only
120): each pair is one `vidpipe run` at default settings with the checks and one without,
in alternating order so a machine getting busier or quieter favours neither. "Without" is the
same command with the check replaced by a no-op in that process: nothing else differs. Then
the checks alone, in this process: every video of the last run checked one after another.
Target: the checks add at most 10% to the wall time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.compare import run_client, start_sandbox, vidpipe_command  # noqa: E402

JOBS, CONCURRENCY, GEN_TIME = 120, 20, 1.0
WITHOUT_CHECKS = (
    "import sys, pipeline.run.publishing as publishing; from pipeline.write.qc import Verdict; "
    "publishing.check_video = lambda video, request: Verdict(); "
    "from pipeline.cli import main; sys.exit(main(sys.argv[1:]))"
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=int, default=6)
    args = parser.parse_args()
    process, base_url = start_sandbox(GEN_TIME, CONCURRENCY)
    walls: dict[str, list[float]] = {"with checks": [], "without": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for pair in range(args.pairs):
                order = ("with checks", "without") if pair % 2 == 0 else ("without", "with checks")
                for arm in order:
                    run_folder = folder / f"{pair}-{arm.replace(' ', '-')}"
                    run_folder.mkdir()
                    command = vidpipe_command(base_url, JOBS, CONCURRENCY, run_folder, tuned=False)
                    if arm == "without":
                        command = [sys.executable, "-c", WITHOUT_CHECKS, *command[3:]]
                    walls[arm].append(run_client(arm, command, JOBS, base_url).seconds)
                    print(f"pair {pair + 1} {arm}: {walls[arm][-1]:.2f} s", file=sys.stderr)
            per_video = _checks_alone(sorted(folder.glob("*-with-checks/bench-120-defaults/videos/*.mp4")))
    finally:
        process.kill()
    _print(walls, per_video)


def _checks_alone(videos: list[Path]) -> list[float]:
    from pipeline.write.qc import check_video

    times = []
    for video in videos:
        started = time.perf_counter()
        check_video(video, {"ratio": "16:9", "duration": 5})
        times.append(time.perf_counter() - started)
    return times


def _print(walls: dict[str, list[float]], per_video: list[float]) -> None:
    ideal = -(-JOBS // CONCURRENCY) * GEN_TIME
    print(f"{JOBS} jobs, concurrency {CONCURRENCY}, {GEN_TIME:g} s generations (ideal {ideal:.1f} s)\n")
    print("| runs | median wall | x ideal | each run |")
    print("| --- | ---: | ---: | --- |")
    for arm, seconds in walls.items():
        each = ", ".join(f"{value:.2f}" for value in seconds)
        median = statistics.median(seconds)
        print(f"| {arm} | {median:.2f} s | {median / ideal:.3f} | {each} |")
    added = statistics.median(walls["with checks"]) / statistics.median(walls["without"]) - 1
    paired = [a / b - 1 for a, b in zip(walls["with checks"], walls["without"], strict=True)]
    paired_median = statistics.median(paired)
    print(f"\nThe checks add {added:+.1%} (median of pairs {paired_median:+.1%}); target at most +10%")
    if per_video:
        print(
            f"One check of a 5 s 320x180 clip: median {statistics.median(per_video) * 1000:.1f} ms, "
            f"max {max(per_video) * 1000:.1f} ms ({len(per_video)} videos)"
        )


if __name__ == "__main__":
    main()
