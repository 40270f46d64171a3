"""Rule checks on job frames and expanded job tables, made fast by checking each distinct value once.

jsonschema on every row of a 100,000-row table is far too slow, and sweeps repeat the same few
values many times. So each column's distinct values are checked against that field's schema,
and each job against its model (contracts.py, per distinct combination too). A failure
is reported where the value is written: a CSV cell at each row holding it, a YAML value at its
own line once however many rows it expands into (see origins.py).
"""

from __future__ import annotations

import string
from typing import Any

from ..errors import Problem
from ..models import PROMPT_LIMIT, SEED_MAX
from .expand import JobColumns, rows_at
from .jobframe import Row
from .origins import Origins
from .salvage import INVALID
from .schema import (
    REQUEST_FIELDS,
    field_validator,
    first_problem,
    validator_for,
)

_JOB_KEY_POINTERS = {key: f"#/$defs/job/properties/{key}" for key in ("id", "tags", "repeat")}
SEED_LIMIT = SEED_MAX + 1


def _validator(column: str):
    if column in REQUEST_FIELDS:
        return field_validator(column)
    return validator_for(_JOB_KEY_POINTERS[column])


def cell_problems(frame: list[Row], columns: tuple[str, ...]) -> tuple[list[Problem], list[Row]]:
    """Every cell value (each item of a list cell) checked against its field's schema; each
    bad one reported at every row holding it. Also returns the frame with those values INVALID."""
    problems: list[Problem] = []
    for column in columns:
        bad: set[tuple[type, Any]] = set()
        for value, rows in _rows_by_value(frame, column).items():
            message = first_problem(_validator(column), _value_of(value))
            if message:
                bad.add(value)
                problems += [Problem(row["source"], _field(row, column), message) for row in rows]
        if bad:  # a row is copied only when it changes
            frame = [
                row if row[column] is None else {**row, column: _without(row[column], bad)} for row in frame
            ]
    return problems, frame


def _field(row: Row, column: str) -> str:
    return f"{row['path']}.{column}" if row["path"] else column


def _rows_by_value(frame: list[Row], column: str) -> dict[tuple[type, Any], list[Row]]:
    """Distinct values of a column (1 and True kept apart; each item of a list cell but tags)
    -> the rows holding each, once."""
    rows: dict[tuple[type, Any], list[Row]] = {}
    for row in frame:
        cell = row[column]
        if cell is None:
            continue
        for value in cell if isinstance(cell, list) and column != "tags" else [cell]:
            if value is None:
                continue
            holders = rows.setdefault(_key_of(value), [])
            if not holders or holders[-1] is not row:
                holders.append(row)
    return rows


def _key_of(value: Any) -> tuple[type, Any]:
    return type(value), tuple(value) if isinstance(value, list) else value


def _value_of(key: tuple[type, Any]) -> Any:
    kind, value = key
    return list(value) if kind is list else value


def _without(cell: Any, bad: set[tuple[type, Any]]) -> Any:
    """The cell with its refused values INVALID (a list cell keeps its good items)."""
    if _key_of(cell) in bad:
        return INVALID
    if isinstance(cell, list):
        return [INVALID if _key_of(item) in bad else item for item in cell]
    return cell


def seed_range_problems(frame: list[Row], origins: Origins) -> list[Problem]:
    """Seed ranges that run past the largest seed, reported where each range is written."""
    by_end: dict[int, list[Row]] = {}
    for row in frame:
        seeds = row["seed"]
        if isinstance(seeds, list) and seeds and isinstance(seeds[-1], int) and seeds[-1] >= SEED_LIMIT:
            by_end.setdefault(seeds[-1], []).append({**row, "seed": None})
    problems = []
    for end, rows in by_end.items():
        message = f"the seed range ends at {end}; expected at most {SEED_LIMIT - 1}"
        problems += origins.problems(rows, "seed", message)
    return problems


def table_problems(table: JobColumns, prompt_limit: int, origins: Origins) -> list[Problem]:
    """Rules that need a whole expanded row: prompt limit, prompt or image (the per-model
    rules are contracts.py's).

    Each is reported where the offending value is written (see Origins), once per place;
    rows holding an INVALID value the rule needs are skipped (their value was reported).
    """
    return [
        *_prompt_limit_problems(table, prompt_limit, origins),
        *_content_problems(table),
    ]


def _prompt_limit_problems(table: JobColumns, limit: int, origins: Origins) -> list[Problem]:
    problems = []
    hint = f" (run.prompt_limit: {PROMPT_LIMIT} allows up to {PROMPT_LIMIT})" if limit < PROMPT_LIMIT else ""
    too_long: dict[str, list[int]] = {}
    for index, prompt in enumerate(table["prompt"]):
        if isinstance(prompt, str) and len(prompt) > limit:
            too_long.setdefault(prompt, []).append(index)
    for prompt, indices in too_long.items():
        message = f"prompt has {len(prompt)} characters; expected at most {limit}{hint}"
        problems += origins.problems(rows_at(table, indices), "prompt", message)
    return problems


def _content_problems(table: JobColumns) -> list[Problem]:
    message = "a job needs a prompt, an image_url, or both"
    columns = ("prompt", "image_url", "key", "source", "path")
    jobs = {
        (key, source, path): None
        for prompt, image, key, source, path in zip(*(table[name] for name in columns), strict=True)
        if prompt is None and image is None
    }
    return [Problem(source, path, message) for _, source, path in jobs]


FILENAME_FIELDS = ("job_id", "id", "seed", "ratio", "duration", "model", "index")


def filename_template_problem(template: str) -> str | None:
    """Why `template` cannot name video files, or None. Only plain {field} placeholders are allowed."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        return f"{template!r} is not a valid template ({error}); use {{field}} placeholders"
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in FILENAME_FIELDS:
            allowed = ", ".join("{" + field + "}" for field in FILENAME_FIELDS)
            return f"{{{name}}} is not a field; expected some of {allowed}"
        if spec or conversion:
            return f"{{{name}}} has a format ({spec or '!' + conversion}); expected a plain {{{name}}}"
    return None
