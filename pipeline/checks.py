"""Rule checks on job frames and job tables, vectorised by checking each distinct value once.

jsonschema on every row of a 100,000-row table is far too slow, and sweeps repeat the same few
values many times. So each column's distinct values are checked against that field's schema,
and each distinct (model, ratio, last frame) combination against the per-model rules; a failure
is reported at the first row that holds the value.
"""

from __future__ import annotations

import string
from typing import Any

import pandas as pd

from .errors import Problem
from .schema import (
    REQUEST_FIELDS,
    explain,
    field_validator,
    first_problem,
    iter_problems,
    model_rules_validator,
    validator_for,
)

_JOB_KEY_POINTERS = {key: f"#/$defs/job/properties/{key}" for key in ("id", "tags", "repeat")}


def _validator(column: str):
    if column in REQUEST_FIELDS:
        return field_validator(column)
    return validator_for(_JOB_KEY_POINTERS[column])


def _located(frame: pd.DataFrame, rows: pd.Series, column: str) -> tuple[str, str]:
    """(where, field) of the first row in `rows`."""
    first = rows.idxmax()
    path = frame.at[first, "path"]
    return frame.at[first, "source"], f"{path}.{column}" if path else column


def cell_problems(frame: pd.DataFrame, columns: tuple[str, ...]) -> list[Problem]:
    """Every cell value (each item of a list cell) checked against its field's schema."""
    problems: list[Problem] = []
    for column in columns:
        cells = frame[column].dropna()
        values = cells if column == "tags" else cells.explode().dropna()
        for value, first_row in _first_rows(values).items():
            message = first_problem(_validator(column), _value_of(value))
            if message:
                path = frame.at[first_row, "path"]
                field = f"{path}.{column}" if path else column
                problems.append(Problem(frame.at[first_row, "source"], field, message))
    return problems


def _first_rows(values: pd.Series) -> dict[tuple[type, Any], Any]:
    """Distinct values (1 and True kept apart, unlike pandas) -> the first row holding each."""
    first: dict[tuple[type, Any], Any] = {}
    for row, value in values.items():
        first.setdefault((type(value), tuple(value) if isinstance(value, list) else value), row)
    return first


def _value_of(key: tuple[type, Any]) -> Any:
    kind, value = key
    return list(value) if kind is list else value


def table_problems(table: pd.DataFrame, prompt_limit: int) -> list[Problem]:
    """Rules that need a whole expanded row: prompt limit, per-model rules, prompt or image."""
    return [
        *_prompt_limit_problems(table, prompt_limit),
        *_model_rule_problems(table),
        *_content_problems(table),
    ]


def _prompt_limit_problems(table: pd.DataFrame, limit: int) -> list[Problem]:
    prompts = table["prompt"].dropna()
    lengths = prompts.map(len)
    too_long = lengths > limit
    problems = []
    for prompt in prompts[too_long].unique():
        rows = table["prompt"] == prompt
        where, field = _located(table, rows, "prompt")
        hint = " (run.prompt_limit: 1000 allows up to 1000)" if limit < 1000 else ""
        problems.append(
            Problem(where, field, f"prompt has {len(prompt)} characters; expected at most {limit}{hint}")
        )
    return problems


def _model_rule_problems(table: pd.DataFrame) -> list[Problem]:
    combos = pd.DataFrame(
        {
            "model": table["model"],
            "ratio": table["ratio"],
            "has_last": table["last_image_url"].notna(),
        }
    )
    problems = []
    for combo in combos.drop_duplicates().itertuples(index=False):
        body: dict[str, Any] = {"model": combo.model, "ratio": combo.ratio}
        if combo.has_last:
            body["last_image_url"] = "https://example.invalid/last.png"
        for path, error in iter_problems(model_rules_validator(), body):
            column = path[0] if path else "model"
            rows = (
                (combos["model"] == combo.model)
                & (combos["ratio"] == combo.ratio)
                & (combos["has_last"] == combo.has_last)
            )
            where, field = _located(table, rows, column)
            shown = table.loc[rows.idxmax(), column]
            error.instance = shown
            problems.append(Problem(where, field, explain(error)))
    return problems


def _content_problems(table: pd.DataFrame) -> list[Problem]:
    empty = table["prompt"].isna() & table["image_url"].isna()
    if not empty.any():
        return []
    where, _ = _located(table, empty, "prompt")
    path = table.at[empty.idxmax(), "path"]
    return [Problem(where, path, "a job needs a prompt, an image_url, or both")]


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
