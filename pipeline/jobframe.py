"""One row per manifest job, from YAML `jobs` entries or CSV rows, before any sweep is expanded.

A cell holds one value, or a list when the job sweeps that field. CSV cells arrive as text and
are typed here (`5` -> 5, `1|2|3` -> [1, 2, 3], `true` -> True); a cell that cannot be typed
is left as text, so the schema check that follows reports it in the same words as for YAML.
"""

from __future__ import annotations

import difflib
from typing import Any

import pandas as pd

from .errors import Problem
from .manifest import CSV_LIST_SEPARATOR, Document
from .salvage import INVALID, is_invalid
from .schema import REQUEST_FIELDS, field_path

JOB_KEYS = ("id", "tags", "repeat")
CSV_COLUMNS = (*REQUEST_FIELDS, *JOB_KEYS)
INTEGER_FIELDS = ("seed", "duration", "repeat")
# A prompt may contain '|' as text; every other request field may sweep in a CSV cell.
UNSPLIT_FIELDS = ("prompt", "id")
# source: "file:line" of the job; path: its field path ("jobs[2]", "" for a CSV row);
# key: its path in the document (("jobs", 2); None for a CSV row), for origins.py.
FRAME_COLUMNS = (*REQUEST_FIELDS, "id", "tags", "repeat", "source", "path", "key")


def likely_meant(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """The choice `word` is most likely a typo of, or ""."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else ""


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    meant = likely_meant(word, choices)
    return f"; did you mean '{meant}'?" if meant else ""


def yaml_jobs(document: Document) -> tuple[pd.DataFrame, list[Problem]]:
    """The `jobs` list of a validated YAML document as a job frame."""
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    jobs = document.data.get("jobs")
    for index, job in enumerate(jobs if isinstance(jobs, list) else []):
        if not isinstance(job, dict):  # refused by the schema (see salvage.py)
            continue
        row = {key: job.get(key) for key in (*REQUEST_FIELDS, *JOB_KEYS)}
        matrix = job.get("matrix") or {}
        if is_invalid(matrix):  # the job may set any field there: none is known
            matrix = {key: INVALID for key in REQUEST_FIELDS if row[key] is None}
        for key, values in matrix.items():
            if key in job:
                where = document.where(("jobs", index, "matrix", key))
                problems.append(
                    Problem(
                        where,
                        field_path(("jobs", index, "matrix", key)),
                        f"'{key}' is set both in the job and in its matrix; keep one",
                    )
                )
            row[key] = values
        row["source"] = document.where(("jobs", index))
        row["path"] = field_path(("jobs", index))
        row["key"] = ("jobs", index)
        rows.append(row)
    return _frame(rows), problems


def csv_jobs(frame: pd.DataFrame, csv_where: str) -> tuple[pd.DataFrame, list[Problem]]:
    """Type the text cells of a jobs CSV. `csv_where` is the CSV's display path."""
    unknown = [column for column in frame.columns if column != "_line" and column not in CSV_COLUMNS]
    problems = [
        Problem(
            f"{csv_where}:1",
            column,
            f"unknown column{did_you_mean(column, CSV_COLUMNS)}; expected some of {', '.join(CSV_COLUMNS)}",
        )
        for column in unknown
    ]
    typed = pd.DataFrame(index=frame.index)
    for column in CSV_COLUMNS:
        if column in frame.columns:
            typed[column] = _typed_column(frame[column], column)
    for column in unknown:  # a misspelt column holds the field it likely means, unknown
        meant = likely_meant(column, CSV_COLUMNS)
        if meant and meant not in frame.columns:
            typed[meant] = frame[column].map(lambda _: INVALID, na_action="ignore").astype(object)
    typed["source"] = csv_where + ":" + frame["_line"].astype(str)
    typed["path"] = ""
    typed["key"] = None
    return _frame(typed), problems


def _typed_column(cells: pd.Series, column: str) -> pd.Series:
    """Typed values for the distinct texts of a column, mapped back onto its cells."""
    distinct = cells.dropna().unique()
    typed = {text: _typed_cell(text, column) for text in distinct}
    return cells.map(typed, na_action="ignore").astype(object)


def _typed_cell(text: str, column: str) -> Any:
    if column == "tags":
        return [tag.strip() for tag in text.split(CSV_LIST_SEPARATOR) if tag.strip()]
    if column not in UNSPLIT_FIELDS and CSV_LIST_SEPARATOR in text:
        return [_typed_scalar(part.strip(), column) for part in text.split(CSV_LIST_SEPARATOR)]
    return _typed_scalar(text if column == "prompt" else text.strip(), column)


def _typed_scalar(text: str, column: str) -> Any:
    if column in INTEGER_FIELDS:
        try:
            return int(text, 10)
        except ValueError:
            return text
    if column == "watermark":
        return {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(
            text.lower(), text
        )
    return text


def _frame(rows: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    # dtype=object keeps 7 an int: a float 7.0 would change the request and its job id.
    frame = pd.DataFrame(rows, dtype=object) if not isinstance(rows, pd.DataFrame) else rows
    for column in FRAME_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    return frame[list(FRAME_COLUMNS)].astype(object).reset_index(drop=True)


def implicit_job(document: Document) -> pd.DataFrame:
    """A manifest with neither `jobs` nor `jobs_csv` is one job made of defaults and matrix."""
    return _frame([{"source": document.where(()), "path": "", "key": ()}])
