"""Manifest file -> validated job table: the one call `validate`, `plan` and `run` share.

Order matters for the messages: the document is checked against the schema first (with YAML
lines), CSV cells next (with CSV lines), then the expanded rows and the images. Each stage
reports every problem it finds; a later stage runs only on input the earlier ones accepted,
so one mistake is never reported twice in different words.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import expand
from .checks import cell_problems, filename_template_problem, table_problems
from .errors import InputError, ManifestError, Problem
from .images import ImageInfo, ImageProblem, inspect_image
from .jobframe import CSV_COLUMNS, csv_jobs, did_you_mean, implicit_job, yaml_jobs
from .manifest import Document, display_path, read_manifest
from .schema import (
    REQUEST_FIELDS,
    allowed_keys,
    document_validator,
    explain,
    field_path,
    iter_problems,
    unknown_keys,
)
from .settings import OutputSettings, RunSettings, SandboxSettings, Settings


@dataclass
class Batch:
    """Everything a run needs from a manifest."""

    document: Document
    settings: Settings
    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    images: dict[str, ImageInfo] = field(default_factory=dict)

    @property
    def swept_fields(self) -> list[str]:
        """Request fields that take more than one value across the jobs."""
        return [f for f in REQUEST_FIELDS if self.table[f].nunique(dropna=False) > 1]


def load_batch(path: Path) -> Batch:
    """Read, validate and expand a manifest. Raises InputError/ManifestError with every problem."""
    document = read_manifest(path)
    if document.csv_path is None:
        _raise_if(document_problems(document))
        _raise_if(settings_problems(document))
        _attach_jobs_csv(document)
    settings = settings_of(document)
    frame = _job_frame(document)
    frame = expand.resolve_fields(
        frame,
        document.data.get("defaults") or {},
        document.data.get("matrix") or {},
        document.data.get("model"),
    )
    _raise_if(expand.seed_range_problems(frame))
    size = expand.expansion_size(frame)
    if size > expand.MAX_JOBS:
        raise InputError(
            f"{document.where()}: the sweeps expand to {size:,} jobs; "
            f"at most {expand.MAX_JOBS:,} fit in one manifest"
        )
    table = expand.explode(frame)
    problems = table_problems(table, settings.run.prompt_limit)
    images, image_problems = inspect_images(table, document.folder)
    _raise_if(problems + image_problems)
    keys = {ref: info.key for ref, info in images.items()}
    table = expand.assign_seeds_and_ids(table, keys)
    table, notes = expand.drop_duplicates(table)
    return Batch(document, settings, expand.finish(table), notes, images)


def _raise_if(problems: list[Problem]) -> None:
    if problems:
        raise ManifestError(problems)


def document_problems(document: Document) -> list[Problem]:
    """Schema problems of a YAML document, with unknown keys named and a likely fix suggested."""
    problems = []
    for path, error in iter_problems(document_validator(), document.data):
        unknown = unknown_keys(error)
        if unknown:
            for key in unknown:
                hint = did_you_mean(str(key), allowed_keys(error)) or _misplaced_hint(path, key)
                where = document.where((*path, key))
                problems.append(Problem(where, field_path((*path, key)), "unknown field" + hint))
        else:
            problems.append(Problem(document.where(path), field_path(path), explain(error)))
    return problems


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
        from .sandbox import FaultConfig  # the sandbox owns what its faults mean

        try:
            FaultConfig.from_mapping(faults)
        except ValueError as error:
            problems.append(Problem(document.where(("sandbox", "faults")), "sandbox", str(error)))
    return problems


def _misplaced_hint(path: tuple, key: object) -> str:
    """At the top level, a request field (or a typo of one) belongs under defaults or in a job."""
    if path:
        return ""
    close = difflib.get_close_matches(str(key), REQUEST_FIELDS, n=1, cutoff=0.6)
    if not close:
        return ""
    return f"; '{close[0]}' is a request field: put it under 'defaults' or in a job"


def _attach_jobs_csv(document: Document) -> None:
    name = document.data.get("jobs_csv")
    if not name:
        return
    csv_path = document.folder / name
    if csv_path.suffix.lower() != ".csv":
        raise InputError(f"{document.where(('jobs_csv',))}: jobs_csv: {name!r} is not a .csv file")
    if not csv_path.is_file():
        raise InputError(
            f"{document.where(('jobs_csv',))}: jobs_csv: no such file '{display_path(csv_path)}'"
        )
    document.csv_jobs = read_manifest(csv_path).csv_jobs
    document.csv_path = csv_path


def settings_of(document: Document) -> Settings:
    data = document.data
    name = data.get("name") or _name_from_file(document.path)
    return Settings(
        name=name,
        provider=data.get("provider") or "sandbox",
        run=RunSettings.from_section(data.get("run")),
        output=OutputSettings.from_section(data.get("output")),
        sandbox=SandboxSettings.from_section(data.get("sandbox")),
    )


def _name_from_file(path: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip("-._")
    return name[:80] or "manifest"


def _job_frame(document: Document) -> pd.DataFrame:
    frames = []
    if document.data.get("jobs"):
        frame, problems = yaml_jobs(document)
        _raise_if(problems)
        frames.append(frame)
    if document.csv_jobs is not None:
        if document.csv_jobs.empty:
            shown = display_path(document.csv_path)
            raise InputError(f"{shown}:1: the CSV has no jobs; expected a row under the header")
        frame, problems = csv_jobs(document.csv_jobs, display_path(document.csv_path))
        present = tuple(c for c in CSV_COLUMNS if c in document.csv_jobs.columns)
        _raise_if(problems + cell_problems(frame, present))
        frames.append(frame)
    if not frames:
        return implicit_job(document)
    return pd.concat(frames, ignore_index=True)


def inspect_images(table: pd.DataFrame, folder: Path) -> tuple[dict[str, ImageInfo], list[Problem]]:
    """Check every distinct image reference once; report a bad one at its first row."""
    images: dict[str, ImageInfo] = {}
    problems: list[Problem] = []
    for column in ("image_url", "last_image_url"):
        refs = table[column].dropna()
        for first_row, ref in refs.drop_duplicates().items():
            if ref in images:
                continue
            try:
                images[ref] = inspect_image(ref, folder)
            except ImageProblem as problem:
                path = table.at[first_row, "path"]
                where = table.at[first_row, "source"]
                problems.append(Problem(where, f"{path}.{column}" if path else column, str(problem)))
    return images, problems
