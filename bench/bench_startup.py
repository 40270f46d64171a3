"""How long `vidpipe --help` and `vidpipe validate` take, from process start to exit.

    .venv/bin/python bench/bench_startup.py            # 15 runs of each, in fresh processes
    .venv/bin/python bench/bench_startup.py --runs 30

Each command runs as `python -m pipeline ...` in a fresh process (the way a pre-commit hook
or a shell pays for it): `validate` against the 16-job manifests/ab-seed-sweep.yaml, and
against manifests/csv-sweep.yaml (11 jobs, from a CSV). Printed: the fastest run (what an idle
machine pays; a busy one adds its load), the median, the least CPU time (user + system, which
load inflates less), the target, and the heavy libraries the command imported.
Targets (issue 13.6): `--help` under 0.25 s, `validate` of a small manifest under 0.5 s, and
neither importing pandas, numpy nor aiohttp.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "numpy", "aiohttp", "pyarrow", "jsonschema", "yaml", "PIL", "av")
COMMANDS = {
    "--help": ["--help"],
    "validate": ["validate", "manifests/ab-seed-sweep.yaml"],
    "validate (CSV)": ["validate", "manifests/csv-sweep.yaml"],
}
TARGET_S = {"--help": 0.25, "validate": 0.5, "validate (CSV)": 0.5}
# Runs the CLI as `python -m pipeline` does, then lists the heavy libraries it imported.
LIST_IMPORTS = """
import runpy, sys
sys.argv = ["vidpipe", *sys.argv[1:]]
try:
    runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
print(" ".join(sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))), file=sys.stderr)
"""


def heavy_imports(args: list[str]) -> list[str]:
    """The heavy libraries `vidpipe ARGS` imports."""
    code = LIST_IMPORTS.replace("HEAVY", repr(HEAVY))
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, env=_env(), check=False
    )
    return done.stderr.split()


def seconds_of(args: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one `python -m pipeline ARGS` process (CPU from wait4: its own)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"vidpipe {' '.join(args)} failed")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    runs = parser.parse_args().runs
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'command':<15} {'fastest s':>10} {'median s':>9} {'CPU s':>7} {'target s':>9}  heavy imports")
    for name, args in COMMANDS.items():
        walls, cpus = zip(*(seconds_of(args) for _ in range(runs)), strict=True)
        imported = " ".join(heavy_imports(args)) or "-"
        print(
            f"{name:<15} {min(walls):>10.3f} {statistics.median(walls):>9.3f} {min(cpus):>7.3f} "
            f"{TARGET_S[name]:>9.2f}  {imported}"
        )


if __name__ == "__main__":
    main()
