"""Rule checks on job frames and job tables, vectorised by checking each distinct value once.

jsonschema on every row of a 100,000-row table is far too slow, and sweeps repeat the same few
values many times. So each column's distinct values are checked against that field's schema,
and each distinct (model, ratio, last frame) combination against the per-model rules. A failure
is reported where the value is written: a CSV cell at each row holding it, a YAML value at its
own line once however many rows it expands into (see origins.py).
"""

from __future__ import annotations

import string
from typing import Any

import pandas as pd

from .errors import Problem
from .models import PROMPT_LIMIT, SEED_MAX
from .origins import Origins
from .salvage import INVALID, is_invalid
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
SEED_LIMIT = SEED_MAX + 1


def _validator(column: str):
    if column in REQUEST_FIELDS:
        return field_validator(column)
    return validator_for(_JOB_KEY_POINTERS[column])


def cell_problems(frame: pd.DataFrame, columns: tuple[str, ...]) -> tuple[list[Problem], pd.DataFrame]:
    """Every cell value (each item of a list cell) checked against its field's schema; each
    bad one reported at every row holding it. Also returns the frame with those values INVALID."""
    problems: list[Problem] = []
    frame = frame.copy()
    for column in columns:
        cells = frame[column].dropna()
        values = cells if column == "tags" else cells.explode().dropna()
        bad: set[tuple[type, Any]] = set()
        for value, rows in _rows_by_value(values).items():
            message = first_problem(_validator(column), _value_of(value))
            if message:
                bad.add(value)
                problems += [
                    Problem(frame.at[row, "source"], _field(frame, row, column), message) for row in rows
                ]
        if bad:
            frame[column] = frame[column].map(lambda cell, bad=bad: _without(cell, bad), na_action="ignore")
    return problems, frame


def _field(frame: pd.DataFrame, row: Any, column: str) -> str:
    path = frame.at[row, "path"]
    return f"{path}.{column}" if path else column


def _rows_by_value(values: pd.Series) -> dict[tuple[type, Any], list[Any]]:
    """Distinct values (1 and True kept apart, unlike pandas) -> the rows holding each, once."""
    rows: dict[tuple[type, Any], list[Any]] = {}
    for row, value in values.items():
        holders = rows.setdefault(_key_of(value), [])
        if not holders or holders[-1] != row:
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


def seed_range_problems(frame: pd.DataFrame, origins: Origins) -> list[Problem]:
    """Seed ranges that run past the largest seed, reported where each range is written."""
    problems = []
    ends = frame["seed"].map(lambda v: v[-1] if isinstance(v, list) and v and isinstance(v[-1], int) else -1)
    for end in ends[ends >= SEED_LIMIT].unique():
        rows = frame[ends == end].assign(seed=None)
        message = f"the seed range ends at {end}; expected at most {SEED_LIMIT - 1}"
        problems += origins.problems(rows, "seed", message)
    return problems


def table_problems(table: pd.DataFrame, prompt_limit: int, origins: Origins) -> list[Problem]:
    """Rules that need a whole expanded row: prompt limit, per-model rules, prompt or image.

    Each is reported where the offending value is written (see Origins), once per place;
    rows holding an INVALID value the rule needs are skipped (their value was reported).
    """
    return [
        *_prompt_limit_problems(table, prompt_limit, origins),
        *_model_rule_problems(table, origins),
        *_content_problems(table),
    ]


def _prompt_limit_problems(table: pd.DataFrame, limit: int, origins: Origins) -> list[Problem]:
    problems = []
    hint = f" (run.prompt_limit: {PROMPT_LIMIT} allows up to {PROMPT_LIMIT})" if limit < PROMPT_LIMIT else ""
    for prompt in table["prompt"].dropna().unique():
        if isinstance(prompt, str) and len(prompt) > limit:
            message = f"prompt has {len(prompt)} characters; expected at most {limit}{hint}"
            problems += origins.problems(table[table["prompt"] == prompt], "prompt", message)
    return problems


def _model_rule_problems(table: pd.DataFrame, origins: Origins) -> list[Problem]:
    last = table["last_image_url"]
    combos = pd.DataFrame(
        {
            "model": table["model"],
            "ratio": table["ratio"],
            "last": last.notna().map({True: "set", False: "none"}).where(~_invalid(last), "invalid"),
        }
    )
    problems = []
    for combo in combos.drop_duplicates().itertuples(index=False):
        if is_invalid(combo.model) or is_invalid(combo.ratio) or combo.last == "invalid":
            continue
        body: dict[str, Any] = {"model": combo.model, "ratio": combo.ratio}
        if combo.last == "set":
            body["last_image_url"] = "https://example.invalid/last.png"
        errors = list(iter_problems(model_rules_validator(), body))
        if not errors:
            continue
        same = (combos["model"] == combo.model) & (combos["ratio"] == combo.ratio)
        rows = table[same & (combos["last"] == combo.last)]
        for path, error in errors:
            column = path[0] if path else "model"
            error.instance = rows[column].iloc[0]
            problems += origins.problems(rows, column, explain(error))
    return problems


def _invalid(column: pd.Series) -> pd.Series:
    return pd.Series([value is INVALID for value in column.to_numpy(dtype=object)], index=column.index)


def _content_problems(table: pd.DataFrame) -> list[Problem]:
    empty = table["prompt"].isna() & table["image_url"].isna()
    if not empty.any():
        return []
    jobs = table.loc[empty, ["key", "source", "path"]].drop_duplicates()
    message = "a job needs a prompt, an image_url, or both"
    return [Problem(source, path, message) for _, source, path in jobs.itertuples(index=False)]


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
