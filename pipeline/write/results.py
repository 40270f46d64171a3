"""The output table: one row per job with its request, its outcome and its file, from the ledger.

The ledger is the truth; this table is a readable copy of it, rewritten atomically during the
run and at its end, so a crash leaves a table that agrees with the ledger as of its last write.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pandas as pd

from ..errors import refused
from ..read.schema import REQUEST_FIELDS
from ..run.ledger import LEDGER_FILE, Ledger
from .columns import MODEL_FIELDS, OUTPUT_COLUMN_NAMES, OUTPUT_COLUMNS, typed_frame
from .table import write_table

TABLE_REFRESH_S = 5.0
OWN_FIELDS = frozenset((*REQUEST_FIELDS, *MODEL_FIELDS))  # request fields with a column each


def results_frame(ledger: Ledger) -> pd.DataFrame:
    rows = ledger.frame()
    requests = pd.DataFrame([json.loads(text) for text in rows["request"]], index=rows.index)
    labels = pd.DataFrame([json.loads(text) for text in rows["labels"]], index=rows.index)
    extra = [_extra(json.loads(text)) for text in rows["request"]]
    requests = requests.drop(columns=[c for c in requests.columns if c not in OWN_FIELDS])
    frame = pd.concat([rows.drop(columns=["request", "labels"]), requests, labels], axis=1)
    frame["extra"] = extra
    frame = frame.rename(columns={"idx": "index"})
    frame["in_manifest"] = frame["in_manifest"].astype(bool)
    frame["qc_problems"] = [
        json.loads(text) if isinstance(text, str) else [] for text in frame["qc_problems"]
    ]
    for column in OUTPUT_COLUMN_NAMES:
        if column not in frame.columns:
            frame[column] = None
    return frame[list(OUTPUT_COLUMN_NAMES)]


def _extra(request: dict) -> str | None:
    """The model-specific fields without a column of their own, as JSON text (None: none)."""
    rest = {key: value for key, value in request.items() if key not in OWN_FIELDS}
    return json.dumps(rest, sort_keys=True) if rest else None


def output_table(ledger: Ledger) -> pd.DataFrame:
    """The output table with every column cast to its declared kind (columns.py)."""
    return typed_frame(results_frame(ledger), OUTPUT_COLUMNS)


def write_results(ledger: Ledger, folder: Path, formats: tuple[str, ...]) -> list[Path]:
    """Write results.<format> for each requested format (the run checked at its start that
    each can be written)."""
    frame = output_table(ledger)
    written = []
    for kind in formats:
        path = folder / f"results.{kind}"
        try:
            write_table(frame, path, OUTPUT_COLUMNS, typed=True)
        except OSError as error:  # a full disk, a read-only folder: the ledger still has everything
            advice = "free some space or make the folder writable; a rerun writes it"
            raise refused(path, error, advice) from None
        written.append(path)
    return written


def refresh_results(folder: Path, formats: tuple[str, ...]) -> None:
    """write_results through a read-only connection of its own: safe from another thread."""
    with Ledger(folder / LEDGER_FILE, read_only=True) as reader:
        write_results(reader, folder, formats)


async def keep_results_fresh(ledger: Ledger, out_dir: Path, formats: tuple[str, ...]) -> None:
    """Rewrite the results table when the ledger has changed, off the event loop.

    A 100,000-job table takes seconds to write: the interval grows to four times the last
    write, so refreshing never takes more than a fifth of the run's time.
    """
    interval, seen = TABLE_REFRESH_S, ledger.changes
    while True:
        await asyncio.sleep(interval)
        if ledger.changes == seen:
            continue
        seen = ledger.changes
        started = time.monotonic()
        await asyncio.to_thread(refresh_results, out_dir, formats)
        interval = max(TABLE_REFRESH_S, 4 * (time.monotonic() - started))
