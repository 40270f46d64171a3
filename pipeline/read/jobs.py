"""Manifest file -> validated job table: the one call `validate`, `plan` and `run` share.

Order matters for the messages: the document is checked against the schema first (with YAML
lines), CSV cells next (with CSV lines), then the expanded rows and the images. Each stage
reports every problem it finds, and the next one runs on what it accepted: a refused value is
set aside as INVALID (salvage.py), so a rule that needs it skips it and one mistake is never
reported twice in different words, while every other problem still comes out in the same pass.
Rules on expanded rows point at the line where the value is written (origins.py).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, ManifestError, Problem
from ..services import DEFAULT_SERVICE
from . import expand
from .checks import cell_problems, filename_template_problem, seed_range_problems, table_problems
from .contracts import fit_models
from .images import ImageInfo, ImageProblem, inspect_image
from .jobframe import CSV_COLUMNS, Row, csv_jobs, implicit_job, likely_meant, yaml_jobs
from .manifest import Document, display_path, read_manifest
from .origins import Origins
from .salvage import INVALID, is_invalid, salvage
from .schema import (
    REQUEST_FIELDS,
    allowed_keys,
    definition,
    document_validator,
    explain,
    field_path,
    is_conditional,
    iter_problems,
    unknown_keys,
)
from .settings import OutputSettings, RunSettings, SandboxSettings, Settings

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class Batch:
    """Everything a run needs from a manifest: the job table as plain `columns` (see
    expand.TABLE_COLUMNS), and as a pandas `table` built the first time it is asked for
    (`validate` never asks)."""

    document: Document
    settings: Settings
    columns: expand.JobColumns
    notes: list[str] = field(default_factory=list)
    images: dict[str, ImageInfo] = field(default_factory=dict)

    @property
    def job_count(self) -> int:
        return len(self.columns["job_id"])

    @functools.cached_property
    def table(self) -> pd.DataFrame:
        return expand.job_table(self.columns)

    @property
    def swept_fields(self) -> list[str]:
        """Request fields that take more than one value across the jobs."""
        return [f for f in REQUEST_FIELDS if self.table[f].nunique(dropna=False) > 1]


def load_batch(path: Path, endpoint: str | None = None, renames: dict[str, str] | None = None) -> Batch:
    """Read, validate and expand a manifest. Raises InputError/ManifestError with every problem.
    `endpoint` (the --endpoint flag) replaces run.endpoint: the jobs are checked for the path
    they will be sent on. `renames` (a superseded model's id -> its catalogued replacement, from
    the deprecation feed) sends those jobs to the replacement, checked against its schema."""
    document = read_manifest(path)
    problems: list[Problem] = []
    prompt_limit_known = True
    if document.csv_path is None:
        found, refused, unknown = document_problems(document)
        problems += found
        prompt_limit_known = not any(tuple(p[:2]) in (("run",), ("run", "prompt_limit")) for p in refused)
        document = replace(document, data=salvage(document.data, refused, unknown))
        problems += settings_problems(document)
        problems += _attach_jobs_csv(document)
    problems += document.problems
    settings = settings_of(document)
    frame, frame_problems = _job_frame(document)
    problems += frame_problems
    if not frame:  # every job was refused: nothing more to check
        _raise_if(problems)
    defaults, matrix, model = _fallback_sources(document.data)
    frame = expand.resolve_fields(frame, defaults, matrix, model)
    origins = Origins.of(document, defaults, matrix, model)
    problems += seed_range_problems(frame, origins)
    size = expand.expansion_size(frame)
    if size > expand.MAX_JOBS:
        problems.append(
            Problem(
                document.where(),
                "",
                f"the sweeps expand to {size:,} jobs; at most {expand.MAX_JOBS:,} fit in one manifest",
            )
        )
        raise ManifestError(problems)
    table = expand.explode(frame)
    endpoint = endpoint or settings.run.endpoint
    problems += fit_models(table, document.data, origins, endpoint, settings.run.adapt, renames)
    # A refused prompt_limit may have meant 1000: hold prompts to the schema's cap only.
    limit = settings.run.prompt_limit if prompt_limit_known else max(_prompt_limits())
    problems += table_problems(table, limit, origins)
    images, image_problems = inspect_images(table, document.folder, origins)
    _raise_if(problems + image_problems)
    keys = {ref: info.key for ref, info in images.items()}
    table = expand.assign_seeds_and_ids(table, keys)
    table, notes = expand.drop_duplicates(table)
    note = adapt_note(table, "will send")
    if note:
        notes.append(note)
    return Batch(document, settings, expand.finish(table), notes, images)


def adapt_note(table: Any, verb: str) -> str | None:
    """The warning line for jobs `run.adapt: nearest` changed ("will send" in validate and
    plan, "sends" in run, on the jobs it runs), or None when it changed none."""
    asked = zip(list(table["asked_duration"]), list(table["asked_ratio"]), strict=True)
    # `is not None` first: in the plain columns nearly every row holds None (a 100,000-job sweep).
    adapted = sum(1 for d, r in asked if (d is not None or r is not None) and (_given(d) or _given(r)))
    if not adapted:
        return None
    what = "a value their model takes instead of the one asked"
    return f"run.adapt: nearest {verb} {adapted:,} of {len(table['model']):,} jobs {what}"


def _given(value: Any) -> bool:
    """A value was asked (None in the plain columns; NaN or NA in a pandas table)."""
    if isinstance(value, str):
        return value != ""
    if isinstance(value, float):
        return value == value  # NaN is not
    if value is None or isinstance(value, int):
        return value is not None
    import pandas as pd

    return not pd.isna(value)


def _prompt_limits() -> list[int]:
    return definition("run")["properties"]["prompt_limit"]["enum"]


def _raise_if(problems: list[Problem]) -> None:
    if problems:
        raise ManifestError(problems)


def _fallback_sources(data: dict) -> tuple[dict, dict, object]:
    """defaults, matrix and model for resolve_fields; a section the schema refused whole
    makes every field it could have set INVALID (see salvage.py)."""
    sections = []
    for name in ("defaults", "matrix"):
        section = data.get(name) or {}
        sections.append({field: INVALID for field in REQUEST_FIELDS} if is_invalid(section) else section)
    return sections[0], sections[1], data.get("model")


def document_problems(document: Document) -> tuple[list[Problem], list[tuple], list[tuple[tuple, str]]]:
    """Schema problems of a YAML document, with unknown keys named and a likely fix suggested.

    Also returns what salvage() needs: the paths of refused values, and each unknown key with
    the key it likely means. The schema's conditional rules (`if`/`then`: ratio per model,
    prompt limit) are left out: they restate, for editors, rules table_problems checks on the
    expanded rows, CSV rows included, and reports at the same lines.
    """
    problems = []
    refused: list[tuple] = []
    unknown_found: list[tuple[tuple, str]] = []
    for path, error in iter_problems(document_validator(), document.data):
        if is_conditional(error):
            continue
        unknown = unknown_keys(error)
        if unknown:
            for key in unknown:
                meant = likely_meant(str(key), allowed_keys(error))
                hint = f"; did you mean '{meant}'?" if meant else _misplaced_hint(path, key)
                where = document.where((*path, key))
                problems.append(Problem(where, field_path((*path, key)), "unknown field" + hint))
                unknown_found.append(((*path, key), meant or _misplaced_field(path, key)))
        else:
            problems.append(Problem(document.where(path), field_path(path), explain(error)))
            refused.append(path)
    return problems, refused, unknown_found


def settings_problems(document: Document) -> list[Problem]:
    """Settings the schema cannot check: the file-name template and the sandbox's faults."""
    problems = []
    output = document.data.get("output") or {}
    if "filename" in output:
        problem = filename_template_problem(output["filename"])
        if problem:
            problems.append(Problem(document.where(("output", "filename")), "output.filename", problem))
    faults = (document.data.get("sandbox") or {}).get("faults")
    if faults is not None:
        from ..sandbox import FaultConfig  # the sandbox owns what its faults mean

        try:
            FaultConfig.from_mapping(faults)
        except ValueError as error:
            problems.append(Problem(document.where(("sandbox", "faults")), "sandbox", str(error)))
    return problems


def _misplaced_field(path: tuple, key: object) -> str:
    """At the top level, the request field `key` is (or is a typo of), or ""."""
    return "" if path else likely_meant(str(key), REQUEST_FIELDS)


def _misplaced_hint(path: tuple, key: object) -> str:
    """At the top level, a request field (or a typo of one) belongs under defaults or in a job."""
    field = _misplaced_field(path, key)
    return f"; '{field}' is a request field: put it under 'defaults' or in a job" if field else ""


def _attach_jobs_csv(document: Document) -> list[Problem]:
    name = document.data.get("jobs_csv")
    if not isinstance(name, str) or not name:
        return []
    where = document.where(("jobs_csv",))
    csv_path = document.folder / name
    if csv_path.suffix.lower() != ".csv":
        return [Problem(where, "jobs_csv", f"{name!r} is not a .csv file")]
    if not csv_path.is_file():
        return [Problem(where, "jobs_csv", f"no such file '{display_path(csv_path)}'")]
    rows = read_manifest(csv_path)
    document.csv_jobs = rows.csv_jobs
    document.csv_path = csv_path
    document.problems.extend(rows.problems)  # rows that could not be read
    return []


def settings_of(document: Document) -> Settings:
    data = document.data
    name = data.get("name") or _name_from_file(document.path)
    return Settings(
        name=name,
        provider=data.get("provider") or DEFAULT_SERVICE,
        run=RunSettings.from_section(data.get("run")),
        output=OutputSettings.from_section(data.get("output")),
        sandbox=SandboxSettings.from_section(data.get("sandbox")),
    )


def _name_from_file(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-._")
    return name[:80] or "manifest"


def _job_frame(document: Document) -> tuple[list[Row], list[Problem]]:
    """The job frame of YAML jobs and CSV rows (CSV cells checked and typed), with problems."""
    frames, problems = [], []
    if "jobs" in document.data:
        frame, found = yaml_jobs(document)
        frames.append(frame)
        problems += found
    if document.csv_jobs is not None:
        if not document.csv_jobs.rows and not document.problems:
            shown = display_path(document.csv_path)
            raise InputError(f"{shown}:1: the CSV has no jobs; expected a row under the header")
        frame, found = csv_jobs(document.csv_jobs, display_path(document.csv_path))
        present = tuple(c for c in CSV_COLUMNS if c in document.csv_jobs.columns)
        cell_found, frame = cell_problems(frame, present)
        frames.append(frame)
        problems += found + cell_found
    if not frames and "jobs_csv" not in document.data:
        frames.append(implicit_job(document))
    return [row for frame in frames for row in frame], problems


def inspect_images(
    table: expand.JobColumns, folder: Path, origins: Origins
) -> tuple[dict[str, ImageInfo], list[Problem]]:
    """Check every distinct image reference once; report a bad one where it is written."""
    images: dict[str, ImageInfo] = {}
    problems: list[Problem] = []
    for column in ("image_url", "last_image_url"):
        holders: dict[str, list[int]] = {}
        for index, ref in enumerate(table[column]):
            if isinstance(ref, str):
                holders.setdefault(ref, []).append(index)
        for ref, indices in holders.items():
            if ref in images:
                continue
            try:
                images[ref] = inspect_image(ref, folder)
            except ImageProblem as problem:
                problems += origins.problems(expand.rows_at(table, indices), column, str(problem))
    return images, problems
