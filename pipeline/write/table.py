"""Writing tables (the job table, the output table) to CSV, JSON Lines or Parquet, atomically.

A reader never sees a half-written table (see atomic.py). Cell types follow columns.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError
from .atomic import replace_atomically
from .columns import Column, arrow_schema, for_csv, typed_frame

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}


def format_of(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise InputError(f"{path}: unknown table format; expected a .csv, .jsonl or .parquet file") from None


def python_value(value: Any) -> Any:
    """A table cell as a plain Python value: NaN/NA become None, numpy scalars Python scalars."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value


def parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def write_table(
    frame: pd.DataFrame, path: Path, columns: tuple[Column, ...] | None = None, *, typed: bool = False
) -> None:
    """Write `frame` to `path` in the format its suffix names, replacing the file atomically.
    With `columns` (see columns.py), the frame is cast to their kinds first (unless `typed`
    says it already was), and Parquet keeps them even for a column that is all empty."""
    kind = format_of(path)
    if kind == "parquet" and not parquet_available():
        raise InputError(f"{path}: Parquet needs pyarrow (pip install 'vidpipe[parquet]')")
    if columns is not None and not typed:
        frame = typed_frame(frame, columns)

    def write(temporary: Path) -> None:
        if kind == "csv":
            for_csv(frame, columns).to_csv(temporary, index=False)
        elif kind == "jsonl":
            _write_jsonl(frame, temporary)
        elif columns is not None:
            _write_parquet(frame, temporary, columns)
        else:
            frame.to_parquet(temporary, index=False)

    replace_atomically(path, write)


def _write_parquet(frame: pd.DataFrame, path: Path, columns: tuple[Column, ...]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, schema=arrow_schema(columns), preserve_index=False)
    pq.write_table(table, path)


JSONL_CHUNK_ROWS = 1000


def _write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    """JSON Lines in chunks: pandas builds the whole text in memory otherwise (90 MB at 10,000 rows)."""
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, len(frame), JSONL_CHUNK_ROWS):
            chunk = frame.iloc[start : start + JSONL_CHUNK_ROWS]
            text = chunk.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
            handle.write(text if text.endswith("\n") else text + "\n")
