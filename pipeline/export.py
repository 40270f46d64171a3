"""Dataset export: completed videos plus `metadata.jsonl`, in the folder layout dataset loaders read.

The layout is the "videofolder"/"imagefolder" convention: media files beside a
`metadata.jsonl` whose `file_name` column names each file relative to the folder, and whose
other columns are free-form features (here: every request parameter and the job's identity).
Only the manifest's current, completed jobs are exported; files an earlier export wrote for jobs
that have since left the manifest are removed. Videos are hard-linked when the file system
allows (no extra space), else copied, and checked against the ledger's sha256 either way.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .download import file_sha256
from .errors import InputError
from .ledger import COMPLETED, LEDGER_FILE, Ledger
from .manifest import display_path
from .results import results_frame
from .schema import REQUEST_FIELDS
from .table import python_value

METADATA = "metadata.jsonl"
FEATURES = (
    "job_id",
    "id",
    *REQUEST_FIELDS,
    "seed_chosen",
    "sample",
    "tags",
    "sha256",
    "bytes",
    "generation_id",
    "credits",
)


def export_dataset(out_dir: Path, target: Path) -> int:
    """Write the dataset folder `target` from the run in `out_dir`. Returns the number of videos."""
    ledger_path = out_dir / LEDGER_FILE
    if not ledger_path.is_file():
        raise InputError(
            f"{display_path(out_dir)}: no {LEDGER_FILE} here; expected the output folder of a run"
        )
    with Ledger(ledger_path, read_only=True) as ledger:
        frame = results_frame(ledger)
    done = frame[(frame["status"] == COMPLETED) & frame["in_manifest"]]
    target.mkdir(parents=True, exist_ok=True)
    previous = _previous_files(target)
    records = []
    for row in done.to_dict("records"):
        name = Path(row["path"]).name
        _place(out_dir / row["path"], target / name, row["sha256"])
        records.append({"file_name": name, **{key: python_value(row[key]) for key in FEATURES}})
    for stale in previous - {record["file_name"] for record in records}:
        (target / stale).unlink(missing_ok=True)
    _write_jsonl(records, target / METADATA)
    return len(records)


def _previous_files(target: Path) -> set[str]:
    metadata = target / METADATA
    if not metadata.is_file():
        return set()
    with metadata.open(encoding="utf-8") as handle:
        return {json.loads(line)["file_name"] for line in handle if line.strip()}


def _place(source: Path, destination: Path, sha256: str) -> None:
    same_size = destination.is_file() and destination.stat().st_size == source.stat().st_size
    if same_size and file_sha256(destination) == sha256:
        return
    temporary = destination.with_name(f".{destination.name}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copyfile(source, temporary)
    if file_sha256(temporary) != sha256:
        temporary.unlink()
        raise InputError(
            f"{display_path(source)} does not match the sha256 the ledger recorded; not exported"
        )
    os.replace(temporary, destination)


def _write_jsonl(records: list[dict], path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(temporary, path)
