"""One row per manifest job, from YAML `jobs` entries or CSV rows, before any sweep is expanded.

A job frame is a list of rows, each a dict of FRAME_COLUMNS (plain Python: `validate` needs
no pandas). A cell holds one value, or a list when the job sweeps that field. CSV cells arrive as text and
are typed here (`5` -> 5, `1|2|3` -> [1, 2, 3], `true` -> True); a cell that cannot be typed
is left as text, so the schema check that follows reports it in the same words as for YAML.
"""

from __future__ import annotations

import difflib
from typing import Any

from ..errors import Problem
from .manifest import CSV_LIST_SEPARATOR, CsvRows, Document
from .salvage import INVALID, is_invalid
from .schema import REQUEST_FIELDS, field_path

JOB_KEYS = ("id", "tags", "repeat")
CSV_COLUMNS = (*REQUEST_FIELDS, *JOB_KEYS)
INTEGER_FIELDS = ("seed", "duration", "repeat")
# A prompt may contain '|' as text; every other request field may sweep in a CSV cell.
UNSPLIT_FIELDS = ("prompt", "id")
# source: "file:line" of the job; path: its field path ("jobs[2]", "" for a CSV row);
# key: its path in the document (("jobs", 2); None for a CSV row), for origins.py.
# extra: the job's model-specific fields (negative_prompt, enhance_prompt, ...: any field a
# catalogued model declares), as written; one value each, never swept.
FRAME_COLUMNS = (*REQUEST_FIELDS, "id", "tags", "repeat", "source", "path", "key", "extra")

Row = dict[str, Any]
_NOT_EXTRA = frozenset((*REQUEST_FIELDS, *JOB_KEYS, "matrix"))


def likely_meant(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """The choice `word` is most likely a typo of, or ""."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else ""


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    meant = likely_meant(word, choices)
    return f"; did you mean '{meant}'?" if meant else ""


def yaml_jobs(document: Document) -> tuple[list[Row], list[Problem]]:
    """The `jobs` list of a validated YAML document as a job frame."""
    rows: list[Row] = []
    problems: list[Problem] = []
    jobs = document.data.get("jobs")
    for index, job in enumerate(jobs if isinstance(jobs, list) else []):
        if not isinstance(job, dict):  # refused by the schema (see salvage.py)
            continue
        row = {key: job.get(key) for key in (*REQUEST_FIELDS, *JOB_KEYS)}
        extra = {key: value for key, value in job.items() if key not in _NOT_EXTRA and not is_invalid(value)}
        row["extra"] = extra or None
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


def csv_jobs(table: CsvRows, csv_where: str) -> tuple[list[Row], list[Problem]]:
    """Type the text cells of a jobs CSV. `csv_where` is the CSV's display path."""
    unknown = [column for column in table.columns if column not in CSV_COLUMNS]
    problems = [
        Problem(
            f"{csv_where}:1",
            column,
            f"unknown column{did_you_mean(column, CSV_COLUMNS)}; expected some of {', '.join(CSV_COLUMNS)}",
        )
        for column in unknown
    ]
    position = {column: index for index, column in enumerate(table.columns)}
    # Each column's distinct texts -> their typed values, typed once.
    typed = {column: {} for column in CSV_COLUMNS if column in position}
    # A misspelt column holds the field it likely means, unknown.
    misspelt = {}
    for column in unknown:
        meant = likely_meant(column, CSV_COLUMNS)
        if meant and meant not in position:
            misspelt[meant] = column
    rows = []
    for cells, line in zip(table.rows, table.lines, strict=True):
        row = dict.fromkeys(FRAME_COLUMNS)
        for column, known in typed.items():
            row[column] = _typed(cells[position[column]], column, known)
        for meant, column in misspelt.items():
            row[meant] = None if cells[position[column]] is None else INVALID
        row["source"] = f"{csv_where}:{line}"
        row["path"] = ""
        rows.append(row)
    return rows, problems


def _typed(text: str | None, column: str, known: dict[str, Any]) -> Any:
    """The typed value of a cell, from `known` when its text was typed already."""
    if text is None:
        return None
    if text not in known:
        known[text] = _typed_cell(text, column)
    return known[text]


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


def _frame(rows: list[Row]) -> list[Row]:
    """Rows with every frame column, in FRAME_COLUMNS order."""
    return [{column: row.get(column) for column in FRAME_COLUMNS} for row in rows]


def implicit_job(document: Document) -> list[Row]:
    """A manifest with neither `jobs` nor `jobs_csv` is one job made of defaults and matrix."""
    return _frame([{"source": document.where(()), "path": "", "key": ()}])
