"""How long report.html takes for 2,000 jobs, and a poster extraction per video.

    .venv/bin/python bench/bench_report.py [--jobs 2000] [--repeat 5] [--browser]

Cases (synthetic jobs; every video and poster present, so extraction is not counted):
- build_report alone (the pure page building) on a results frame of --jobs rows, as 50
  prompts x N seeds x 2 ratios (a sweep: several jobs per cell, a ratio filter) and as
  --jobs distinct prompts (the worst case for rows);
- write_report on a real ledger of --jobs completed jobs: read the ledger, check files and
  posters, build, write atomically (target for both: well under a second).
Poster extraction is timed on real sandbox clips (5 s and 10 s, 16:9 and 9:16), one by one
and as write_report does it (a thread pool). With --browser (needs /usr/bin/chromium) the
2,000-job page is opened in headless Chromium: load time, how many <video> elements the page
made (only those near the viewport should exist), and console errors. Prints a small table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.run.ledger import Ledger  # noqa: E402
from pipeline.sandbox.render import ClipSpec, render_clip  # noqa: E402
from pipeline.write.columns import OUTPUT_COLUMN_NAMES as COLUMNS  # noqa: E402
from pipeline.write.posters import extract_poster, poster_path_for  # noqa: E402
from pipeline.write.report import build_report, run_figures, write_report  # noqa: E402

PROMPT = "A lighthouse on a cliff at dusk, waves crashing, slow dolly-in, variation {n}"


def sweep_jobs(count: int, prompts: int) -> list[dict]:
    """`count` jobs: `prompts` prompts x seeds x 2 ratios (x 1 seed per job when prompts=count)."""
    ratios = ("16:9", "9:16") if prompts < count else ("16:9",)
    per_prompt = max(1, count // prompts)
    jobs = []
    for n in range(count):
        prompt, rest = divmod(n, per_prompt)
        seed, ratio = divmod(rest, len(ratios))
        jobs.append({"prompt": PROMPT.format(n=prompt), "seed": seed + 1, "ratio": ratios[ratio]})
    return jobs


def results_rows(jobs: list[dict]) -> pd.DataFrame:
    rows = []
    for n, job in enumerate(jobs):
        row = dict.fromkeys(COLUMNS)
        row |= {
            "index": n,
            "job_id": f"{n:016x}",
            "id": f"p{n // 40}",
            "status": "completed" if n % 97 else "failed",
            "error_name": None if n % 97 else "rejected",
            "error_message": None if n % 97 else "The prompt was flagged by moderation.",
            "model": "gen3a_turbo",
            "duration": 5,
            "sample": 0,
            "path": f"videos/clip-{n:016x}.mp4",
            "credits": 525000.0,
            "poster": f"posters/clip-{n:016x}.jpg",
            "present": True,
            **job,
        }
        rows.append(row)
    return pd.DataFrame(rows)


def time_it(function, repeat: int) -> float:
    """Median wall seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def make_output_folder(folder: Path, jobs: list[dict]) -> None:
    """A ledger of completed jobs whose videos (hard links to a few real clips) and posters exist."""
    videos, posters = folder / "videos", folder / "posters"
    videos.mkdir(parents=True)
    posters.mkdir()
    samples = {}
    for ratio in ("16:9", "9:16"):
        samples[ratio] = folder / f"sample-{ratio.replace(':', 'x')}.mp4"
        samples[ratio].write_bytes(render_clip(ClipSpec(ratio=ratio)))
        extract_poster(samples[ratio], folder / f"sample-{ratio.replace(':', 'x')}.jpg")
    rows = []
    for n, job in enumerate(jobs):
        job_id = f"{n:016x}"
        path = f"videos/clip-{job_id}.mp4"
        os.link(samples[job["ratio"]], folder / path)
        os.link(samples[job["ratio"]].with_suffix(".jpg"), poster_path_for(folder, path))
        request = {"model": "gen3a_turbo", "duration": 5, "watermark": None, "image_url": None}
        request |= {"last_image_url": None, **job}
        labels = {"id": f"p{n // 40}", "tags": None, "source": "bench", "seed_chosen": False, "sample": 0}
        rows.append((job_id, n, request, labels))
    with Ledger(folder / "ledger.sqlite") as ledger:
        ledger.sync_jobs(rows)
        run = ledger.start_run("bench.yaml", "sandbox")
        ledger.finish_run(run, 0)
    # One transaction for all jobs: Ledger commits (and fsyncs) each transition separately.
    with sqlite3.connect(folder / "ledger.sqlite") as db:
        db.executemany(
            "UPDATE jobs SET status = 'completed', path = ?, credits = 525000 WHERE job_id = ?",
            [(f"videos/clip-{job_id}.mp4", job_id) for job_id, *_ in rows],
        )
    db.close()


def poster_times(folder: Path) -> list[tuple[str, float]]:
    results = []
    for ratio, duration in (("16:9", 5), ("9:16", 5), ("16:9", 10)):
        video = folder / f"clip-{ratio.replace(':', 'x')}-{duration}.mp4"
        video.write_bytes(render_clip(ClipSpec(ratio=ratio, duration=duration, seed=7)))
        seconds = time_it(lambda v=video: extract_poster(v, folder / "p.jpg"), 20)
        results.append((f"poster, one {ratio} {duration} s clip", seconds))
    clips = [folder / "clip-16x9-5.mp4"] * 64
    workers = min(8, os.cpu_count() or 1)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda pair: extract_poster(pair[1], folder / f"t{pair[0]}.jpg"), enumerate(clips)))
    per_video = (time.perf_counter() - started) / len(clips)
    results.append((f"poster, 64 clips on {workers} threads (per clip)", per_video))
    return results


async def open_in_browser(page_path: Path) -> tuple[float, int, int, list[str]]:
    """(load event in ms from navigation start, cells, <video> elements made, console errors)."""
    from tests.browser import Chromium

    async with Chromium.launch(width=1280, height=900) as browser:
        page = await browser.new_page()
        await page.goto(page_path.resolve().as_uri())
        counts = await page.evaluate(
            "new Promise((r) => setTimeout(() => r([performance.timing.loadEventEnd"
            " - performance.timing.navigationStart, document.querySelectorAll('.frame').length,"
            " document.querySelectorAll('video[src]').length]), 1500))"
        )
        return counts[0], counts[1], counts[2], page.errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--browser", action="store_true", help="also open the page in headless Chromium")
    args = parser.parse_args()
    now = datetime.now(timezone.utc)
    rows: list[tuple[str, str]] = []
    for name, prompts in (("sweep, 50 prompts", 50), ("distinct prompts", args.jobs)):
        frame = results_rows(sweep_jobs(args.jobs, prompts))
        figures = run_figures(frame, [], "bench", now)
        seconds = time_it(lambda f=frame, g=figures: build_report(f, g), args.repeat)
        size = len(build_report(frame, figures).encode("utf-8"))
        rows.append(
            (f"build_report, {args.jobs:,} jobs, {name}", f"{seconds * 1000:,.0f} ms ({size / 1e6:.1f} MB)")
        )
    with tempfile.TemporaryDirectory(prefix="bench-report-") as temporary:
        folder = Path(temporary) / "bench"
        make_output_folder(folder, sweep_jobs(args.jobs, 50))
        seconds = time_it(lambda: write_report(folder), args.repeat)
        rows.append((f"write_report, {args.jobs:,} jobs, posters present", f"{seconds * 1000:,.0f} ms"))
        for name, seconds in poster_times(Path(temporary)):
            rows.append((name, f"{seconds * 1000:.1f} ms"))
        if args.browser:
            loaded, cells, videos, errors = asyncio.run(open_in_browser(folder / "report.html"))
            rows.append((f"Chromium: page loaded, {cells:,} videos in the grid", f"{loaded:,.0f} ms"))
            rows.append(("Chromium: <video> elements made (near the viewport)", f"{videos}"))
            rows.append(("Chromium: console errors", json.dumps(errors) if errors else "none"))
    width = max(len(name) for name, _ in rows)
    print(f"{'case':<{width}}  result")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
