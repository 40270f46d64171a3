"""The end of a run: the results tables, the dataset and the report, published where outputs go.

A run to a folder leaves them in place; a run to a URL (output.dir: s3://...) writes them in the
local work folder and publishes them to the store. Before anything is paid for, the store must
take a file (`prepare_store`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import VidpipeError
from ..read.manifest import display_path
from .export import export_dataset
from .report import write_report
from .storage import Store, open_store, record_store
from .summary import RunSummary

DATASET_FOLDER = "dataset"


def publish_outputs(
    summary: RunSummary, out_dir: Path, store: Store | None, tables: list[Path], dataset: bool
) -> None:
    """Publish the tables, export the dataset if asked, and write the report (into `summary`)."""
    summary.tables = _publish_tables(store, tables)  # a failure here: a rerun publishes them
    if dataset:
        summary.dataset = store.join(DATASET_FOLDER) if store else out_dir / DATASET_FOLDER
        export_dataset(out_dir, store.child(DATASET_FOLDER) if store else summary.dataset, store)
    summary.report = _report(out_dir) if store is None else _report_in_store(out_dir, store)


def _report(out_dir: Path) -> Path | None:
    """The contact sheet; a run's outcome does not depend on it, so a failure is only a warning."""
    try:
        return write_report(out_dir)
    except (OSError, VidpipeError) as error:
        print(f"warning: report.html was not written: {error}", file=sys.stderr)
        return None
    except Exception as error:  # the run's paid work is done: a report bug is no failure
        print(f"warning: report.html was not written: {type(error).__name__}: {error}", file=sys.stderr)
        return None


def remote_store(target: Path | str, settings) -> Store | None:
    """The store a run publishes to when output.dir (or --out) is a URL; None for a folder."""
    store = open_store(target, settings.output.storage_options)
    return store if store.remote else None


def prepare_store(store: Store | None, out_dir: Path) -> None:
    """Before anything is paid for: the store must take a file (a one-line InputError if not),
    and the work folder records where its run publishes (for status, report and export)."""
    if store is not None:
        store.check_writable()
    earlier = record_store(out_dir, store or open_store(out_dir))
    if earlier:
        print(
            f"warning: {display_path(out_dir)} published to {earlier} before; this run publishes to "
            f"{store.describe() if store else display_path(out_dir)} (videos not there are fetched again)",
            file=sys.stderr,
        )


def _publish_tables(store: Store | None, tables: list[Path]) -> list[Path | str]:
    """The results tables, written in the work folder, published to the store (their URLs)."""
    if store is None:
        return list(tables)
    for path in tables:
        store.publish(path, path.name)
    return [store.join(path.name) for path in tables]


def _report_in_store(out_dir: Path, store: Store) -> str | None:
    """_report for a run that publishes to a store: written in the work folder, then published."""
    try:
        path = write_report(out_dir, store=store)
    except (OSError, VidpipeError) as error:
        print(f"warning: report.html was not written: {error}", file=sys.stderr)
        return None
    except Exception as error:  # the run's paid work is done: a report bug is no failure
        print(f"warning: report.html was not written: {type(error).__name__}: {error}", file=sys.stderr)
        return None
    return store.join(path.name)
