"""report.html: the grid it chooses, what each cell shows, posters, and the page in a real browser."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import textwrap
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from pipeline.cli import main
from pipeline.errors import InputError
from pipeline.run.runner import RunRequest, run
from pipeline.sandbox.render import ClipSpec, render_clip
from pipeline.write.columns import OUTPUT_COLUMN_NAMES as COLUMNS
from pipeline.write.posters import PosterError, extract_poster, poster_path_for
from pipeline.write.report import REPORT_FILE, build_report, choose_axes, run_figures, write_report
from tests.browser import Chromium, chromium_missing_reason

NOW = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
FIGURES = {"name": "t", "jobs": 0, "completed": 0, "failed": 0, "uncertain": 0, "credits": 0.0}


def jobs_frame(*jobs: dict[str, Any]) -> pd.DataFrame:
    """A results table: one row per given job, defaults for the rest, `index` in given order."""
    rows = []
    for number, job in enumerate(jobs):
        row = dict.fromkeys(COLUMNS)
        row |= {
            "index": number,
            "job_id": f"job{number:03d}",
            "status": "completed",
            "model": "gen3a_turbo",
            "prompt": "a red kite",
            "ratio": "16:9",
            "duration": 5,
            "seed": 1,
            "sample": 0,
            "path": f"videos/job{number:03d}.mp4",
            "credits": 525000.0,
            "video_url": f"https://cdn.example.com/job{number:03d}.mp4",
        }
        rows.append(row | job)
    return pd.DataFrame(rows, columns=list(COLUMNS))


class Page(HTMLParser):
    """The parts of a report page the tests look at: cells with their clips, filters, resources."""

    def __init__(self, text: str):
        super().__init__()
        self.cells: list[dict[str, Any]] = []
        self.filters: list[str] = []
        self.columns: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        css = (attributes.get("class") or "").split()
        if tag == "td" and "cell" in css:
            self.cells.append({"at": (int(attributes["data-row"]), int(attributes["data-col"])), "clips": []})
        elif tag == "figure" and "clip" in css:
            self.cells[-1]["clips"].append(attributes | {"kind": css[1]})
        elif tag == "div" and "frame" in css:
            self.cells[-1]["clips"][-1]["frame"] = attributes
        elif tag == "img" and self.cells and self.cells[-1]["clips"]:
            self.cells[-1]["clips"][-1]["poster"] = attributes
        elif tag == "select" and attributes.get("data-filter"):
            self.filters.append(attributes["data-filter"])
        elif tag == "th" and "col" in css:
            self.columns.append(attributes["data-value"])
        for name in ("src", "href", "data-src", "poster"):
            if attributes.get(name):
                self.urls.append(attributes[name])

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def cell_jobs(self) -> list[tuple[tuple[int, int], list[str]]]:
        return [(cell["at"], [clip["data-job-id"] for clip in cell["clips"]]) for cell in self.cells]


def test_default_grid_is_prompts_by_the_most_swept_field():
    """Rows are prompts; columns the swept field with most values (seed over ratio, and back)."""
    seeds_win = jobs_frame(*({"seed": s, "ratio": r} for s in (1, 2, 3) for r in ("16:9", "9:16")))
    ratios_win = jobs_frame(*({"seed": s, "ratio": r} for s in (1, 2) for r in ("16:9", "9:16", "1:1")))
    assert choose_axes(seeds_win) == ("prompt", "seed")
    assert choose_axes(ratios_win) == ("prompt", "ratio")
    assert choose_axes(jobs_frame({"seed": 1}, {"seed": 2}), rows="seed") == ("seed", None)
    assert choose_axes(seeds_win, cols="ratio") == ("prompt", "ratio")


def test_a_model_sweep_opens_as_prompts_by_models_with_seeds_as_a_filter():
    """A model A/B is read across models, even when more seeds than models are swept."""
    models = ("google/veo-3.1-t2v-fast", "alibaba/wan-2-6-t2v")
    frame = jobs_frame(*({"model": m, "seed": s} for m in models for s in (1, 2, 3)))
    assert choose_axes(frame) == ("prompt", "model")
    assert choose_axes(frame, rows="model") == ("model", "seed")
    page = build_report(frame, FIGURES)
    assert 'data-value="alibaba/wan-2-6-t2v"' in page and 'data-value="google/veo-3.1-t2v-fast"' in page
    assert 'data-filter="seed"' in page


def test_cols_model_works_for_a_single_model_run():
    frame = jobs_frame({"seed": 1}, {"seed": 2})
    assert choose_axes(frame, cols="model") == ("prompt", "model")
    assert 'data-value="gen3a_turbo"' in build_report(frame, FIGURES, cols="model")


def test_nothing_swept_gives_a_single_column():
    """With one value per field the grid is one column, headed 'all jobs'."""
    page = Page(build_report(jobs_frame({"prompt": "a"}, {"prompt": "b", "seed": 1}), FIGURES))
    assert page.cell_jobs() == [((0, 0), ["job000"]), ((1, 0), ["job001"])]
    assert page.columns == [""] and "all jobs" in page.text


def test_rows_follow_first_appearance_and_columns_sort_by_value():
    """Rows in order of first appearance by index, columns numerically sorted (2 before 10)."""
    frame = jobs_frame(
        {"prompt": "B", "seed": 10},
        {"prompt": "A", "seed": 2},
        {"prompt": "B", "seed": 1},
        {"prompt": "A", "seed": 10},
        {"prompt": "B", "seed": 2},
    )
    page = Page(build_report(frame.iloc[::-1], FIGURES))  # input order must not matter
    assert page.columns == ["1", "2", "10"]
    assert page.cell_jobs() == [
        ((0, 0), ["job002"]),
        ((0, 1), ["job004"]),
        ((0, 2), ["job000"]),
        ((1, 0), []),
        ((1, 1), ["job001"]),
        ((1, 2), ["job003"]),
    ]


def test_other_swept_fields_share_a_cell_and_become_filters():
    """With seed on the columns, both ratios of a seed sit in one cell, and ratio is a filter."""
    frame = jobs_frame(*({"seed": s, "ratio": r} for s in (1, 2, 3) for r in ("16:9", "9:16")))
    page = Page(build_report(frame, FIGURES))
    assert page.filters == ["ratio"]
    assert [len(cell["clips"]) for cell in page.cells] == [2, 2, 2]
    first = page.cells[0]["clips"]
    assert [clip["data-ratio"] for clip in first] == ["16:9", "9:16"]
    assert first[1]["kind"] == "ok" and "portrait" in first[1]["class"]


def test_completed_cells_carry_a_lazy_poster_and_their_video_path_with_parameters_on_hover():
    """A completed job: a lazy poster <img>, the video's relative path for the script, no <video>
    in the markup (the script makes it near the viewport), its parameters in the title."""
    frame = jobs_frame({"seed": 7}).assign(poster=["posters/job000.jpg"])
    text = build_report(frame, FIGURES)
    (clip,) = Page(text).cells[0]["clips"]
    assert clip["frame"]["data-src"] == "videos/job000.mp4" and "<video" not in text.split("<script>")[0]
    assert clip["poster"]["src"] == "posters/job000.jpg" and clip["poster"]["loading"] == "lazy"
    for line in ("prompt: a red kite", "seed: 7", "ratio: 16:9", "duration: 5", "model: gen3a_turbo"):
        assert line in clip["title"].splitlines()
    assert "job_id: job000" in clip["title"] and "status: completed" in clip["title"]


def test_failed_uncertain_and_missing_cells_show_why_instead_of_a_video():
    """No video where there is none to play: the status and the service's error are shown."""
    frame = jobs_frame(
        {"seed": 1, "status": "failed", "error_name": "rejected", "error_message": "prompt flagged"},
        {"seed": 2, "status": "uncertain", "error_name": "uncertain", "error_message": "answer lost"},
        {"seed": 3, "status": "pending", "path": None},
        {"seed": 4},
    ).assign(present=[True, True, True, False])
    page = Page(build_report(frame, FIGURES))
    assert [clip["kind"] for cell in page.cells for clip in cell["clips"]] == ["problem"] * 4
    assert not any("frame" in clip for cell in page.cells for clip in cell["clips"])
    text = " ".join(page.text)
    for shown in (
        "rejected: prompt flagged",
        "answer lost",
        "not run yet",
        "file missing: videos/job003.mp4",
    ):
        assert shown in text
    assert "uncertain: answer lost" not in text  # the error name repeating the status is dropped
    assert page.filters == ["status"]


def test_user_text_is_escaped_everywhere():
    """A prompt (or id, or error) holding HTML shows as text: no tag of it reaches the page."""
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    frame = jobs_frame(
        {"prompt": evil, "id": evil, "seed": 1},
        {"prompt": "fine", "seed": 2, "status": "failed", "error_message": evil},
    )
    text = build_report(frame, FIGURES)
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.count("<script>") == 1  # the page's own


def test_page_refers_to_nothing_outside_the_folder():
    """No http(s), protocol-relative or absolute reference: the page works offline, from disk.

    The jobs' video_url (the CDN's) never reaches the page; an https image_url the user swept
    shows as a value to filter by, never as something the page loads.
    """
    frame = jobs_frame({"seed": 1}, {"seed": 2}).assign(poster=["posters/job000.jpg", None])
    text = build_report(frame, FIGURES)
    assert not re.search(r"https?:|//[a-z]", text.replace("</", "")), re.search(r".{60}https?:.{60}", text)
    assert "@import" not in text and "url(" not in text
    assert sorted(Page(text).urls) == ["posters/job000.jpg", "videos/job000.mp4", "videos/job001.mp4"]
    swept_url = frame.assign(image_url=[None, "https://example.com/first.png"])
    page = Page(build_report(swept_url, FIGURES))
    assert page.filters == ["image_url"] and not any(":" in url for url in page.urls)


def test_one_job_and_no_jobs_make_a_page():
    """The smallest folders still give a valid page: one cell, or a note that nothing ran."""
    assert Page(build_report(jobs_frame({}), FIGURES)).cell_jobs() == [((0, 0), ["job000"])]
    empty = build_report(jobs_frame().iloc[0:0], FIGURES)
    assert Page(empty).cells == [] and "No jobs in this output folder yet." in empty


def test_unknown_or_repeated_axis_is_a_one_line_input_error():
    """--rows/--cols name a field of the table, and two different ones."""
    with pytest.raises(InputError, match=r"^report: --cols 'colour' is not a field; expected one of model,"):
        choose_axes(jobs_frame({}), cols="colour")
    with pytest.raises(InputError, match="both 'seed'"):
        choose_axes(jobs_frame({}), rows="seed", cols="seed")


def test_figures_count_outcomes_credits_and_finished_run_time():
    """Header figures: outcomes by status, credits summed, wall time over finished runs only."""
    frame = jobs_frame(
        {}, {"status": "failed", "credits": None}, {"status": "uncertain"}, {"status": "pending"}
    )
    runs = [
        {"started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:12.5+00:00"},
        {"started_at": "2026-01-02T00:00:00+00:00", "finished_at": "2026-01-02T00:01:00+00:00"},
        {
            "started_at": "2026-01-03T00:00:00+00:00",
            "finished_at": None,
            "manifest": "m.yaml",
            "provider": "sandbox",
        },
    ]
    figures = run_figures(frame, runs, "t", NOW)
    assert {k: figures[k] for k in ("jobs", "completed", "failed", "uncertain", "not_finished")} == {
        "jobs": 4,
        "completed": 1,
        "failed": 1,
        "uncertain": 1,
        "not_finished": 1,
    }
    assert figures["credits"] == 3 * 525000 and figures["wall_seconds"] == 72.5
    assert figures["unfinished_runs"] == 1 and figures["generated_at"] == "2026-01-02 03:04 UTC"
    text = " ".join(Page(build_report(frame, figures)).text)
    assert "1,575,000" in text and "about $0.79" in text and "1 min 12 s" in text
    assert "m.yaml on sandbox · rows: prompt" in text


def test_poster_is_a_small_jpeg_of_the_first_frame(tmp_path):
    """A 240-pixel-wide JPEG, aspect kept, written whole; poster paths follow the video stem."""
    video = tmp_path / "videos" / "clip-abc.mp4"
    video.parent.mkdir()
    video.write_bytes(render_clip(ClipSpec(ratio="9:16", duration=5, seed=3)))
    poster = poster_path_for(tmp_path, "videos/clip-abc.mp4")
    assert poster == tmp_path / "posters" / "clip-abc.jpg"
    extract_poster(video, poster)
    with Image.open(poster) as image:
        assert (image.format, image.width) == ("JPEG", 240) and image.height == pytest.approx(427, abs=1)
    assert sorted(p.name for p in poster.parent.iterdir()) == ["clip-abc.jpg"]


def test_a_video_that_does_not_decode_raises_and_leaves_no_poster(tmp_path):
    """A truncated or foreign file is a PosterError (a ValueError) and no file is left behind."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(render_clip(ClipSpec())[:200])
    for video in (broken, tmp_path / "absent.mp4"):
        with pytest.raises(PosterError, match=r"cannot decode|no frame"):
            extract_poster(video, tmp_path / "posters" / "p.jpg")
    assert not (tmp_path / "posters").exists()


# --- a real sandbox run, its report, and the page in headless Chromium --------------------------

MANIFEST = """\
    version: 1
    name: grid
    provider: sandbox
    matrix:
      seed: [3, 1, 2]
    jobs:
      - id: kite
        prompt: A red kite over a beach <b>windy</b>
      - id: fox
        prompt: A fox in snow
    run: {poll_interval: 0.05, poll_max_interval: 0.2}
    sandbox: {gen_time: 0.05}
    """


@pytest.fixture(scope="module")
def sandbox_report(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """A finished 2 prompts x 3 seeds sandbox run, its report written: (folder, results table)."""
    folder = tmp_path_factory.mktemp("report")
    manifest = folder / "grid.yaml"
    manifest.write_text(textwrap.dedent(MANIFEST), encoding="utf-8")
    summary = run(RunRequest(manifest=manifest, out=folder / "grid", quiet=True))
    assert summary.exit_code == 0
    out = folder / "grid"
    write_report(out)
    return out, pd.read_csv(out / "results.csv", keep_default_na=False)


def test_report_of_a_real_run_has_every_job_in_its_cell_with_a_poster(sandbox_report):
    """write_report: prompts down, seeds 1..3 across, each cell its job, posters extracted."""
    out, table = sandbox_report
    page = Page((out / REPORT_FILE).read_text(encoding="utf-8"))
    assert page.columns == ["1", "2", "3"]
    expected = [
        ((row, col), table.query("prompt == @prompt and seed == @seed")["job_id"].tolist())
        for row, prompt in enumerate(["A red kite over a beach <b>windy</b>", "A fox in snow"])
        for col, seed in enumerate([1, 2, 3])
    ]
    assert page.cell_jobs() == expected and all(len(jobs) == 1 for _, jobs in expected)
    for path in table["path"]:
        assert poster_path_for(out, path).is_file()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


READ_GRID = """(() => [...document.querySelectorAll("td.cell")].map((cell) => ({
    row: +cell.dataset.row, col: +cell.dataset.col,
    jobs: [...cell.querySelectorAll(".clip")].map((clip) => clip.dataset.jobId),
})))()"""

# Bring every cell into view (the page makes its <video> only then), wait for the metadata.
LOAD_VIDEOS = """new Promise((resolve) => {
    const cells = [...document.querySelectorAll("td.cell")];
    cells[cells.length - 1].scrollIntoView({block: "end", inline: "end"});
    cells[0].scrollIntoView({block: "start", inline: "start"});
    const deadline = Date.now() + 15000;
    (function check() {
        const videos = [...document.querySelectorAll("td.cell video")];
        const ready = videos.length === cells.length && videos.every((v) => v.readyState >= 1);
        if (!ready && Date.now() < deadline) return setTimeout(check, 50);
        resolve(videos.map((v) => ({
            job: v.closest(".clip").dataset.jobId, src: v.getAttribute("src"), poster: v.getAttribute("poster"),
            duration: v.duration, error: v.error && v.error.code, playing: !v.paused,
            attributes: ["loop", "muted", "playsinline", "preload"].map((name) => v.getAttribute(name)),
        })));
    })();
})"""


def test_report_loads_in_headless_chromium(sandbox_report, tmp_path):
    """In a real browser: 6 cells in order, each video loads (duration ~5 s), no console errors."""
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(f"browser check skipped: {reason}")
    out, table = sandbox_report
    screenshot = tmp_path / "report.png"

    async def look() -> tuple[Any, Any, list[str]]:
        async with Chromium.launch(width=1280, height=900) as browser:
            page = await browser.new_page()
            await page.goto((out / REPORT_FILE).resolve().as_uri())
            grid = await page.evaluate(READ_GRID)
            videos = await page.evaluate(LOAD_VIDEOS)
            await page.screenshot(screenshot)
            return grid, videos, page.errors

    grid, videos, errors = asyncio.run(look())
    by_prompt_seed = {(r.prompt, r.seed): r.job_id for r in table.itertuples()}
    prompts = ["A red kite over a beach <b>windy</b>", "A fox in snow"]
    assert grid == [
        {"row": row, "col": col, "jobs": [by_prompt_seed[(prompt, seed)]]}
        for row, prompt in enumerate(prompts)
        for col, seed in enumerate([1, 2, 3])
    ]
    assert [video["job"] for video in videos] == [cell["jobs"][0] for cell in grid]
    for video in videos:
        assert video["error"] is None and video["src"].startswith("videos/") and video["playing"]
        assert video["poster"].startswith("posters/")
        assert video["attributes"] == ["", "", "", "none"]
        assert video["duration"] == pytest.approx(5, abs=0.3)
    assert errors == []
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")


FILTER_TO_9_16 = """new Promise((resolve) => {
    const select = document.querySelector('select[data-filter="ratio"]');
    select.value = "9:16";
    select.dispatchEvent(new Event("change"));
    resolve({
        shown: document.getElementById("shown").textContent,
        visible: [...document.querySelectorAll(".clip:not([hidden])")].map((clip) => clip.dataset.jobId),
    });
})"""


def test_filters_narrow_the_cells_in_headless_chromium(tmp_path):
    """Choosing a value of a swept field hides the other jobs and says how many are shown."""
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(f"browser check skipped: {reason}")
    frame = jobs_frame(
        *(
            {"seed": s, "ratio": r, "status": "failed", "error_message": "x"}
            for s in (1, 2)
            for r in ("16:9", "9:16")
        )
    )
    page_path = tmp_path / "report.html"
    page_path.write_text(build_report(frame, FIGURES), encoding="utf-8")

    async def choose() -> tuple[Any, list[str]]:
        async with Chromium.launch() as browser:
            page = await browser.new_page()
            await page.goto(page_path.as_uri())
            return await page.evaluate(FILTER_TO_9_16), page.errors

    result, errors = asyncio.run(choose())
    assert result == {"shown": "2 of 4 jobs shown", "visible": ["job001", "job003"]} and errors == []


# --- compare mode, stars and flags, the votes file, and the ranking, in headless Chromium --------

READ_COMPARE = """(() => {
    const players = [...document.querySelectorAll("#compare video")];
    return {
        shown: !document.getElementById("compare").hidden,
        left: document.getElementById("pairs-left").textContent,
        prompt: document.getElementById("compare-prompt").textContent,
        seeds: [...document.querySelectorAll("#compare figcaption")].map((c) => c.textContent),
        videos: players.map((v) => v.getAttribute("src")),
    };
})()"""

# Both videos of a pair play, together: at most a few frames apart.
READ_SYNC = """new Promise((resolve) => {
    const deadline = Date.now() + 15000;
    (function check() {
        const [a, b] = [...document.querySelectorAll("#compare video")];
        const playing = a && b && !a.paused && !b.paused && a.currentTime > 0.3;
        if (!playing && Date.now() < deadline) return setTimeout(check, 50);
        resolve({playing: Boolean(playing), apart: playing ? Math.abs(a.currentTime - b.currentTime) : null});
    })();
})"""


def test_compare_mode_votes_are_exported_imported_and_ranked(sandbox_report, tmp_path, capsys):
    """Keyboard votes in compare mode (1, 2, =, s), a star (key) and a flag (click) in the grid
    persist in the browser, download as the votes file, import with `vidpipe votes import`, and
    rank the seeds in order with `vidpipe rank`; the report then draws the ranking."""
    reason = chromium_missing_reason()
    if reason:
        pytest.skip(f"browser check skipped: {reason}")
    out = tmp_path / "grid"
    shutil.copytree(sandbox_report[0], out)
    table = sandbox_report[1]
    seed_of = {row.job_id: str(row.seed) for row in table.itertuples()}
    fox_jobs = set(table.query("prompt == 'A fox in snow'")["job_id"])
    fox_seed_1, fox_seed_3 = (
        next(job for job, seed in seed_of.items() if seed == wanted and job in fox_jobs) for wanted in "13"
    )
    downloads = tmp_path / "downloads"
    downloads.mkdir()

    async def review() -> dict[str, Any]:
        seen: dict[str, Any] = {"pairs": []}
        async with Chromium.launch(width=1280, height=900) as browser:
            await browser.allow_downloads(downloads)
            page = await browser.new_page()
            await page.goto((out / REPORT_FILE).resolve().as_uri())
            await page.press("c")
            seen["first"] = await page.evaluate(READ_COMPARE)
            seen["sync"] = await page.evaluate(READ_SYNC)
            await page.press("s")  # skipped: another pair comes, and this one comes back last
            seen["after_skip"] = await page.evaluate(READ_COMPARE)
            tied = False
            for _ in range(6):
                shown = await page.evaluate(READ_COMPARE)
                left, right = (int(caption.split()[-1]) for caption in shown["seeds"])
                seen["pairs"].append(shown)
                if {left, right} == {2, 3} and not tied:
                    key, tied = "=", True
                else:
                    key = "1" if left < right else "2"  # the lower seed is the better one
                await page.press(key)
            seen["done"] = await page.evaluate(READ_COMPARE)
            await page.press("Escape")
            await page.hover(f'.clip[data-job-id="{fox_seed_1}"] .frame')
            await page.press("*")
            await page.hover(f'.clip[data-job-id="{fox_seed_3}"] .frame')
            await page.click('.marker button[data-mark="bad"]')
            seen["flag"] = await page.evaluate(
                f"""document.querySelector('.clip[data-job-id="{fox_seed_3}"]').dataset.mark"""
            )
            await page.evaluate(
                """(() => { const name = document.getElementById("reviewer");
                name.value = "ann"; name.dispatchEvent(new Event("input")); })()"""
            )
            seen["mark"] = await page.evaluate(
                f"""document.querySelector('.clip[data-job-id="{fox_seed_1}"]').dataset.mark"""
            )
            await page.evaluate('document.getElementById("votes-export").click()')
            for _ in range(200):
                if [p for p in downloads.iterdir() if p.suffix == ".jsonl"]:
                    break
                await asyncio.sleep(0.05)
            await page.goto((out / REPORT_FILE).resolve().as_uri())  # choices outlive a reload
            seen["reloaded"] = await page.evaluate('document.getElementById("votes-count").textContent')
            seen["errors"] = page.errors
        return seen

    seen = asyncio.run(review())
    assert seen["first"]["shown"] and seen["first"]["left"] == "6 of 6 pairs left"
    assert seen["sync"]["playing"] and seen["sync"]["apart"] < 0.25
    assert all(video.startswith("videos/") for video in seen["first"]["videos"])
    assert (
        seen["after_skip"]["seeds"] != seen["first"]["seeds"]
        or seen["after_skip"]["prompt"] != seen["first"]["prompt"]
    )
    assert [p["left"] for p in seen["pairs"]] == [f"{n} of 6 pairs left" for n in range(6, 0, -1)]
    assert seen["done"]["left"] == "0 of 6 pairs left" and seen["done"]["videos"] == []
    assert (seen["mark"], seen["flag"]) == ("star", "bad")
    assert seen["reloaded"] == "6 votes · 2 marks" and seen["errors"] == []

    (exported,) = downloads.iterdir()
    assert exported.name == "votes-grid-ann.jsonl"
    lines = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    pairs = [line for line in lines if "outcome" in line]
    marks = [(line["job"], line["mark"]) for line in lines if "mark" in line]
    assert len(pairs) == 6 and marks == [(fox_seed_1, "star"), (fox_seed_3, "bad")]
    assert {line["reviewer"] for line in lines} == {"ann"} and all(line["at"].endswith("Z") for line in lines)
    assert sorted(line["outcome"] for line in pairs).count("tie") == 1
    for line in pairs:  # every pair is one prompt, two seeds
        assert {line["a"], line["b"]} <= fox_jobs or not {line["a"], line["b"]} & fox_jobs

    assert main(["votes", "import", str(out), str(exported), str(exported)]) == 0
    assert len((out / "votes.jsonl").read_text(encoding="utf-8").splitlines()) == 8  # twice counts once
    capsys.readouterr()
    assert main(["rank", str(out), "--by", "seed"]) == 0
    said = capsys.readouterr().out
    assert "too few votes to separate seed 2 (ranked higher) from seed 3: their intervals overlap" in said
    ranking = json.loads((out / "rankings.json").read_text(encoding="utf-8"))["rankings"]["seed"]
    assert [row["value"] for row in ranking["ranking"]] == ["1", "2", "3"]
    best = ranking["ranking"][0]
    assert (best["wins"], best["losses"], best["stars"], best["win_rate"]) == (4, 0, 1, 1.0)
    assert ranking["comparisons"] == 6 and ranking["marks"] == 2 and ranking["unseparated"] == [["2", "3"]]
    assert main(["report", str(out)]) == 0
    drawn = (out / REPORT_FILE).read_text(encoding="utf-8")
    assert re.findall(r'<li data-value="(\d)">', drawn) == ["1", "2", "3"]


def test_votes_import_and_rank_refuse_bad_input_in_one_line_each(sandbox_report, tmp_path, capsys):
    """An unknown job id is an error with its file and line (exit 2, nothing imported); rank
    without votes, or by a field that does not exist, is a one-line error too."""
    out = tmp_path / "grid"
    shutil.copytree(sandbox_report[0], out)
    job = sandbox_report[1]["job_id"][0]
    votes = tmp_path / "ann.jsonl"
    good = {"a": job, "b": sandbox_report[1]["job_id"][1], "outcome": "a", "at": "2026-12-01T15:20:03Z"}
    votes.write_text(json.dumps(good) + "\n" + json.dumps(good | {"b": "0123456789abcdef"}) + "\n")
    assert main(["rank", str(out), "--by", "seed"]) == 2
    assert capsys.readouterr().err == (
        f"error: {out}: no votes.jsonl here; import reviewers' files first: vidpipe votes import {out} FILE...\n"
    )
    assert main(["votes", "import", str(out), str(votes)]) == 2
    assert capsys.readouterr().err == (
        f"error: {votes}:2: unknown job id '0123456789abcdef': not a job of this run\n"
    )
    assert not (out / "votes.jsonl").exists()
    assert main(["rank", str(out), "--by", "colour"]) == 2
    assert "--by 'colour' is not a field" in capsys.readouterr().err
