"""The output table's columns and their types: one declaration that every writer follows.

Each column has one kind, whatever its values: a column that happens to be empty keeps its type
(Parquet would otherwise call it `null`), timestamps are UTC instants, credits are integers,
`tags` is a list. How each format spells a kind:

| kind      | CSV                       | JSON Lines       | Parquet (Arrow)          |
| --------- | ------------------------- | ---------------- | ------------------------ |
| string    | text (formulas defused)   | string or null   | string                   |
| int       | digits or empty           | number or null   | int64                    |
| float     | number or empty           | number or null   | float64                  |
| bool      | True / False or empty     | true/false/null  | bool                     |
| timestamp | 2026-12-01T09:36:08.123Z  | the same text    | timestamp[ms, tz=UTC]    |
| list      | a|b                       | ["a", "b"]       | list<string>             |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..read.schema import REQUEST_FIELDS

# The request fields' kinds; a field the schema adds later is a string until it is listed here.
REQUEST_KINDS = {"duration": "int", "seed": "int", "watermark": "bool"}
# The model-specific fields many models declare (catalogue COMMON_FIELDS beyond vidpipe's own),
# each a typed column; every other model-specific field goes in `extra`, one JSON object as text.
MODEL_FIELDS = {"resolution": "string", "negative_prompt": "string", "generate_audio": "bool"}
LIST_SEPARATOR = "|"
# OWASP's CSV injection rule: a cell starting with one of these runs as a formula in a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # string | int | float | bool | timestamp | list


def _columns(*pairs: tuple[str, str]) -> tuple[Column, ...]:
    return tuple(Column(name, kind) for name, kind in pairs)


OUTPUT_COLUMNS = _columns(
    ("index", "int"),
    ("job_id", "string"),
    ("id", "string"),
    ("status", "string"),
    *((name, REQUEST_KINDS.get(name, "string")) for name in REQUEST_FIELDS),
    *MODEL_FIELDS.items(),
    ("extra", "string"),  # the other model-specific fields sent: {"enhance_prompt": false}
    ("seed_chosen", "bool"),
    ("sample", "int"),
    # What a job asked for, when run.adapt: nearest sent its model's nearest value instead.
    ("asked_duration", "int"),
    ("asked_ratio", "string"),
    ("generation_id", "string"),
    ("account", "string"),
    ("error_name", "string"),
    ("error_message", "string"),
    ("video_url", "string"),
    ("path", "string"),
    ("bytes", "int"),
    ("sha256", "string"),
    ("qc", "string"),
    ("qc_problems", "list"),
    ("submits", "int"),
    ("resubmits", "int"),
    ("polls", "int"),
    ("submitted_at", "timestamp"),
    ("completed_at", "timestamp"),
    ("generation_seconds", "float"),
    ("credits", "int"),
    ("tags", "list"),
    ("source", "string"),
    ("in_manifest", "bool"),
)
OUTPUT_COLUMN_NAMES = tuple(column.name for column in OUTPUT_COLUMNS)

_PANDAS_DTYPES = {"string": "string", "int": "Int64", "float": "Float64", "bool": "boolean"}


def typed_frame(frame: pd.DataFrame, columns: tuple[Column, ...]) -> pd.DataFrame:
    """`frame` with exactly `columns`, each cast to its kind (missing columns are all-empty)."""
    empty = pd.Series(None, index=frame.index, dtype=object)
    # One constructor call: inserting the columns one by one costs pandas more than casting
    # them (a 120-row table took 0.24 s per cast that way, most of the end-of-run write).
    cast = {
        column.name: _cast(frame[column.name] if column.name in frame.columns else empty, column.kind)
        for column in columns
    }
    return pd.DataFrame(cast, index=frame.index).reset_index(drop=True)


def _cast(values: pd.Series, kind: str) -> pd.Series:
    if kind == "timestamp":
        return pd.to_datetime(values, utc=True, format="ISO8601").astype("datetime64[ms, UTC]")
    if kind == "list":
        return values.map(as_list).astype(object)  # an empty Series would map to float64
    if kind in ("int", "bool"):
        values = values.map(lambda v: None if _missing(v) else round(v) if kind == "int" else bool(v))
    return values.astype(_PANDAS_DTYPES[kind])


def as_list(value: Any) -> list[str]:
    """Tags as a list, from a list or from `a|b` text; empty for none."""
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    if _missing(value) or value == "":
        return []
    return str(value).split(LIST_SEPARATOR)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def for_csv(frame: pd.DataFrame, columns: tuple[Column, ...] | None) -> pd.DataFrame:
    """A copy ready for a spreadsheet: lists joined with `|`, times as ISO text, and text cells
    that would run as formulas prefixed with `'` (the exact text stays in JSONL and Parquet)."""
    kinds = {column.name: column.kind for column in columns or ()}
    out = {name: _for_csv(frame[name], kinds.get(name)) for name in frame.columns}
    return pd.DataFrame(out, index=frame.index)  # at once, as in typed_frame


def _for_csv(values: pd.Series, kind: str | None) -> pd.Series:
    if kind == "list":
        return values.map(LIST_SEPARATOR.join)
    if kind == "timestamp":
        return iso_text(values)
    if kind in ("string", None) and _holds_text(values):
        return values.map(defuse_formula)
    return values


def _holds_text(values: pd.Series) -> bool:
    return values.dtype == object or pd.api.types.is_string_dtype(values)


def iso_text(values: pd.Series) -> pd.Series:
    """UTC instants as `2026-12-01T09:36:08.123Z`; missing stays missing."""
    return values.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").str.replace(r"\d{3}Z$", "Z", regex=True)


def defuse_formula(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def arrow_schema(columns: tuple[Column, ...]):
    """The Parquet schema of `columns` (pyarrow is imported only when Parquet is written)."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("ms", tz="UTC"),
        "list": pa.list_(pa.string()),
    }
    return pa.schema([pa.field(column.name, types[column.kind]) for column in columns])
