"""Dataset export: completed videos plus `metadata.jsonl`, in the folder layout dataset loaders read.

The layout is the "videofolder"/"imagefolder" convention: media files beside a
`metadata.jsonl` whose `file_name` column names each file relative to the folder, and whose
other columns are free-form features (here: every request parameter and the job's identity).
Only the manifest's current, completed jobs are exported; files an earlier export wrote for jobs
that have since left the manifest are removed. Videos are hard-linked when the file system
allows (no extra space), else copied, and checked against the ledger's sha256 either way.

A video that failed its automatic checks (`qc: failed`, qc.py) is left out unless
`include_failed_qc`; one not checked yet is exported. Every export writes a dataset card,
`README.md` (card.py). `layout="webdataset"` writes tar shards instead (shards.py, to a local
folder only). A local dataset folder must be new, empty or an earlier export of the same
layout: anything else there is refused, never removed or mixed in.

A run that publishes to a store (output.dir as a URL) exports from it: to a local folder each
video is downloaded and checked against its sha256; to a folder in the same store (what
`output.dataset: true` does) it is copied there without coming through this machine, and a
video already there with the ledger's size is kept (a store cannot hash it for us).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import InputError, refused
from ..net.download import file_sha256
from ..read.manifest import display_path
from ..read.schema import REQUEST_FIELDS
from ..run.ledger import LEDGER_FILE, Ledger
from ..states import JobState
from .atomic import replace_atomically
from .card import CARD, RANKINGS, CardFacts, dataset_card
from .columns import MODEL_FIELDS
from .qc import FAILED
from .results import output_table
from .shards import SHARD_SIZE, write_shards
from .storage import LocalStore, Store
from .table import python_value

METADATA = "metadata.jsonl"
FEATURES = (
    "job_id",
    "id",
    *REQUEST_FIELDS,
    *MODEL_FIELDS,  # the model-specific fields sent: typed, the rest as JSON text in `extra`
    "extra",
    "seed_chosen",
    "sample",
    "tags",
    "sha256",
    "bytes",
    "generation_id",
    "credits",
    "qc",
    "qc_problems",
)
LAYOUTS = ("videofolder", "webdataset")


@dataclass(frozen=True)
class ExportOptions:
    include_failed_qc: bool = False
    layout: str = "videofolder"  # or webdataset
    shard_size: int = SHARD_SIZE  # samples per webdataset shard


@dataclass(frozen=True)
class Exported:
    videos: int
    left_out: int  # failed their checks, not exported
    shards: int = 0


def export_dataset(
    out_dir: Path, target: Path | Store, store: Store | None = None, options: ExportOptions | None = None
) -> Exported:
    """Write the dataset folder `target` (a local folder or a Store) from the run in `out_dir`.
    `store` is where that run published its files (None: in `out_dir`)."""
    options = options or ExportOptions()
    ledger_path = out_dir / LEDGER_FILE
    if not ledger_path.is_file():
        raise InputError(
            f"{display_path(out_dir)}: no {LEDGER_FILE} here; expected the output folder of a run"
        )
    with Ledger(ledger_path, read_only=True) as ledger:
        frame = output_table(ledger)
        manifest = next((run["manifest"] for run in reversed(ledger.runs()) if run["manifest"]), None)
    done = frame[(frame["status"] == JobState.COMPLETED) & frame["in_manifest"]]
    failed = _failed_checks(done)
    if not options.include_failed_qc:
        done = done[~failed]
    left_out = 0 if options.include_failed_qc else int(failed.sum())
    if not isinstance(target, Store):
        _prepare_target(Path(target), options.layout)
    card = dataset_card(frame, done, _card_facts(out_dir, target, manifest, options))
    remote = store is not None or isinstance(target, Store)
    if options.layout == "webdataset":
        if remote:
            raise InputError(
                "--format webdataset writes to a local folder from a local run; give --to a folder"
            )
        return _export_shards(done, out_dir, target, options, card, left_out)
    if remote:
        count = _export_through_stores(done, out_dir, store or LocalStore(out_dir), target, card)
        return Exported(count, left_out)
    target.mkdir(parents=True, exist_ok=True)
    previous = _previous_files(target)
    records = []
    for row in done.to_dict("records"):
        name = Path(row["path"]).name
        _place(out_dir / row["path"], target / name, row["sha256"])
        records.append({"file_name": name, **_features(row)})
    for stale in previous - {record["file_name"] for record in records}:
        (target / stale).unlink(missing_ok=True)
    _write_jsonl(records, target / METADATA)
    _write_card(card, target / CARD)
    return Exported(len(records), left_out)


def _prepare_target(target: Path, layout: str) -> None:
    """Make the dataset folder; one that holds anything but an earlier export of the same
    layout is refused (nothing of it is removed or mixed with this export)."""
    if target.exists() and not target.is_dir():
        raise InputError(f"{display_path(target)}: not a folder; give --to a new or empty folder")
    try:
        target.mkdir(parents=True, exist_ok=True)
        names = {entry.name for entry in target.iterdir()}
    except OSError as error:
        raise refused(display_path(target), error, "give --to a folder you can write") from None
    names.discard(CARD)
    shards = {name for name in names if name.startswith("shard-") and name.endswith(".tar")}
    videofolder = METADATA in names
    ours = (videofolder and not shards) if layout == "videofolder" else (shards and not videofolder)
    if names and not ours:
        found = "a videofolder export" if videofolder else "webdataset shards" if shards else "other files"
        raise InputError(
            f"{display_path(target)}: holds {found}, not an earlier {layout} export; "
            f"export to a new or empty folder (or remove that one first)"
        )


def _failed_checks(rows: pd.DataFrame) -> pd.Series:
    """True for a video that failed its checks; one not checked (no `qc`) has not failed."""
    return (rows["qc"] == FAILED).fillna(False).astype(bool)


def _features(row: dict) -> dict:
    return {key: python_value(row.get(key)) for key in FEATURES}


def _card_facts(
    out_dir: Path, target: Path | Store, manifest: str | None, options: ExportOptions
) -> CardFacts:
    manifest_file = Path(manifest) if manifest else None
    rankings_file = out_dir / RANKINGS
    try:
        rankings = json.loads(rankings_file.read_text(encoding="utf-8")) if rankings_file.is_file() else None
    except (OSError, ValueError) as error:
        raise InputError(
            f"{display_path(rankings_file)}: not readable JSON ({error}); not exported"
        ) from None
    return CardFacts(
        title=target.describe() if isinstance(target, Store) else Path(target).name,
        manifest=manifest,
        manifest_sha256=file_sha256(manifest_file) if manifest_file and manifest_file.is_file() else None,
        layout=options.layout,
        include_failed_qc=options.include_failed_qc,
        rankings=rankings,
    )


def _export_shards(
    done: pd.DataFrame, out_dir: Path, target: Path, options: ExportOptions, card: str, left_out: int
) -> Exported:
    samples = []
    for row in done.to_dict("records"):
        video = out_dir / row["path"]
        if file_sha256(video) != row["sha256"]:
            raise InputError(
                f"{display_path(video)} does not match the sha256 the ledger recorded; not exported"
            )
        samples.append((video, {"file_name": Path(row["path"]).name, **_features(row)}))
    shards = write_shards(samples, target, options.shard_size)
    _write_card(card, target / CARD)
    return Exported(len(samples), left_out, len(shards))


def _write_card(card: str, path: Path) -> None:
    replace_atomically(path, lambda temporary: temporary.write_text(card, encoding="utf-8"))


def _export_through_stores(done, out_dir: Path, source: Store, target: Path | Store, card: str) -> int:
    destination = target if isinstance(target, Store) else LocalStore(target)
    destination.check_writable()
    there = destination.sizes()
    previous = destination.read_bytes(METADATA) or b""
    records = []
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as scratch:
        for row in done.to_dict("records"):
            name = Path(row["path"]).name
            _copy(source, row, destination, there.get(name), Path(scratch))
            records.append({"file_name": name, **_features(row)})
        lines = previous.decode("utf-8").splitlines()
        names = {json.loads(line)["file_name"] for line in lines if line.strip()}
        for stale in names - {record["file_name"] for record in records}:
            destination.remove(stale)
        _write_jsonl(records, Path(scratch) / METADATA)
        destination.publish(Path(scratch) / METADATA, METADATA)
        _write_card(card, Path(scratch) / CARD)
        destination.publish(Path(scratch) / CARD, CARD)
    return len(records)


def _copy(source: Store, row: dict, target: Store, size_there: int | None, scratch: Path) -> None:
    """One video from the run's store to the dataset's, checked against the ledger."""
    relative, name = Path(row["path"]).as_posix(), Path(row["path"]).name
    sha256, size = row["sha256"], int(row["bytes"])
    if isinstance(target, LocalStore):
        local = target.path(name)
        if size_there == size and file_sha256(local) == sha256:
            return

        def fetch_checked(temporary: Path) -> None:
            source.fetch(relative, temporary)
            _check(temporary, sha256, source.join(relative))

        replace_atomically(local, fetch_checked)
        return
    if size_there == size or source.copy_to(relative, target, name):
        return
    local = source.path(relative) if isinstance(source, LocalStore) else scratch / name
    if not isinstance(source, LocalStore):
        source.fetch(relative, local)
    _check(local, sha256, source.join(relative))
    target.publish(local, name, keep=isinstance(source, LocalStore))


def _check(path: Path, sha256: str, shown: str) -> None:
    if file_sha256(path) != sha256:
        raise InputError(f"{shown} does not match the sha256 the ledger recorded; not exported")


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

    def link_or_copy(temporary: Path) -> None:
        temporary.unlink()  # os.link makes its name itself
        try:
            os.link(source, temporary)
        except OSError:  # another filesystem, or links refused
            shutil.copyfile(source, temporary)
        if file_sha256(temporary) != sha256:
            raise InputError(
                f"{display_path(source)} does not match the sha256 the ledger recorded; not exported"
            )

    # A link shares the run's video's mode (and owner): it is not changed; a copy has the umask's.
    replace_atomically(destination, link_or_copy, mode=None)


def _write_jsonl(records: list[dict], path: Path) -> None:
    def write(temporary: Path) -> None:
        with temporary.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    replace_atomically(path, write)
