"""Writing tables (the job table, the output table) to CSV, JSON Lines or Parquet, atomically.

A reader never sees a half-written table: each file is written beside its target and renamed
into place, which is atomic on POSIX filesystems.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import InputError

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


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` to `path` in the format its suffix names, replacing the file atomically."""
    kind = format_of(path)
    if kind == "parquet" and not parquet_available():
        raise InputError(f"{path}: Parquet needs pyarrow (pip install 'vidpipe[parquet]')")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        if kind == "csv":
            frame.to_csv(temporary, index=False)
        elif kind == "jsonl":
            _write_jsonl(frame, Path(temporary))
        else:
            frame.to_parquet(temporary, index=False)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


JSONL_CHUNK_ROWS = 1000


def _write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    """JSON Lines in chunks: pandas builds the whole text in memory otherwise (90 MB at 10,000 rows)."""
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, len(frame), JSONL_CHUNK_ROWS):
            chunk = frame.iloc[start : start + JSONL_CHUNK_ROWS]
            text = chunk.to_json(orient="records", lines=True, force_ascii=False)
            handle.write(text if text.endswith("\n") else text + "\n")
