"""`vidpipe qc OUTPUT_DIR`: the automatic checks (qc.py) run again on the videos a run left.

Every completed job's video is checked as it is now (a run to a store: fetched from it into a
scratch folder, one at a time), the verdicts are recorded in the ledger, and the results tables
in the folder are written again. A video that is gone is a failed check ("missing"), never a
changed job: it was generated and paid for. The folder is locked like a run's, so a run going
on there is not raced.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, StoreError
from ..read.manifest import display_path
from ..run.ledger import LEDGER_FILE, Checks, Ledger, RunLock
from ..states import JobState
from .qc import FAILED, check_video
from .results import write_results
from .storage import Store

TABLE_FORMATS = ("csv", "jsonl", "parquet")


@dataclass
class Rechecked:
    """What `vidpipe qc` found: job id -> its checks, in manifest order."""

    checks: dict[str, Checks] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [job for job, checks in self.checks.items() if checks.qc == FAILED]


def recheck(out_dir: Path, store: Store | None = None) -> Rechecked:
    """Check every completed job's video in `out_dir` (or in `store`, where its run published
    them), record the verdicts and write the results tables again."""
    ledger_path = out_dir / LEDGER_FILE
    if not ledger_path.is_file():
        raise InputError(
            f"{display_path(out_dir)}: no {LEDGER_FILE} here; expected the output folder of a run"
        )
    found = Rechecked()
    with RunLock(out_dir), Ledger(ledger_path) as ledger:
        rows = [row for row in ledger.frame().to_dict("records") if row["status"] == JobState.COMPLETED]
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".qc-") as scratch:
            for row in rows:
                request = json.loads(row["request"])
                found.paths[row["job_id"]] = row["path"] or ""
                found.checks[row["job_id"]] = _check(out_dir, store, row["path"], request, Path(scratch))
        ledger.record_checks(found.checks)
        formats = tuple(kind for kind in TABLE_FORMATS if (out_dir / f"results.{kind}").is_file())
        write_results(ledger, out_dir, formats)
    return found


def _check(out_dir: Path, store: Store | None, relative: str | None, request: dict, scratch: Path) -> Checks:
    if not relative:
        return Checks(FAILED, ("missing: the ledger names no file",))
    video = out_dir / relative
    if store is not None:
        video = scratch / Path(relative).name
        try:
            store.fetch(Path(relative).as_posix(), video)
        except (StoreError, OSError) as error:
            return Checks(FAILED, (f"missing: cannot fetch it from {store.describe()}: {error}",))
    if not video.is_file():
        return Checks(FAILED, ("missing: the file is not there",))
    try:
        verdict = check_video(video, request)
    except Exception as error:  # one video's surprise must not lose the others' checks
        return Checks(FAILED, (f"cannot be checked: {type(error).__name__}: {error}",))
    finally:
        if store is not None:
            video.unlink(missing_ok=True)
    return Checks(verdict.qc, verdict.problems)
