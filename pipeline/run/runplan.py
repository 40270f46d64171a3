"""The run plan: a manifest's job table resolved, once, into what the later stages need.

A job's request goes from the table into a `Job` (steps.py) here and nowhere else: its API
fields, its video's file name, its credit estimate, and the local images it names, resolved to
their files and digests when the manifest was read (so no stage needs the manifest's folder
again, and a file changed since is refused at submit time). The ledger's rows for the same jobs
come from the same table here too. Which jobs a run will pay for is `to_pay`, the one answer
the budget check, the Ray engine and the plan share (the scheduler asks each job's state the
same question as it works). Pure: it reads no file.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..catalogue.pricing import Prices, snapshot_prices
from ..net.download import target_path
from ..read.images import ImageInfo
from ..read.schema import REQUEST_FIELDS
from ..states import JobState
from ..write.table import python_value
from .steps import Job

IMAGE_FIELDS = ("image_url", "last_image_url")
LABELS = ("id", "tags", "source", "seed_chosen", "sample")
ASKED = ("asked_duration", "asked_ratio")  # labels only when run.adapt changed the value


def jobs_of(
    table: pd.DataFrame,
    images: Mapping[str, ImageInfo],
    template: str,
    video_dir: Path,
    prices: Prices | None = None,
) -> list[Job]:
    """The table's jobs, in order; `images` is what load_batch found for each image reference,
    `prices` what prices them (default: the shipped snapshot)."""
    quote = functools.cache((prices or snapshot_prices()).credits_for)  # a sweep repeats its keys
    return [_job(row, images, template, video_dir, quote) for row in table.to_dict("records")]


def ledger_rows(table: pd.DataFrame) -> Iterator[tuple[str, int, dict[str, Any], dict[str, Any]]]:
    """(job_id, index, request, labels) of each job, as the ledger records them."""
    for row in table.to_dict("records"):
        request = _request(row)
        labels = {key: python_value(row[key]) for key in LABELS}
        labels.update({key: python_value(row[key]) for key in ASKED if python_value(row[key]) is not None})
        yield row["job_id"], int(row["index"]), request, labels


def to_pay(jobs: Iterable[Job], rows: Mapping[str, Mapping[str, Any]], retry_uncertain: bool) -> list[Job]:
    """The jobs this run would submit (and pay for), given the ledger's rows."""
    return [job for job in jobs if JobState(rows[job.job_id]["status"]).to_submit(retry_uncertain)]


def render_filename(template: str, row: Mapping[str, Any]) -> str:
    """The video's file name: template fields made safe for any file system."""
    values = {
        "job_id": row["job_id"],
        "id": row.get("id") or "job",
        "seed": row["seed"],
        "ratio": str(row["ratio"]).replace(":", "x"),
        "duration": row["duration"],
        "model": row["model"],
        "index": row["index"],
    }
    safe = {
        key: re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip(".-") or "x" for key, value in values.items()
    }
    return template.format(**safe)


def _job(
    row: dict[str, Any],
    images: Mapping[str, ImageInfo],
    template: str,
    video_dir: Path,
    quote: Callable[[str, object, object], int | None],
) -> Job:
    request = {name: value for name, value in _request(row).items() if value is not None}
    filename = render_filename(template, row)
    target_path(video_dir, filename)  # refuses a name that would land outside the folder
    local = {name: images[request[name]] for name in IMAGE_FIELDS if _is_local(request.get(name), images)}
    estimate = quote(row["model"], request.get("duration"), request.get("resolution"))
    return Job(
        job_id=row["job_id"],
        request=request,
        filename=filename,
        credits_estimate=estimate or 0,
        local_images=local,
        price_known=estimate is not None,
    )


def _request(row: Mapping[str, Any]) -> dict[str, Any]:
    """vidpipe's request fields, then the model-specific ones (extra), as the manifest wrote them."""
    request = {name: python_value(row[name]) for name in REQUEST_FIELDS}
    extra = python_value(row.get("extra"))
    return {**request, **(json.loads(extra) if extra else {})}


def _is_local(ref: object, images: Mapping[str, ImageInfo]) -> bool:
    return isinstance(ref, str) and ref in images and images[ref].kind == "file"
