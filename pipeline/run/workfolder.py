"""The run's local work folder, checked before anything is paid for; a lost ledger rebuilt.

The ledger (ledger.sqlite) is what keeps a rerun from paying twice. When it is missing, empty or
has no jobs while the folder's results table or videos say jobs were done or paid for, a run
would submit them all again: `refuse_lost_ledger` stops it with one line instead, and
`vidpipe run --rebuild-ledger` rebuilds the ledger from results.jsonl (`rebuild_ledger`):

- a job with a generation id keeps its state (completed, submitted, generated, timed out): it
  is polled or fetched again, never resent; a completed job whose video is gone is fetched
  again by the run, as always;
- `submitting` (caught mid-submit, so `uncertain` once the run starts) and `uncertain` keep
  theirs;
- a job the table shows `pending` or `failed`, or does not show, keeps that state only when the
  table was written at the end of a run (the `results.final` mark, which every run removes
  before its first submit, and which holds a digest of the states it vouches for); otherwise it
  may have been submitted after the table's last write, and becomes `uncertain`;
- a job of the manifest whose video is in videos/ is completed, whatever the table says.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import EnvironmentRefusedError, InputError, LedgerDamagedError, refused
from ..read.manifest import display_path
from ..read.schema import REQUEST_FIELDS
from ..states import JobState
from ..write.columns import MODEL_FIELDS
from .ledger import LEDGER_FILE, RESTORED, Ledger, now_iso
from .runplan import LABELS

if TYPE_CHECKING:
    from .steps import Job

FINAL_MARK = "results.final"
TABLES = ("results.jsonl", "results.parquet")  # the tables a ledger can be rebuilt from, best first
EVIDENCE = ("results.jsonl", "results.csv", "results.parquet")
PROBE_BYTES = 4096
HOW_TO_PROCEED = (
    "restore it from a backup, or run again with --rebuild-ledger (rebuilds it from results.jsonl: "
    "generation ids are polled, not resent) or --fresh (sets it aside and starts over, paying again)"
)

ManifestRow = tuple[str, int, Mapping[str, Any], Mapping[str, Any]]  # job_id, index, request, labels


def check_writable(folder: Path) -> None:
    """The folder exists and takes a file: a read-only folder or a full disk stops the run here,
    before anything is paid for, not at the first ledger write after a paid POST."""
    probe = folder / f".vidpipe-write-check-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as handle:
            handle.write(bytes(PROBE_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        advice = "free some space" if full else "make it writable"
        raise refused(display_path(folder), error, f"{advice}, or give this run another --out") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def set_aside_ledger(out_dir: Path) -> None:
    """Keep the old ledger (it records what was paid for) under another name, for a new one."""
    if (out_dir / LEDGER_FILE).exists():
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            part = out_dir / (LEDGER_FILE + suffix)
            if part.exists():
                shutil.move(part, out_dir / f"{LEDGER_FILE}.{stamp}.bak{suffix}")


# --- the results table's finality ------------------------------------------------------------


def clear_final_mark(out_dir: Path) -> None:
    """A run is starting: from now on the table may lag the ledger."""
    (out_dir / FINAL_MARK).unlink(missing_ok=True)


def mark_tables_final(out_dir: Path, ledger: Ledger) -> None:
    """The tables were just written from `ledger` at the end of a run: they agree with it.

    The mark holds a digest of every job's state, so a table that does not match it (an older
    refresh that finished late, a table copied from elsewhere) is not taken for final.
    """
    mark = {"written_at": now_iso(), "jobs": _digest(ledger.rows_by_id().values())}
    (out_dir / FINAL_MARK).write_text(json.dumps(mark) + "\n")


def _is_final(out_dir: Path, table: list[dict[str, Any]]) -> bool:
    try:
        mark = json.loads((out_dir / FINAL_MARK).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(mark, dict) and bool(table) and mark.get("jobs") == _digest(table)


def _digest(rows: Iterable[Mapping[str, Any]]) -> str:
    """The states of a set of jobs, in a few bytes: job id, status and generation id of each."""
    lines = sorted(f"{row['job_id']}\t{row['status']}\t{row.get('generation_id') or ''}" for row in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# --- a lost ledger -----------------------------------------------------------------------------


def refuse_lost_ledger(out_dir: Path) -> None:
    """Refuse to run on a missing, empty or job-less ledger beside results that say jobs were done."""
    problem = _lost(out_dir / LEDGER_FILE)
    evidence = _evidence(out_dir) if problem else []
    if evidence:
        raise EnvironmentRefusedError(
            f"{display_path(out_dir / LEDGER_FILE)} {problem}, but {_listed(evidence)} say jobs were "
            f"done or paid for; nothing was sent. To go on, {HOW_TO_PROCEED}"
        )


def rebuild_ledger(
    out_dir: Path, manifest_rows: Iterable[ManifestRow], jobs: list[Job], *, local: bool
) -> str:
    """Set the lost ledger aside and build a new one from the results table (see the module doc).

    `local`: videos are kept in out_dir/videos (not published to a store). Returns the line to show.
    """
    path = out_dir / LEDGER_FILE
    if _lost(path) is None:
        raise InputError(
            f"{display_path(path)} is readable and has jobs: --rebuild-ledger is only for a missing, "
            "empty or damaged one (a normal rerun resumes from it)"
        )
    source = next((out_dir / name for name in TABLES if (out_dir / name).is_file()), None)
    table = _read_table(source) if source else []
    final = _is_final(out_dir, table)
    where = display_path(source) if source else ""
    rows = {row["job_id"]: _ledger_row(row, f"{where}:{n}") for n, row in enumerate(table, start=1)}
    stamp = now_iso()
    for job_id, index, request, labels in manifest_rows:
        if job_id not in rows:
            rows[job_id] = {
                "job_id": job_id,
                "idx": index,
                "request": json.dumps(request, sort_keys=True),
                "labels": json.dumps(labels, sort_keys=True),
                "status": JobState.PENDING,
            }
    for row in rows.values():
        for column, default in (("submits", 0), ("resubmits", 0), ("polls", 0), ("in_manifest", 1)):
            row.setdefault(column, default)
        row.setdefault("updated_at", stamp)
        if JobState(row["status"]).to_submit(retry_uncertain=False) and not final:
            row["status"], row["error_name"] = JobState.UNCERTAIN, "uncertain"
            row["error_message"] = (
                "rebuilt from a results table written mid-run: it may have been submitted after "
                "the table's last write"
            )
    if local:
        for job in jobs:
            _completed_if_on_disk(rows[job.job_id], out_dir / "videos" / job.filename, out_dir)
    set_aside_ledger(out_dir)
    with Ledger(path) as ledger:
        ledger.restore_jobs(rows.values())
        counts = ledger.counts()
    shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    origin = display_path(source) if source else "the videos alone (no results.jsonl)"
    return f"Rebuilt {display_path(path)} from {origin}: {shown}. Generation ids are polled, not resent" + (
        "" if final else "; the table was written mid-run, so jobs it shows unsent are uncertain"
    )


def _lost(path: Path) -> str | None:
    """What is wrong with the ledger at `path` ("is missing", ...), or None when it is usable.
    A ledger locked by another program is not lost: that error goes to the caller."""
    if not path.exists():
        return "is missing"
    try:
        with path.open("rb") as handle:
            if not handle.read(1):
                return "is empty (0 bytes)"
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    try:
        with Ledger(path, read_only=True) as ledger:
            jobs = ledger.job_count()
    except LedgerDamagedError:
        return "is damaged"
    return None if jobs else "has no jobs"


def _evidence(out_dir: Path) -> list[str]:
    """The files in `out_dir` that say jobs were done or paid for."""
    found = []
    for name in EVIDENCE:
        path = out_dir / name
        if path.is_file() and path.stat().st_size > 0:
            found.append(name)
    videos = sum(1 for p in (out_dir / "videos").glob("*.mp4") if p.is_file() and not p.name.startswith("."))
    if videos:
        found.append(f"{videos} video(s) in videos/")
    return found


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _read_table(path: Path) -> list[dict[str, Any]]:
    """The results table's rows as plain values."""
    where = display_path(path)
    try:
        if path.suffix != ".jsonl":
            # Through JSON, so the rows are what results.jsonl would hold: lists, ISO times, nulls.
            frame = pd.read_parquet(path)
            return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="ms"))
        rows = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise _cannot_rebuild(f"{where}:{number}", "not a line of JSON") from None
        return rows
    except (OSError, ValueError) as error:
        raise _cannot_rebuild(where, f"cannot be read ({error})") from None


def _blank(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and value != value)


def _cannot_rebuild(where: str, problem: str) -> EnvironmentRefusedError:
    return EnvironmentRefusedError(
        f"{where}: {problem}, so the ledger cannot be rebuilt from it; restore the ledger from a "
        "backup, or --fresh to start over"
    )


KNOWN_STATUSES = set(JobState)


def _ledger_row(row: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A ledger row from a results table row (results.results_frame, read backwards)."""
    known = isinstance(row, Mapping) and row.get("status") in KNOWN_STATUSES
    if not (known and row.get("job_id") and isinstance(row.get("index"), int)):
        raise _cannot_rebuild(where, "not a results row (it needs a job_id, a status and an index)")
    restored = {column: row.get(column) for column in RESTORED}
    restored["idx"] = row.get("index")
    request = {field: row.get(field) for field in REQUEST_FIELDS}
    request.update({f: row.get(f) for f in MODEL_FIELDS if not _blank(row.get(f))})
    extra = row.get("extra")
    if isinstance(extra, str) and extra.strip():
        try:
            loaded = json.loads(extra)
        except ValueError:
            raise _cannot_rebuild(where, "its extra column is not JSON") from None
        if isinstance(loaded, dict):
            request.update(loaded)
    restored["request"] = json.dumps(request, sort_keys=True)
    restored["labels"] = json.dumps({label: row.get(label) for label in LABELS}, sort_keys=True)
    restored["in_manifest"] = int(bool(row.get("in_manifest", True)))
    restored["qc_problems"] = json.dumps(list(row.get("qc_problems") or [])) if row.get("qc") else None
    for counter in ("submits", "resubmits", "polls"):
        restored[counter] = int(row.get(counter) or 0)
    restored.pop("updated_at", None)
    return restored


def _completed_if_on_disk(row: dict[str, Any], video: Path, out_dir: Path) -> None:
    """A video in place is a completed job, even one the table had not caught up with."""
    if row["status"] == JobState.COMPLETED or not video.is_file():
        return
    digest = hashlib.sha256()
    with video.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    row.update(
        status=JobState.COMPLETED,
        path=str(video.relative_to(out_dir)),
        bytes=video.stat().st_size,
        sha256=digest.hexdigest(),
        error_name=None,
        error_message=None,
    )
