"""report.html: a contact sheet of an output folder, one self-contained static page.

The page compares generations in a grid: rows by one field (the prompt by default), columns by
another (the model when several are swept, a model A/B; else the swept field with the most
values, usually the seed), each cell the videos of the jobs that share that row and column
value. Other swept fields become filters (the seed of a model A/B, say). Everything the
page needs is inline (CSS, a little plain JS) or a relative path into the folder (videos/,
posters/), so it opens from disk, offline, and still works when the folder is moved or zipped.

Building the page (`build_report`, `choose_axes`, `run_figures`) is pure and fast; reading the
ledger, extracting missing posters and writing the file is `write_report`'s job.

Votes: a second script block makes compare mode (two videos of one group that differ in the
columns' field, in the order pairing.py schedules, judged with the keys 1, 2, = and s), stars
and flags on grid cells (* and x, or the buttons on the video under the pointer), keeps the
choices in localStorage under the run's identity (`run_identity`) and exports them as a votes
file (votes.py has the format). The page carries the videos that can be compared and the pairs
as one inline JSON block; `rankings` (ranking.py's rankings.json) are drawn above the grid.

Scale: a cell carries its poster as a lazily loaded <img>; the page's script makes the cell's
<video> (muted, looping, `preload="none"`, `src` relative) only while the cell is near the
viewport (an IntersectionObserver) and removes it when the cell leaves. Measured in Chromium,
2,000 <video> elements in the markup cost about a second of page load before anything shows,
and each may hold a decoder; 2,000 posters cost little.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from ..errors import InputError, VidpipeError
from ..read.manifest import display_path
from ..read.schema import REQUEST_FIELDS
from ..run.ledger import LEDGER_FILE, Ledger
from ..run.plan import format_seconds
from ..states import JobState, states_where
from .atomic import replace_atomically
from .pairing import pair_schedule
from .posters import POSTER_DIR, PosterError, extract_poster, poster_path_for
from .qc import FAILED
from .ranking import RANKINGS_FILE, drawable_rankings, read_rankings, unseparated_note, vote_counts
from .results import results_frame
from .storage import Store

REPORT_FILE = "report.html"
CREDITS_PER_DOLLAR = 2_000_000

# Fields a sweep usually varies, in the order that breaks ties when choosing the columns.
SWEEP_FIELDS = ("seed", "ratio", "duration", "model", "watermark", "image_url", "last_image_url", "sample")
AXIS_FIELDS = (*REQUEST_FIELDS, "id", "sample", "status", "tags")
HOVER_FIELDS = ("prompt", "seed", "ratio", "duration", "model", "job_id", "status", "credits")
MISSING = "—"
# Long values (data: URIs, long prompts) are cut in labels and hover text: the page must stay
# small, and the table has the whole value.
LABEL_CHARS = 80
HOVER_CHARS = 600


# --- choosing the grid (pure) ----------------------------------------------------------------


def label(value: Any) -> str:
    """The text a value shows as, and groups by: 5 and 5.0 are one value, None and NaN are '—'."""
    if type(value) is str:  # most values: a page of 2,000 jobs asks for 100,000 labels
        return value
    if hasattr(value, "item"):  # numpy scalars, as pandas may hand them out
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def distinct_counts(frame: pd.DataFrame, fields: Iterable[str]) -> dict[str, int]:
    """How many distinct values (as labelled) each present field takes."""
    return {
        field: len({label(value) for value in frame[field]}) for field in fields if field in frame.columns
    }


def swept(frame: pd.DataFrame) -> dict[str, int]:
    """The sweep fields with more than one value, with their number of values."""
    return {field: count for field, count in distinct_counts(frame, SWEEP_FIELDS).items() if count > 1}


def choose_axes(
    frame: pd.DataFrame, rows: str | None = None, cols: str | None = None
) -> tuple[str, str | None]:
    """The (rows, columns) fields: the given ones, else prompt and the model (several swept) or
    the most-swept field.

    Columns are None (one column) when nothing else is swept. Raises InputError for a field
    the table does not have, or the same field twice.
    """
    for flag, field in (("--rows", rows), ("--cols", cols)):
        if field is not None and field not in AXIS_FIELDS:
            raise InputError(
                f"report: {flag} {field!r} is not a field; expected one of {', '.join(AXIS_FIELDS)}"
            )
    if rows is not None and rows == cols:
        raise InputError(f"report: --rows and --cols are both {rows!r}; choose two different fields")
    candidates = swept(frame)
    if "prompt" in frame.columns and distinct_counts(frame, ["prompt"])["prompt"] > 1:
        candidates["prompt"] = distinct_counts(frame, ["prompt"])["prompt"]
    if rows is None:
        rows = "prompt" if cols != "prompt" else _most_swept(candidates, exclude={cols}) or "model"
    if cols is None:
        # Several models: a comparison of models, whatever else is swept (seeds become a filter).
        cols = (
            "model" if "model" in candidates and rows != "model" else _most_swept(candidates, exclude={rows})
        )
    return rows, cols


def _most_swept(counts: Mapping[str, int], exclude: set[str | None]) -> str | None:
    # max() keeps the first of equals, and `counts` is in SWEEP_FIELDS order (prompt last).
    options = [field for field in counts if field not in exclude]
    return max(options, key=lambda field: counts[field]) if options else None


def filter_fields(frame: pd.DataFrame, rows: str, cols: str | None) -> list[str]:
    """Swept fields not on an axis, then `status` when jobs ended differently: one filter each."""
    fields = [field for field in swept(frame) if field not in (rows, cols)]
    if "prompt" not in (rows, cols) and distinct_counts(frame, ["prompt"]).get("prompt", 0) > 1:
        fields.append("prompt")
    if distinct_counts(frame, ["status"]).get("status", 0) > 1 and "status" not in (rows, cols):
        fields.append("status")
    return fields


def run_figures(
    frame: pd.DataFrame, runs: list[Mapping[str, Any]], name: str, now: datetime
) -> dict[str, Any]:
    """The header's figures: job counts by outcome, credits, wall time summed over runs, and
    the manifest and provider of the latest run.

    Wall time counts finished runs only: an unfinished run either crashed (its end is unknown)
    or is the one still running.
    """
    status = frame["status"] if len(frame) else pd.Series(dtype=str)
    durations = [
        (_parse_time(run["finished_at"]) - _parse_time(run["started_at"])).total_seconds()
        for run in runs
        if run.get("finished_at")
    ]
    credits = float(pd.to_numeric(frame["credits"], errors="coerce").fillna(0).sum()) if len(frame) else 0.0
    return {
        "name": name,
        "jobs": len(frame),
        "completed": int((status == JobState.COMPLETED).sum()),
        "failed": int(status.isin(states_where("counts_as_failed")).sum()),
        "uncertain": int((status == JobState.UNCERTAIN).sum()),
        "not_finished": int((~status.isin(states_where("final"))).sum()),
        "credits": credits,
        "wall_seconds": sum(durations) if durations else None,
        "runs": len(runs),
        "manifest": runs[-1].get("manifest") if runs else None,
        "provider": runs[-1].get("provider") if runs else None,
        "unfinished_runs": len(runs) - len(durations),
        "generated_at": now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "run_id": run_identity(name, runs),
    }


def run_identity(name: str, runs: list[Mapping[str, Any]]) -> str:
    """What the page keys its votes by in the browser: the folder's name and its first run's
    start, so a regenerated report keeps its votes and a --fresh start (a new ledger) does not."""
    first = str(runs[0].get("started_at")) if runs else ""
    return hashlib.sha256(f"{name}\n{first}".encode()).hexdigest()[:16]


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- building the page (pure) ----------------------------------------------------------------


def build_report(
    frame: pd.DataFrame,
    figures: Mapping[str, Any],
    rows: str | None = None,
    cols: str | None = None,
    rankings: Mapping[str, Any] | None = None,
) -> str:
    """The whole page as text, for the jobs in `frame` (one row per job, as results_frame gives).

    Optional columns: `poster` (a path relative to the page, or None) and `present` (False when
    a completed job's video file is missing). Cells come in row order of first appearance by
    `index`, columns sorted by value; several jobs in one cell all show. No value reaches the
    page unescaped, and the page refers to nothing but relative paths. Compare mode pairs
    jobs that differ in the columns' field; `rankings` (as rankings.json holds them) are drawn
    above the grid.
    """
    rows, cols = choose_axes(frame, rows, cols)
    filters = filter_fields(frame, rows, cols)
    jobs = frame.sort_values("index", kind="stable").to_dict("records") if len(frame) else []
    row_keys = list(dict.fromkeys(label(job.get(rows)) for job in jobs))
    col_keys = _sorted_keys(jobs, cols) if cols else [""]
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for job in jobs:
        cells.setdefault((label(job.get(rows)), label(job.get(cols)) if cols else ""), []).append(job)
    first_of_row = {}
    for job in jobs:
        first_of_row.setdefault(label(job.get(rows)), job)

    parts = [_HEAD.replace("{title}", escape(f"{figures.get('name', 'vidpipe')} · vidpipe report"))]
    parts.append(_header(figures, rows, cols))
    parts.append(_controls(jobs, filters))
    # Fields that do not vary cannot split a group: only the swept ones are looked at.
    parts.append(_vote_data(jobs, cols, group_fields(cols, (rows, *filters)), figures))
    parts.append(f'<main>{_rankings(rankings or {})}{_COMPARE}<table class="grid"><thead><tr>')
    parts.append(f'<th class="corner">{escape(rows)} ╲ {escape(cols or "")}</th>')
    for number, key in enumerate(col_keys):
        heading = f"{cols} {key}" if cols else "all jobs"
        parts.append(f'<th class="col" data-col="{number}" data-value="{escape(key)}">{escape(heading)}</th>')
    parts.append("</tr></thead><tbody>")
    for row_number, row_key in enumerate(row_keys):
        parts.append(f"<tr>{_row_heading(row_number, row_key, rows, first_of_row[row_key])}")
        for col_number, col_key in enumerate(col_keys):
            clips = "".join(_clip(job, filters) for job in cells.get((row_key, col_key), []))
            parts.append(
                f'<td class="cell" data-row="{row_number}" data-col="{col_number}">'
                f'<div class="clips">{clips}</div></td>'
            )
        parts.append("</tr>")
    parts.append("</tbody></table>")
    if not jobs:
        parts.append('<p class="empty">No jobs in this output folder yet.</p>')
    parts.append(f"</main><script>{_SCRIPT}</script></body></html>\n")
    return "".join(parts)


def _sorted_keys(jobs: list[dict[str, Any]], field: str) -> list[str]:
    first: dict[str, Any] = {}
    for job in jobs:
        first.setdefault(label(job.get(field)), job.get(field))

    def order(key: str) -> tuple[int, float, str]:
        value = first[key]
        if key == MISSING:
            return (2, 0.0, "")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (0, float(value), "")
        return (1, 0.0, key)

    return sorted(first, key=order)


def _header(figures: Mapping[str, Any], rows: str, cols: str | None) -> str:
    credits = figures.get("credits") or 0.0
    wall = figures.get("wall_seconds")
    runs = figures.get("runs", 0)
    wall_note = f"{runs} run{'s' if runs != 1 else ''}"
    if figures.get("unfinished_runs"):
        wall_note += f", {figures['unfinished_runs']} unfinished"
    items = [
        ("Jobs", f"{figures.get('jobs', 0):,}", ""),
        ("Completed", f"{figures.get('completed', 0):,}", "ok"),
        ("Failed", f"{figures.get('failed', 0):,}", "bad" if figures.get("failed") else ""),
        ("Uncertain", f"{figures.get('uncertain', 0):,}", "warn" if figures.get("uncertain") else ""),
        *([("Not finished", f"{figures['not_finished']:,}", "warn")] if figures.get("not_finished") else []),
        ("Credits", f"{credits:,.0f}", "", f"about ${credits / CREDITS_PER_DOLLAR:,.2f}"),
        ("Wall time", format_seconds(wall) if wall is not None else MISSING, "", wall_note),
    ]
    figures_html = "".join(
        f'<div class="figure {item[2]}"><dt>{escape(item[0])}</dt><dd>{escape(item[1])}</dd>'
        + (f"<small>{escape(item[3])}</small>" if len(item) > 3 else "")
        + "</div>"
        for item in items
    )
    axes = f"rows: {rows} · columns: {cols}" if cols else f"rows: {rows}"
    manifest = str(figures.get("manifest") or "")
    if manifest:
        # The file name: a full path (from a run outside the current folder) would crowd the header.
        axes = f"{Path(manifest).name} on {figures.get('provider') or '?'} · {axes}"
    return (
        f'<header><div class="title"><h1>{escape(str(figures.get("name", "")))}</h1>'
        f'<p class="meta" title="{escape(manifest)}">{escape(axes)} · generated '
        f"{escape(str(figures.get('generated_at', '')))}"
        f'</p></div><dl class="figures">{figures_html}</dl></header>'
    )


def _controls(jobs: list[dict[str, Any]], filters: list[str]) -> str:
    selects = []
    for field in filters:
        values = _sorted_keys(jobs, field)
        options = "".join(
            f'<option value="{escape(v)}">{escape(_cut(v, LABEL_CHARS))}</option>' for v in values
        )
        selects.append(
            f'<label>{escape(field)} <select data-filter="{escape(field)}">'
            f'<option value="">all {len(values)}</option>{options}</select></label>'
        )
    return (
        '<nav class="controls">'
        + "".join(selects)
        + '<label>play <select id="play-mode"><option value="visible">all in view</option>'
        '<option value="hover">on hover</option></select></label>'
        '<label>size <input id="clip-size" type="range" min="80" max="480" step="10" value="160"></label>'
        + _VOTE_CONTROLS
        + f'<span id="shown" class="shown">{len(jobs):,} of {len(jobs):,} jobs shown</span></nav>'
    )


_VOTE_CONTROLS = (
    '<span class="votes">'
    '<button id="compare-open" type="button" title="compare two videos (c)">compare</button>'
    '<label>reviewer <input id="reviewer" size="10" placeholder="your name"></label>'
    '<button id="votes-export" type="button">export votes</button>'
    '<span id="votes-count"></span></span>'
)
_COMPARE = (
    '<section id="compare" class="compare" hidden><p class="compare-head">'
    '<span id="compare-prompt"></span><span id="pairs-left"></span></p>'
    '<div class="pair"><figure data-side="a"><div class="stage"></div><figcaption></figcaption></figure>'
    '<figure data-side="b"><div class="stage"></div><figcaption></figcaption></figure></div>'
    '<p class="keys"><kbd>1</kbd> left is better · <kbd>2</kbd> right is better · <kbd>=</kbd> tie · '
    "<kbd>s</kbd> skip · <kbd>c</kbd> or <kbd>Esc</kbd> back to the grid</p></section>"
)


def _row_heading(number: int, key: str, field: str, first: Mapping[str, Any]) -> str:
    badge = ""
    if field == "prompt" and first.get("id"):
        badge = f'<span class="badge">{escape(_cut(label(first["id"]), LABEL_CHARS))}</span>'
    text = key if field in ("prompt", "id") else f"{field} {key}"
    if field == "prompt" and key == MISSING:
        text = "(no prompt: image only)"
    return (
        f'<th class="row" data-row="{number}" title="{escape(_cut(key, HOVER_CHARS))}">'
        f'{badge}<span class="text">{escape(_cut(text, HOVER_CHARS))}</span></th>'
    )


def _clip(job: Mapping[str, Any], filters: list[str]) -> str:
    attributes = "".join(
        f' data-{field}="{escape(label(job.get(field)))}"' for field in filters if field != "status"
    )
    status = label(job.get("status"))
    hover = "\n".join(f"{field}: {_cut(label(job.get(field)), HOVER_CHARS)}" for field in HOVER_FIELDS)
    caption = " · ".join(
        _cut(label(job.get(field)), 24) for field in filters if field not in ("prompt", "status")
    )
    width, height = _aspect(job.get("ratio"))
    shape = f"aspect-ratio:{width}/{height}"
    path = job.get("path")
    if _playable(job):
        poster = job.get("poster")
        still = (
            f'<img src="{escape(quote(poster))}" loading="lazy" decoding="async" alt="">'
            if isinstance(poster, str) and poster
            else ""
        )
        source = escape(quote(path))
        body = f'<div class="frame" data-src="{source}" style="{shape}">{still}{_qc_badge(job)}</div>'
        kind = "ok"
        if _failed_checks(job):
            hover += f"\nqc: failed: {_cut('; '.join(job.get('qc_problems') or []), HOVER_CHARS)}"
    else:
        body = f'<div class="status" style="{shape}"><b>{escape(status)}</b>{_problem(job, status)}</div>'
        kind = "problem"
        error = job.get("error_message")
        if isinstance(error, str) and error:
            hover += f"\nerror: {_cut(error, HOVER_CHARS)}"
    return (
        f'<figure class="clip {kind}{" portrait" if height > width else ""}" '
        f'data-job-id="{escape(label(job.get("job_id")))}" '
        f'data-status="{escape(status)}"{attributes} title="{escape(hover)}">{body}'
        + (f"<figcaption>{escape(caption)}</figcaption>" if caption else "")
        + "</figure>"
    )


def _failed_checks(job: Mapping[str, Any]) -> bool:
    return isinstance(job.get("qc"), str) and job["qc"] == FAILED


def _qc_badge(job: Mapping[str, Any]) -> str:
    """A small mark on a video that failed its automatic checks (qc.py); the reasons hover."""
    if not _failed_checks(job):
        return ""
    reasons = escape(_cut("; ".join(job.get("qc_problems") or []), HOVER_CHARS))
    return f'<span class="qc" title="{reasons}">QC failed</span>'


def _playable(job: Mapping[str, Any]) -> bool:
    path, present = job.get("path"), job.get("present", True)
    completed = label(job.get("status")) == JobState.COMPLETED
    return bool(completed and isinstance(path, str) and path and (present is None or bool(present)))


# The fields that make two jobs "the same request but for the compared field" (votes.py, ranking.py).
GROUP_FIELDS = REQUEST_FIELDS
# Fields a model's own rules set (per_model values, run.adapt's nearest values): when models are
# compared, a job of Veo at 6 s and one of Wan at 5 s are the same request, so these do not split.
MODEL_SET_FIELDS = ("ratio", "duration")


def group_fields(by: str | None, fields: Iterable[str] = GROUP_FIELDS) -> list[str]:
    """Of `fields`, those two jobs must agree on to be compared for `by`: the one definition of
    a group, for compare mode's pairs, stars and `vidpipe rank`."""
    ignored = MODEL_SET_FIELDS if by == "model" else ()
    return [f for f in fields if f in GROUP_FIELDS and f != by and f not in ignored]


def _vote_data(
    jobs: list[dict[str, Any]], field: str | None, group_fields: list[str], figures: Mapping[str, Any]
) -> str:
    """What compare mode and the votes need, as inline JSON: the run's identity, the videos
    that can be compared (job id, value of the compared field) and the pairs to show. Two
    videos are in one group when they agree on `group_fields`."""
    candidates = [job for job in jobs if _playable(job)] if field else []
    keyed = [(tuple(label(job.get(f)) for f in group_fields), label(job.get(field))) for job in candidates]
    data = {
        "run": figures.get("run_id") or "",
        "name": str(figures.get("name") or "vidpipe"),
        "field": field,
        "candidates": [
            [label(job.get("job_id")), value] for job, (_, value) in zip(candidates, keyed, strict=True)
        ],
        "pairs": pair_schedule(keyed, str(figures.get("run_id") or "")),
    }
    # "<" as an escape: no "</script>" in a prompt can end the block early.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    return f'<script type="application/json" id="vote-data">{text}</script>'


def _rankings(rankings: Mapping[str, Any]) -> str:
    """Ranked bars with their intervals, one block per ranked field; nothing without rankings."""
    blocks = []
    for by, ranking in rankings.items():
        ranked = ranking.get("ranking") or []
        if not isinstance(ranked, list) or not ranked:
            continue
        low = min(min(row["low"], row["score"]) for row in ranked)
        high = max(max(row["high"], row["score"]) for row in ranked)
        span = (high - low) or 1.0

        def part(length: float, span: float = span) -> str:
            return f"{length / span * 100:.1f}%"

        def at(score: float, low: float = low) -> str:
            return part(score - low)

        items = "".join(
            f'<li data-value="{escape(str(row["value"]))}">'
            f'<span class="value">{escape(_cut(str(row["value"]), 40))}</span>'
            f'<span class="bar"><i style="left:{at(row["low"])};width:{part(row["high"] - row["low"])}"></i>'
            f'<b style="left:{at(row["score"])}"></b></span>'
            f'<span class="num">{row["score"]:+.2f} [{row["low"]:+.2f}, {row["high"]:+.2f}] · '
            f"{row['wins']}–{row['losses']}–{row['ties']} · ★{row['stars']} ⚑{row['flags']}</span></li>"
            for row in ranked
        )
        notes = "".join(
            f"<li>{escape(unseparated_note(str(by), a, b))}</li>" for a, b in ranking.get("unseparated") or []
        )
        blocks.append(
            f'<div class="ranking" data-by="{escape(by)}"><h2>Ranking by {escape(by)}</h2>'
            f"<p>{escape(vote_counts(ranking))}; "
            f"score [95% interval] · wins–losses–ties</p><ol>{items}</ol>"
            + (f'<ul class="unseparated">{notes}</ul>' if notes else "")
            + "</div>"
        )
    return f'<section class="rankings">{"".join(blocks)}</section>' if blocks else ""


def _problem(job: Mapping[str, Any], status: str) -> str:
    if status == JobState.COMPLETED:
        return f"<span>file missing: {escape(label(job.get('path')))}</span>"
    name, message = job.get("error_name"), job.get("error_message")
    # The error name often repeats the status ("uncertain: uncertain: ..."): show it once.
    parts = (name if name != status else None, message)
    text = ": ".join(part for part in parts if isinstance(part, str) and part)
    if not text:
        text = "not run yet" if status == JobState.PENDING else "no error recorded"
    return f"<span>{escape(_cut(text, HOVER_CHARS))}</span>"


def _aspect(ratio: Any) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in str(ratio).split(":"))
    except ValueError:
        return 16, 9
    return (width, height) if width > 0 and height > 0 else (16, 9)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- writing (I/O) ---------------------------------------------------------------------------


def write_report(
    output_dir: Path, rows: str | None = None, cols: str | None = None, *, store: Store | None = None
) -> Path:
    """Write `<output_dir>/report.html` for the jobs in its ledger; returns its path.

    Extracts posters that are missing first (a video that does not decode just has none).
    The file is replaced atomically. Raises InputError when the folder has no ledger. With a
    `store` (the run publishes to a URL), `output_dir` is the run's work folder: which videos
    exist comes from the store, and the page (and any poster the store lacks) is published there.
    """
    output_dir = Path(output_dir)
    ledger_path = output_dir / LEDGER_FILE
    if not ledger_path.is_file():
        raise InputError(f"{output_dir}: no {LEDGER_FILE} here; expected an output folder of vidpipe run")
    with Ledger(ledger_path, read_only=True) as ledger:
        frame = results_frame(ledger)
        runs = ledger.runs()
    if frame["in_manifest"].any():
        # Jobs of an earlier manifest stay in the ledger (and the table), not in the comparison.
        frame = frame[frame["in_manifest"]]
    files = _files(output_dir, frame) if store is None else _stored(output_dir, frame, store)
    frame = frame.assign(**files)
    figures = run_figures(frame, runs, output_dir.resolve().name, datetime.now(timezone.utc))
    rankings = drawable_rankings(read_rankings(output_dir), display_path(output_dir / RANKINGS_FILE))
    page = build_report(frame, figures, rows, cols, rankings)
    target = output_dir / REPORT_FILE
    replace_atomically(target, lambda temporary: temporary.write_text(page, encoding="utf-8"))
    if store is not None:
        store.publish(target, REPORT_FILE)
    return target


def _files(output_dir: Path, frame: pd.DataFrame) -> dict[str, list[Any]]:
    """`present` and `poster` columns: which videos exist, and their posters (made if missing)."""
    paths = [p if isinstance(p, str) and p else None for p in frame["path"]]
    present = [bool(p) and (output_dir / p).is_file() for p in paths]
    wanted = [(p, poster_path_for(output_dir, p)) for p, here in zip(paths, present, strict=True) if here]
    missing = [(output_dir / p, poster) for p, poster in wanted if _stale(output_dir / p, poster)]
    if missing:
        # Decoding is in C and releases the GIL: threads give a near-linear speed-up.
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(lambda pair: _try_poster(*pair), missing))
    posters = {p: poster.relative_to(output_dir).as_posix() for p, poster in wanted if poster.is_file()}
    return {"present": present, "poster": [posters.get(p) if p else None for p in paths]}


def _stored(output_dir: Path, frame: pd.DataFrame, store: Store) -> dict[str, list[Any]]:
    """`present` and `poster` columns for a run published to a store: one listing of its videos
    and one of its posters; a poster the store lacks is published from the work folder, or made
    from the video fetched from the store first."""
    paths = [p if isinstance(p, str) and p else None for p in frame["path"]]
    folders = sorted({Path(p).parts[0] for p in paths if p and len(Path(p).parts) > 1})
    videos = {key for folder in folders for key in store.sizes(folder)}
    present = [bool(p) and Path(p).as_posix() in videos for p in paths]
    published = set(store.sizes(POSTER_DIR))
    wanted = {p: poster_path_for(output_dir, p) for p, here in zip(paths, present, strict=True) if here}

    def settle(path: str) -> str | None:
        poster = wanted[path]
        key = f"{POSTER_DIR}/{poster.name}"
        if key in published:
            return key
        with contextlib.suppress(VidpipeError, OSError):
            if not poster.is_file():
                with tempfile.TemporaryDirectory(dir=output_dir, prefix=".report-") as scratch:
                    video = Path(scratch) / Path(path).name
                    store.fetch(Path(path).as_posix(), video)
                    _try_poster(video, poster)
            if poster.is_file():
                store.publish(poster, key)
                return key
        return None

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 4)) as pool:
        posters = dict(zip(wanted, pool.map(settle, wanted), strict=True))
    return {"present": present, "poster": [posters.get(p) if p else None for p in paths]}


def _stale(video: Path, poster: Path) -> bool:
    # A rerun with --fresh may download a new video under the same name: its poster is older.
    try:
        return poster.stat().st_mtime < video.stat().st_mtime
    except FileNotFoundError:
        return True


def _try_poster(video: Path, poster: Path) -> None:
    # A video that does not decode still gets its cell (the browser may play it); no still.
    with contextlib.suppress(PosterError):
        extract_poster(video, poster)


_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
:root { --clip: 160px; --ink: #1d2330; --muted: #6b7385; --line: #e4e7ee; --bg: #f6f7fa;
  --ok: #1f8a4c; --bad: #c0392b; --warn: #b7791f; color-scheme: light; }
* { box-sizing: border-box; }
/* Header and filters stay put; the grid scrolls both ways under them, with its column and row
   headings sticky, which only works when the grid has its own scroll box. */
html, body { height: 100%; }
body { margin: 0; display: flex; flex-direction: column; color: var(--ink); background: var(--bg);
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif; }
header { display: flex; flex-wrap: wrap; gap: 12px 32px; align-items: center;
  padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line); }
.title { flex: 1 1 320px; min-width: 0; }
h1 { margin: 0; font-size: 21px; font-weight: 650; letter-spacing: -0.01em; }
.meta { margin: 3px 0 0; color: var(--muted); font-size: 13px; }
.figures { display: flex; flex-wrap: wrap; gap: 8px; margin: 0 0 0 auto; }
.figure { min-width: 92px; padding: 7px 12px; border: 1px solid var(--line); border-radius: 8px;
  background: #fbfcfd; }
.figure dt { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .06em; }
.figure dd { margin: 1px 0 0; font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }
.figure small { display: block; color: var(--muted); font-size: 11px; }
.figure.ok dd { color: var(--ok); }
.figure.bad dd { color: var(--bad); }
.figure.warn dd { color: var(--warn); }
.controls { display: flex; flex-wrap: wrap; gap: 8px 20px; align-items: center; padding: 8px 24px;
  background: #fff; border-bottom: 1px solid var(--line); }
.controls label { color: var(--muted); font-size: 13px; display: flex; gap: 6px; align-items: center; }
.controls select { font: inherit; padding: 3px 6px; border: 1px solid var(--line); border-radius: 6px;
  background: #fff; color: var(--ink); max-width: 260px; }
.shown { margin-left: auto; color: var(--muted); font-size: 13px; font-variant-numeric: tabular-nums; }
main { flex: 1; min-height: 0; overflow: auto; padding: 0 24px 32px; }
.grid { border-collapse: separate; border-spacing: 0; width: max-content; }
.grid th { font-weight: 600; text-align: left; vertical-align: top; }
.grid thead th { position: sticky; top: 0; z-index: 1; padding: 12px 8px 6px; background: var(--bg);
  color: var(--muted); font-size: 12px; white-space: nowrap; border-bottom: 1px solid var(--line); }
.grid thead .corner { left: 0; z-index: 2; color: #a0a6b3; font-weight: 500; padding-left: 0; }
.grid th.row { position: sticky; left: 0; z-index: 1; width: 240px; min-width: 240px; max-width: 240px;
  padding: 10px 16px 10px 0; background: var(--bg); font-weight: 500; border-bottom: 1px solid var(--line); }
.grid th.row .text { display: -webkit-box; -webkit-line-clamp: 7; -webkit-box-orient: vertical;
  overflow: hidden; overflow-wrap: anywhere; }
.badge { display: inline-block; margin-bottom: 4px; padding: 1px 8px; border-radius: 999px;
  background: #e6eaf6; color: #34467a; font-size: 11px; font-weight: 600; }
.cell { padding: 10px; vertical-align: top; border-bottom: 1px solid var(--line);
  border-left: 1px solid var(--line); }
.grid thead th.col { padding-left: 10px; border-left: 1px solid var(--line); }
.clips { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start;
  max-width: calc(var(--clip) * 3.2); }
.cell:not(:has(.clip:not([hidden]))) .clips::before { content: "—"; color: #c5c9d2; padding: 4px; }
.clip { margin: 0; display: flex; flex-direction: column; gap: 3px; }
.clip[hidden] { display: none; }
/* Longest side = --clip, so 16:9 and 9:16 of one sweep look alike in size. */
.clip .frame, .clip .status { display: block; width: var(--clip); height: auto; border-radius: 6px; }
.clip.portrait .frame, .clip.portrait .status { width: auto; height: var(--clip); }
.clip .frame { position: relative; overflow: hidden; background: #1b1e24;
  box-shadow: 0 1px 3px rgba(16,24,40,.18); }
.frame img, .frame video { position: absolute; inset: 0; width: 100%; height: 100%; object-fit: contain; }
.clip .status { display: flex; flex-direction: column; justify-content: center; gap: 4px; padding: 8px 10px;
  overflow: hidden; background: #fff4f2; border: 1px solid #f3cdc7; color: var(--bad); font-size: 12px; }
.clip.portrait .status { min-width: calc(var(--clip) * .5625); }
.clip .status b { text-transform: uppercase; letter-spacing: .05em; font-size: 11px; }
.clip .status span { color: #5b3a35; display: -webkit-box; -webkit-line-clamp: 5;
  -webkit-box-orient: vertical; overflow: hidden; overflow-wrap: anywhere; }
.clip[data-status="uncertain"] .status, .clip[data-status="pending"] .status,
.clip[data-status="submitted"] .status, .clip[data-status="submitting"] .status,
.clip[data-status="generated"] .status, .clip[data-status="timed_out"] .status {
  background: #fff9ec; border-color: #f1dfb5; color: var(--warn); }
.clip figcaption { color: var(--muted); font-size: 11px; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; max-width: var(--clip); }
.frame.broken { outline: 2px solid var(--bad); }
.frame .qc { position: absolute; top: 4px; left: 4px; z-index: 1; padding: 1px 6px; border-radius: 4px;
  background: var(--bad); color: #fff; font-size: 10px; font-weight: 600; }
.empty { color: var(--muted); padding: 16px 0; }
.votes { display: flex; gap: 8px; align-items: center; }
.votes button, .marker button { font: inherit; font-size: 13px; padding: 3px 10px;
  border: 1px solid var(--line); border-radius: 6px; background: #fff; color: var(--ink); cursor: pointer; }
.votes input { font: inherit; padding: 3px 6px; border: 1px solid var(--line); border-radius: 6px; }
#votes-count { color: var(--muted); font-size: 13px; }
/* Stars and flags: one toolbar, moved into the clip under the pointer. */
.marker { position: absolute; top: 4px; right: 4px; z-index: 1; display: flex; gap: 3px; }
.marker button { padding: 0 5px; font-size: 12px; opacity: .85; }
.clip[data-mark="star"] .frame { outline: 3px solid #e0a800; }
.clip[data-mark="bad"] .frame { outline: 3px solid var(--bad); opacity: .55; }
.clip[data-mark] figcaption::before { content: "★ "; color: #e0a800; }
.clip[data-mark="bad"] figcaption::before { content: "⚑ bad "; color: var(--bad); }
body.comparing .grid, body.comparing .rankings { display: none; }
.compare-head { display: flex; gap: 16px; margin: 14px 0 8px; font-weight: 500; }
#pairs-left { margin-left: auto; color: var(--muted); font-variant-numeric: tabular-nums; }
.pair { display: flex; gap: 16px; }
.pair figure { flex: 1; margin: 0; }
.pair .stage { position: relative; aspect-ratio: 16/9; background: #1b1e24; border-radius: 8px;
  overflow: hidden; }
.pair video { position: absolute; inset: 0; width: 100%; height: 100%; object-fit: contain; }
.pair figcaption { margin-top: 4px; color: var(--muted); }
.keys { color: var(--muted); }
kbd { padding: 0 5px; border: 1px solid var(--line); border-radius: 4px; background: #fff; font: inherit; }
.rankings { display: flex; flex-wrap: wrap; gap: 12px 40px; padding: 12px 0; }
.ranking h2 { margin: 0; font-size: 15px; }
.ranking p { margin: 2px 0 6px; color: var(--muted); font-size: 12px; }
.ranking ol { margin: 0; padding-left: 22px; }
.ranking li { display: flex; gap: 10px; align-items: center; font-size: 13px; }
.ranking .value { width: 90px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.ranking .bar { position: relative; width: 220px; height: 12px; background: #eef0f4; border-radius: 3px; }
.ranking .bar i { position: absolute; top: 4px; height: 4px; background: #8da2d8; }
.ranking .bar b { position: absolute; top: 1px; width: 3px; height: 10px; margin-left: -1px;
  background: #34467a; }
.ranking .num { color: var(--muted); font-variant-numeric: tabular-nums; }
.unseparated { margin: 4px 0 0; padding-left: 22px; color: var(--warn); font-size: 12px; }
</style></head><body>
"""

_SCRIPT = """
(() => {
  "use strict";
  const clips = Array.from(document.querySelectorAll(".clip"));
  const frames = Array.from(document.querySelectorAll(".frame[data-src]"));
  const filters = Array.from(document.querySelectorAll("select[data-filter]"));
  const shown = document.getElementById("shown");
  const near = new Set();
  let mode = "visible";

  // A <video> exists only while its cell is near the viewport: 2,000 of them cost a second of
  // page load and hold decoders, so the page carries a poster <img> and this makes the rest.
  function attach(frame) {
    if (frame.video) return frame.video;
    const video = document.createElement("video");
    for (const name of ["muted", "loop", "playsinline"]) video.setAttribute(name, "");
    video.muted = true;
    video.preload = "none";
    const still = frame.querySelector("img");
    if (still) video.poster = still.getAttribute("src");
    video.addEventListener("error", () => {
      frame.classList.add("broken");
      frame.closest(".clip").title += "\\nthe video did not load";
    });
    video.src = frame.dataset.src;
    frame.append(video);
    frame.video = video;
    return video;
  }
  function detach(frame) {
    const video = frame.video;
    if (!video) return;
    video.pause();
    video.removeAttribute("src");
    video.load();  // gives the decoder back
    video.remove();
    frame.video = null;
  }
  function play(frame) {
    const started = attach(frame).play();
    // A play() cut short by a pause or a detach rejects: expected, not an error.
    if (started) started.catch(() => {});
  }

  const watcher = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const frame = entry.target;
      if (entry.isIntersecting) {
        near.add(frame);
        if (mode === "visible") play(frame);
      } else {
        near.delete(frame);
        detach(frame);
      }
    }
  }, { rootMargin: "150px" });

  for (const frame of frames) {
    watcher.observe(frame);
    frame.addEventListener("mouseenter", () => { if (mode === "hover") play(frame); });
    frame.addEventListener("mouseleave", () => { if (mode === "hover" && frame.video) frame.video.pause(); });
  }

  document.getElementById("play-mode").addEventListener("change", (event) => {
    mode = event.target.value;
    for (const frame of near) {
      if (mode === "visible") play(frame);
      else if (frame.video) frame.video.pause();
    }
  });
  document.getElementById("clip-size").addEventListener("input", (event) => {
    document.documentElement.style.setProperty("--clip", event.target.value + "px");
  });

  function applyFilters() {
    const wanted = filters.filter((s) => s.value !== "").map((s) => [s.dataset.filter, s.value]);
    let count = 0;
    for (const clip of clips) {
      const keep = wanted.every(([field, value]) => clip.getAttribute("data-" + field) === value);
      clip.hidden = !keep;
      if (keep) count += 1;
    }
    const total = clips.length.toLocaleString("en");
    shown.textContent = count.toLocaleString("en") + " of " + total + " jobs shown";
  }
  for (const select of filters) select.addEventListener("change", applyFilters);
})();

(() => {
  "use strict";
  // Votes: comparisons in compare mode, stars and flags in the grid, kept in this browser's
  // localStorage under the run's identity, exported as the JSON Lines file that
  // `vidpipe votes import` reads. The pairs and their order come from the page (pairing.py).
  const data = JSON.parse(document.getElementById("vote-data").textContent);
  const storeKey = "vidpipe-votes:" + data.run;
  let clips = null;
  const state = Object.assign({ reviewer: "", pairs: {}, marks: {} }, load());
  const reviewer = document.getElementById("reviewer");
  const compare = document.getElementById("compare");
  const skipped = new Set();
  let shownPair = null;
  let hovered = null;

  function load() {
    try { return JSON.parse(localStorage.getItem(storeKey)) || {}; } catch (error) { return {}; }
  }
  function clipOf(job) {
    // Made at first use: a page nobody votes on pays nothing for it.
    if (!clips) {
      clips = new Map();
      for (const clip of document.querySelectorAll(".clip")) clips.set(clip.dataset.jobId, clip);
    }
    return clips.get(job);
  }
  function save() {
    // A browser that keeps no storage for files still votes; the export is what counts.
    try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (error) { /* kept in memory */ }
    count();
  }
  function count() {
    const marks = Object.values(state.marks).filter((m) => m.mark !== "none").length;
    document.getElementById("votes-count").textContent =
      Object.keys(state.pairs).length + " votes · " + marks + " marks";
  }
  function pairKey(a, b) { return a < b ? a + " " + b : b + " " + a; }
  function jobsOf(pair) { return [data.candidates[pair[0]][0], data.candidates[pair[1]][0]]; }

  // --- stars and flags in the grid
  const marker = document.createElement("div");
  marker.className = "marker";
  marker.innerHTML = '<button type="button" data-mark="star" title="star (*)">★</button>' +
    '<button type="button" data-mark="bad" title="flag as bad (x)">⚑</button>';
  function setMark(clip, mark) {
    const job = clip.dataset.jobId;
    const current = state.marks[job] ? state.marks[job].mark : "none";
    const next = current === mark ? "none" : mark;  // the same key again clears it
    state.marks[job] = { mark: next, at: new Date().toISOString() };
    showMark(clip, next);
    save();
  }
  function showMark(clip, mark) {
    if (mark === "none") delete clip.dataset.mark; else clip.dataset.mark = mark;
  }
  marker.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (button && hovered) setMark(hovered, button.dataset.mark);
  });
  document.querySelector("main").addEventListener("mouseover", (event) => {
    const frame = event.target.closest(".clip .frame");
    if (!frame) {  // off the videos: the keys mark nothing
      hovered = null;
      marker.remove();
      return;
    }
    if (frame.contains(marker)) return;
    hovered = frame.closest(".clip");
    frame.append(marker);
  });
  for (const [job, entry] of Object.entries(state.marks)) {
    const clip = clipOf(job);
    if (clip) showMark(clip, entry.mark);
  }

  // --- compare mode
  function nextPair() {
    let pair = data.pairs.find((p) => unjudged(p) && !skipped.has(p));
    if (!pair && skipped.size) {  // every pair left was skipped: show them again
      skipped.clear();
      pair = data.pairs.find(unjudged);
    }
    return pair || null;
  }
  function unjudged(pair) {
    const [a, b] = jobsOf(pair);
    return !(pairKey(a, b) in state.pairs);
  }
  function video(side, clip) {
    const stage = compare.querySelector('[data-side="' + side + '"] .stage');
    stage.replaceChildren();
    const frame = clip.querySelector(".frame");
    const player = document.createElement("video");
    for (const name of ["muted", "loop", "playsinline"]) player.setAttribute(name, "");
    player.muted = true;
    const still = frame.querySelector("img");
    if (still) player.poster = still.getAttribute("src");
    player.src = frame.dataset.src;
    stage.append(player);
    return player;
  }
  function showPair() {
    const pair = nextPair();
    const left = data.pairs.filter(unjudged).length;
    document.getElementById("pairs-left").textContent = left + " of " + data.pairs.length + " pairs left";
    shownPair = pair;
    for (const player of compare.querySelectorAll("video")) {
      player.pause();
      player.removeAttribute("src");
      player.load();  // gives the decoder back
    }
    if (!pair) {
      for (const stage of compare.querySelectorAll(".stage")) stage.replaceChildren();
      document.getElementById("compare-prompt").textContent = "Every pair is judged: export the votes.";
      return;
    }
    const [a, b] = jobsOf(pair).map(clipOf);
    const heading = a.closest("tr") && a.closest("tr").querySelector("th.row .text");
    document.getElementById("compare-prompt").textContent = heading ? heading.textContent : "";
    const players = [video("a", a), video("b", b)];
    for (const [side, position] of [["a", pair[0]], ["b", pair[1]]]) {
      const caption = compare.querySelector('[data-side="' + side + '"] figcaption');
      caption.textContent = data.field + " " + data.candidates[position][1];
    }
    // In sync: both start together once both can play, and the right follows the left.
    const ready = (p) => new Promise((resolve) => p.addEventListener("canplay", resolve, { once: true }));
    Promise.all(players.map(ready)).then(() => {
      for (const p of players) {
        p.currentTime = 0;
        p.play().catch(() => {});  // cut short by the next pair: expected
      }
    });
    players[0].addEventListener("timeupdate", () => {
      const [lead, follow] = players;
      if (lead.currentTime < follow.duration && Math.abs(follow.currentTime - lead.currentTime) > 0.15) {
        follow.currentTime = lead.currentTime;
      }
    });
  }
  function judge(outcome) {
    if (!shownPair) return;
    if (outcome === "skip") {
      skipped.add(shownPair);
    } else {
      const [a, b] = jobsOf(shownPair);
      state.pairs[pairKey(a, b)] = { a: a, b: b, outcome: outcome, at: new Date().toISOString() };
      save();
    }
    showPair();
  }
  function openCompare(show) {
    compare.hidden = !show;
    document.body.classList.toggle("comparing", show);
    if (show) showPair();
    else for (const player of compare.querySelectorAll("video")) player.pause();
  }
  const compareButton = document.getElementById("compare-open");
  compareButton.disabled = data.pairs.length === 0;
  compareButton.addEventListener("click", () => openCompare(compare.hidden));

  // --- the votes file
  function votesText() {
    const name = state.reviewer ? { reviewer: state.reviewer } : {};
    const lines = Object.values(state.pairs).map((v) => (
      { a: v.a, b: v.b, outcome: v.outcome, ...name, at: v.at }));
    for (const [job, entry] of Object.entries(state.marks)) {
      lines.push({ job: job, mark: entry.mark, ...name, at: entry.at });
    }
    return lines.map((line) => JSON.stringify(line) + "\\n").join("");
  }
  document.getElementById("votes-export").addEventListener("click", () => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([votesText()], { type: "application/x-ndjson" }));
    const who = state.reviewer ? "-" + state.reviewer : "";
    link.download = ("votes-" + data.name + who).replace(/[^A-Za-z0-9._-]+/g, "_") + ".jsonl";
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  });
  reviewer.value = state.reviewer;
  reviewer.addEventListener("input", () => { state.reviewer = reviewer.value.trim(); save(); });

  const compareKeys = { "1": "a", "2": "b", "=": "tie", "s": "skip" };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest && event.target.closest("input, select, textarea")) return;
    if (!compare.hidden) {
      if (event.key in compareKeys) judge(compareKeys[event.key]);
      else if (event.key === "c" || event.key === "Escape") openCompare(false);
      else return;
    } else if (event.key === "c" && data.pairs.length) {
      openCompare(true);
    } else if ((event.key === "*" || event.key === "x") && hovered) {
      setMark(hovered, event.key === "*" ? "star" : "bad");
    } else {
      return;
    }
    event.preventDefault();
  });
  count();
})();
"""
