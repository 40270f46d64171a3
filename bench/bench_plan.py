"""Plan a 100,000-job manifest: seconds and peak RSS, each case in a fresh process.

    .venv/bin/python bench/bench_plan.py

Cases: a YAML sweep (50 prompts x 1,000 seeds x 2 ratios), a 100,000-row CSV whose every
row is distinct (the worst case for validation, which checks each distinct value once), and a
model sweep (3 catalogued models x 50 prompts x 667 seeds, with per_model: each job checked
against its own model's request schema, once per distinct combination).
Targets (issue #2): under 3 s and under 300 MB peak RSS on a 2-core machine.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ONE_CASE = """
import resource, sys, time
from pathlib import Path
started = time.perf_counter()
from pipeline.read.jobs import load_batch
from pipeline.run.plan import make_plan
batch = load_batch(Path(sys.argv[1]))
plan = make_plan(batch.table, batch.settings, batch.swept_fields)
elapsed = time.perf_counter() - started
print(plan.jobs, elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_sweep(folder: Path) -> Path:
    lines = ["version: 1", "matrix:", "  seed: {from: 1, count: 1000}", '  ratio: ["16:9", "9:16"]', "jobs:"]
    lines += [f'  - prompt: "Prompt {i}: a harbour at dawn, gulls, slow pan"' for i in range(50)]
    path = folder / "sweep.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_model_sweep(folder: Path) -> Path:
    models = "[google/veo-3.1-t2v-fast, alibaba/wan-2-6-t2v, pixverse/v5.5/text-to-video]"
    lines = ["version: 1", "matrix:", f"  model: {models}", "  seed: {from: 1, count: 667}"]
    lines += ["per_model:", "  google/veo-3.1-t2v-fast: {duration: 6, enhance_prompt: false}", "jobs:"]
    lines += [f'  - prompt: "Prompt {i}: a harbour at dawn, gulls, slow pan"' for i in range(50)]
    path = folder / "models.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_csv(folder: Path) -> Path:
    path = folder / "rows.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "seed", "ratio", "duration"])
        for i in range(100_000):
            writer.writerow([f"Prompt {i}: a harbour at dawn, gulls", i, "16:9" if i % 2 else "9:16", 5])
    return path


def measure(path: Path) -> tuple[int, float, float, float]:
    """(jobs, seconds inside Python, seconds for the whole command, peak RSS in MB)."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", ONE_CASE, str(path)], check=True, capture_output=True, text=True
    ).stdout
    wall = time.perf_counter() - started
    jobs, inside, peak_kb = out.split()
    return int(jobs), float(inside), wall, int(peak_kb) / 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cases = [
            ("YAML sweep 50x1000x2", write_sweep(folder)),
            ("CSV, 100,000 distinct rows", write_csv(folder)),
            ("3 models x 50 x 667, per_model", write_model_sweep(folder)),
        ]
        print(f"{'case':<32} {'jobs':>8} {'load+plan s':>12} {'command s':>10} {'peak RSS MB':>12}")
        for name, path in cases:
            jobs, inside, wall, rss = measure(path)
            print(f"{name:<32} {jobs:>8,} {inside:>12.2f} {wall:>10.2f} {rss:>12.0f}")


if __name__ == "__main__":
    main()
