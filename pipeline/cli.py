"""The `vidpipe` command: argument parsing, exit codes, and one-line errors. No logic of its own."""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .ci import annotate_failures, annotate_problems, annotation, append_step_summary, on_github, step_summary
from .errors import (
    EXIT_ABORTED,
    EXIT_ENVIRONMENT,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    BudgetError,
    InputError,
    ManifestError,
    VidpipeError,
    one_line,
)
from .services import SERVICES

# Every other module is imported by the command that needs it: most need pandas, and
# `vidpipe --help` (or a pre-commit hook's validate) should not wait for what it never uses.

EXIT_INTERNAL = 70
# What the machine says when it refuses: these are not bugs of vidpipe (exit 4, not 70).
REFUSALS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})
OUTPUT_HELP = "a run's output folder, or the URL it published to (s3://bucket/prefix)"
LEDGER_DIR_HELP = "for a URL: the local work folder with the run's ledger (default: the one under outputs/)"

DESCRIPTION = """\
Run many video generations from one manifest: validate it, see what it costs, run it.

Example:
  vidpipe validate manifests/ab-seed-sweep.yaml
  vidpipe plan manifests/ab-seed-sweep.yaml --out jobs.csv
  vidpipe run manifests/ab-seed-sweep.yaml             # on the free local sandbox
  vidpipe status outputs/ab-seed-sweep
  vidpipe report outputs/ab-seed-sweep                 # report.html: the sweep side by side
  AIMLAPI_KEY=... vidpipe run manifests/ab-seed-sweep.yaml --provider aimlapi --limit 2

Exit codes: 0 ok, 1 some jobs failed, 2 invalid input, 3 aborted (auth, credits, budget),
4 the environment refused (folder not writable, disk full, ledger locked, damaged or missing
beside results), 130 interrupted.
"""


def build_parser(*, sandbox_arguments: bool = True) -> argparse.ArgumentParser:
    """The whole command line. Without `sandbox_arguments` the `sandbox` command is listed but
    takes no arguments: reading them imports the sandbox and asyncio, which only it needs."""
    parser = argparse.ArgumentParser(
        prog="vidpipe", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"vidpipe {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = _command(
        commands,
        "validate",
        "check manifests against the schema and the API's rules",
        "Every problem is listed, one per line: file:line: field: what is wrong.\n\n"
        "Example:\n  vidpipe validate manifests/*.yaml manifests/*.csv",
    )
    validate.add_argument("manifests", nargs="+", type=Path, metavar="FILE", help="YAML or CSV manifests")
    validate.set_defaults(handler=cmd_validate)

    plan = _command(
        commands,
        "plan",
        "show what a manifest would run and cost, without sending anything",
        "When the run's output folder exists, work already done there is not counted again.\n\n"
        "Example:\n  vidpipe plan manifests/ab-seed-sweep.yaml --out jobs.csv",
    )
    plan.add_argument("manifest", type=Path, metavar="MANIFEST", help="YAML or CSV manifest")
    plan.add_argument(
        "--out", type=Path, metavar="FILE", help="write the job table (.csv, .jsonl or .parquet)"
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument("--concurrency", type=_positive_int, metavar="N", help="override run.concurrency")
    plan.add_argument("--budget", type=_non_negative_int, metavar="CREDITS", help="override run.budget")
    plan.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="count work already done there (default: the run's output folder, when it exists)",
    )
    plan.set_defaults(handler=cmd_plan)

    run = _command(
        commands,
        "run",
        "run a manifest: submit, poll, download, and write the results table",
        "Outputs go to outputs/<name>/: videos/, results.csv, results.jsonl and ledger.sqlite.\n"
        "Running the same command again resumes: finished jobs are skipped, running ones polled.\n\n"
        "Example:\n"
        "  vidpipe run manifests/ab-seed-sweep.yaml\n"
        "  AIMLAPI_KEY=... vidpipe run manifests/ab-seed-sweep.yaml --provider aimlapi --limit 2\n"
        "  vidpipe run manifests/ab-seed-sweep.yaml --engine ray --shards 4   # needs vidpipe[ray]\n"
        "  vidpipe run manifests/ab-seed-sweep.yaml --out s3://bucket/sweeps   # needs vidpipe[s3]",
    )
    run.add_argument("manifest", type=Path, metavar="MANIFEST", help="YAML or CSV manifest")
    run.add_argument("--provider", choices=tuple(SERVICES), help="override the manifest's provider")
    run.add_argument(
        "--base-url", metavar="URL", help="API base URL (default $AIMLAPI_BASE_URL or the real one)"
    )
    run.add_argument("--endpoint", choices=("legacy", "universal"), help="which API path to use")
    run.add_argument(
        "--out",
        type=_location,
        metavar="DIR",
        help="output folder (default outputs/<name>/) or URL (s3://bucket/prefix)",
    )
    run.add_argument(
        "--ledger-dir",
        type=Path,
        metavar="DIR",
        help="local folder for the ledger when --out is a URL (default outputs/<name>/)",
    )
    run.add_argument("--concurrency", type=_positive_int, metavar="N", help="generations in flight at once")
    run.add_argument(
        "--budget", type=_non_negative_int, metavar="CREDITS", help="most credits this run may spend"
    )
    run.add_argument("--limit", type=_positive_int, metavar="N", help="run only the first N jobs")
    run.add_argument(
        "--max-failures", type=_non_negative_int, metavar="N", help="failed jobs tolerated (exit 0)"
    )
    run.add_argument(
        "--retry-uncertain", action="store_true", help="submit again jobs whose submit may have landed"
    )
    run.add_argument("--fresh", action="store_true", help="start over: set the old ledger aside")
    run.add_argument(
        "--rebuild-ledger",
        action="store_true",
        help="the ledger was lost: rebuild it from results.jsonl (generation ids are polled, not resent)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    scale = run.add_argument_group("scaling out (see README: Scaling out)")
    scale.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help=(
            "local: one process, with two helpers checking videos in a run of 50 jobs or more "
            "(default); ray: shards of the job table on a Ray cluster"
        ),
    )
    scale.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="Ray cluster to join: its head HOST:6379 (ray start --head) or auto (default: start one here)",
    )
    scale.add_argument(
        "--shards", type=_positive_int, metavar="N", help="shards of the job table (default: one per CPU)"
    )
    run.set_defaults(handler=cmd_run)

    status = _command(
        commands,
        "status",
        "show the state of a run, finished or still going, from its output folder",
        "Example:\n  vidpipe status outputs/ab-seed-sweep",
    )
    status.add_argument("out_dir", type=_location, metavar="OUTPUT_DIR", help=OUTPUT_HELP)
    status.add_argument("--ledger-dir", type=Path, metavar="DIR", help=LEDGER_DIR_HELP)
    status.add_argument("--json", action="store_true", help="print the state as JSON")
    status.set_defaults(handler=cmd_status)

    reconcile = _command(
        commands,
        "reconcile",
        "settle a run's maybe-sent submits from the service's usage logs, and check its billing",
        "Each uncertain job (its submit sent, the answer lost) is looked up by its client request\n"
        "id in GET /v2/logs: found, the next run polls its generation; never arrived (no row past\n"
        "the grace period), the next run submits it. --billing lists every difference between the\n"
        "ledger and the logs' cost per generation.\n\n"
        "Exit codes: 0 nothing left to settle (and no billing difference; also a run on the\n"
        "embedded sandbox, free, whose logs ended with it), 1 some jobs still uncertain or the\n"
        "billing differs, 2 bad input (no ledger, no key, or --base-url needed), 3 the key or its\n"
        "logs refused (401/403/404).\n\n"
        "Example:\n  AIMLAPI_KEY=... vidpipe reconcile outputs/ab-seed-sweep --billing",
    )
    reconcile.add_argument("out_dir", type=Path, metavar="OUTPUT_DIR", help="a run's output folder")
    reconcile.add_argument("--billing", action="store_true", help="compare the ledger's costs with the logs'")
    reconcile.add_argument(
        "--base-url",
        metavar="URL",
        help="API base URL (default: the run's, if on this machine or the service's own; else required)",
    )
    reconcile.add_argument(
        "--grace",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="how long after a submit its absence from the logs means it never arrived (run.settle_grace)",
    )
    reconcile.set_defaults(handler=cmd_reconcile)

    export = _command(
        commands,
        "export",
        "write a dataset folder: the completed videos and a metadata.jsonl",
        "The folder follows the video/image-folder convention that dataset loaders read: each\n"
        "line of metadata.jsonl has file_name and every parameter of that video. --to must be a\n"
        "new or empty folder, or an earlier export of the same --format (it is brought up to date).\n\n"
        "Example:\n  vidpipe export outputs/ab-seed-sweep --to datasets/ab-seed-sweep",
    )
    export.add_argument("out_dir", type=_location, metavar="OUTPUT_DIR", help=OUTPUT_HELP)
    export.add_argument(
        "--to", type=_location, required=True, metavar="DIR", help="the dataset folder (or URL) to write"
    )
    export.add_argument("--ledger-dir", type=Path, metavar="DIR", help=LEDGER_DIR_HELP)
    export.add_argument(
        "--include-failed-qc",
        action="store_true",
        help="export the videos that failed their automatic checks too (left out by default)",
    )
    export.add_argument(
        "--format",
        choices=("videofolder", "webdataset"),
        default="videofolder",
        help="videofolder: the files beside metadata.jsonl (default); webdataset: tar shards",
    )
    export.add_argument(
        "--shard-size",
        type=_positive_int,
        default=1000,
        metavar="N",
        help="samples per webdataset shard (default %(default)s)",
    )
    export.set_defaults(handler=cmd_export)

    qc = _command(
        commands,
        "qc",
        "check every completed video again: decodes, duration, size, not black or frozen, audio",
        "Rechecks the videos on disk (or in the run's store), records passed/failed in the ledger\n"
        "and the results tables (columns qc, qc_problems), and prints one line per failed video.\n"
        "Exits 0 when it ran, whatever it found.\n\n"
        "Example:\n  vidpipe qc outputs/ab-seed-sweep",
    )
    qc.add_argument("out_dir", type=_location, metavar="OUTPUT_DIR", help=OUTPUT_HELP)
    qc.add_argument("--ledger-dir", type=Path, metavar="DIR", help=LEDGER_DIR_HELP)
    qc.set_defaults(handler=cmd_qc)

    report = _command(
        commands,
        "report",
        "write report.html: every video of a run side by side, to compare a sweep",
        "Rows and columns are two fields; the other swept fields become filters. The page is\n"
        "self-contained and opens from disk, offline.\n\n"
        "Example:\n  vidpipe report outputs/ab-seed-sweep --rows seed --cols ratio",
    )
    report.add_argument("out_dir", type=_location, metavar="OUTPUT_DIR", help=OUTPUT_HELP)
    report.add_argument("--ledger-dir", type=Path, metavar="DIR", help=LEDGER_DIR_HELP)
    report.add_argument("--rows", metavar="FIELD", help="field for the rows (default: prompt)")
    report.add_argument(
        "--cols", metavar="FIELD", help="field for the columns (default: the most swept field)"
    )
    report.set_defaults(handler=cmd_report)

    votes = _command(
        commands,
        "votes",
        "votes from report.html's compare mode, stars and flags: import reviewers' files",
        "Example:\n  vidpipe votes import outputs/ab-seed-sweep votes-ann.jsonl votes-bo.jsonl",
    )
    votes_commands = votes.add_subparsers(dest="votes_command", metavar="COMMAND", required=True)
    votes_import = _command(
        votes_commands,
        "import",
        "merge reviewers' votes files (exported from report.html) into OUTPUT_DIR/votes.jsonl",
        "The same vote twice (same reviewer, same two jobs) counts once: the latest one. Every\n"
        "problem of every file is listed (file:line: what is wrong), and then nothing is imported.\n\n"
        "Example:\n  vidpipe votes import outputs/ab-seed-sweep votes-ann.jsonl votes-bo.jsonl",
    )
    votes_import.add_argument("out_dir", type=Path, metavar="OUTPUT_DIR", help="a run's output folder")
    votes_import.add_argument("files", nargs="+", type=Path, metavar="FILE", help="votes files (JSON Lines)")
    votes_import.add_argument("--json", action="store_true", help="print the counts as JSON")
    votes_import.set_defaults(handler=cmd_votes_import)

    rank = _command(
        commands,
        "rank",
        "rank the values of a field from the run's votes, with bootstrap intervals",
        "Bradley-Terry scores from the comparisons (stars and flags count too), win rates and\n"
        "vote counts; writes OUTPUT_DIR/rankings.json, which `vidpipe report` draws.\n\n"
        "Example:\n  vidpipe rank outputs/ab-seed-sweep --by seed\n"
        "  vidpipe rank outputs/model-ab --by model --json   # manifests/model-ab.yaml",
    )
    rank.add_argument("out_dir", type=Path, metavar="OUTPUT_DIR", help="a run's output folder")
    rank.add_argument("--by", required=True, metavar="FIELD", help="the field to rank: seed, model, ...")
    rank.add_argument("--json", action="store_true", help="print the ranking as JSON")
    rank.set_defaults(handler=cmd_rank)

    models = _command(
        commands,
        "models",
        "list the service's video models: durations, ratios, resolutions, seed, last frame",
        "From the catalogue shipped with vidpipe (built from the service's public docs), offline;\n"
        "prices and deprecations from the service's last answer kept on disk (--refresh asks it).\n\n"
        "Example:\n  vidpipe models veo\n  vidpipe models kling v3 --json\n  vidpipe models --refresh",
    )
    models.add_argument(
        "filter", nargs="*", metavar="FILTER", help="part of an id or alias; several words narrow further"
    )
    models.add_argument("--json", action="store_true", help="print the models as a JSON array")
    models.add_argument(
        "--refresh", action="store_true", help="ask the service for prices and deprecations (and keep them)"
    )
    models.set_defaults(handler=cmd_models)

    sandbox = commands.add_parser(
        "sandbox",
        help="serve the local stand-in for the API (for curl, scripts, other tools)",
        description="Serve the local stand-in for the AI/ML API video endpoints.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if sandbox_arguments:
        from .sandbox.cli import add_arguments as add_sandbox_arguments
        from .sandbox.cli import run as run_sandbox

        add_sandbox_arguments(sandbox)
        sandbox.set_defaults(handler=run_sandbox)
    return parser


def _command(commands, name: str, summary: str, epilog: str) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _location(text: str) -> Path | str:
    """A folder, or a URL such as s3://bucket/prefix (kept as text: a Path would merge its //)."""
    from .read.settings import is_url

    return text if is_url(text) else Path(text)


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected 1 or more")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; expected 0 or more")
    return value


def cmd_validate(args: argparse.Namespace) -> int:
    from .read.jobs import load_batch
    from .read.manifest import display_path

    failed = 0
    for path in args.manifests:
        try:
            batch = load_batch(path)
        except VidpipeError as error:
            failed += 1
            report_error(error)
            continue
        for note in batch.notes:
            print(f"warning: {note}", file=sys.stderr)
        count = batch.job_count
        print(f"ok: {display_path(path)} ({count:,} {'job' if count == 1 else 'jobs'})")
    return EXIT_INPUT if failed else EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    from .read.jobs import load_batch
    from .read.manifest import display_path
    from .read.settings import output_folder
    from .run.ledger import statuses_in
    from .run.model_check import check_models, plan_base_url
    from .run.plan import describe, make_plan
    from .write.columns import OUTPUT_COLUMNS, Column
    from .write.table import write_table

    batch = load_batch(args.manifest)
    settings = batch.settings.with_overrides(concurrency=args.concurrency, budget=args.budget)
    folder = output_folder(settings, args.output_dir)
    earlier = statuses_in(folder)
    if earlier is None and args.output_dir is not None:
        print(f"note: no earlier run in {display_path(folder)}; every job is counted", file=sys.stderr)
    embedded = settings.sandbox if plan_base_url(settings.provider) is None else None
    check = check_models(plan_base_url(settings.provider), batch.table["model"].unique(), embedded)
    check.refuse_withdrawn(display_path(args.manifest))
    if check.renames:  # a superseded model's jobs, checked against its replacement's schema
        batch = load_batch(args.manifest, renames=check.renames)
    table = check.resolved(batch.table)
    plan = make_plan(table, settings, batch.swept_fields, earlier, display_path(folder), check.prices)
    if args.out:  # typed as in results: tags a list in JSONL and Parquet, `a|b` in CSV
        kinds = {column.name: column.kind for column in OUTPUT_COLUMNS}
        write_table(table, args.out, tuple(Column(name, kinds.get(name, "string")) for name in table.columns))
    if args.json:
        print(json.dumps({**plan.as_dict(), **check.as_dict()}, indent=2))
    else:
        for note in batch.notes:
            print(f"warning: {note}", file=sys.stderr)
        for warning in check.warnings:
            print(warning, file=sys.stderr)
        print("\n".join([*describe(plan), *check.lines]))
        if args.out:
            print(f"Job table: {display_path(args.out)}")
    if plan.budget_refusal:
        raise InputError(plan.budget_refusal)
    if plan.over_budget:
        raise BudgetError(
            f"the plan needs {plan.credits:,} credits, over the budget of {plan.budget:,} "
            "(run.budget or --budget)"
        )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from .read.manifest import display_path
    from .run.runner import RunRequest, run
    from .write.summary import describe as describe_run

    summary = run(
        RunRequest(
            manifest=args.manifest,
            provider=args.provider,
            base_url=args.base_url,
            out=args.out,
            concurrency=args.concurrency,
            budget=args.budget,
            limit=args.limit,
            max_failures=args.max_failures,
            fresh=args.fresh,
            rebuild_ledger=args.rebuild_ledger,
            retry_uncertain=args.retry_uncertain,
            endpoint=args.endpoint,
            quiet=args.quiet or args.json,
            engine=args.engine,
            ledger_dir=args.ledger_dir,
            ray_address=args.ray_address,
            shards=args.shards,
        )
    )
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    elif not args.quiet:
        print("\n".join(describe_run(summary)))
    if summary.exit_code in (EXIT_ABORTED, EXIT_ENVIRONMENT) and summary.stop_reason:
        print(f"error: {summary.stop_reason}", file=sys.stderr)
    if on_github():
        # With --json, stdout is for the JSON alone; the runner reads workflow commands on stderr too.
        stream = sys.stderr if args.json else sys.stdout
        annotate_failures(summary.failures, stream)
        if summary.exit_code in (EXIT_ABORTED, EXIT_ENVIRONMENT) and summary.stop_reason:
            print(annotation(summary.stop_reason, display_path(args.manifest)), file=stream)
        append_step_summary(step_summary(summary.as_dict(), summary.planned_credits))
    return summary.exit_code


def cmd_status(args: argparse.Namespace) -> int:
    from .write.status import describe as describe_status
    from .write.status import read_status
    from .write.storage import locate_run

    folder, store = locate_run(args.out_dir, args.ledger_dir)
    status = read_status(folder)
    status.store = store.describe() if store else None
    if args.json:
        print(json.dumps(status.as_dict(), indent=2))
    else:
        print("\n".join(describe_status(status)))
    return EXIT_OK


def cmd_reconcile(args: argparse.Namespace) -> int:
    from .run.reconcile import reconcile

    found = reconcile(args.out_dir, billing=args.billing, base_url=args.base_url, grace_s=args.grace)
    print("\n".join(found.lines))
    return found.exit_code


def cmd_export(args: argparse.Namespace) -> int:
    from .read.manifest import display_path
    from .write.export import ExportOptions, export_dataset
    from .write.storage import Store, dataset_target, locate_run

    folder, store = locate_run(args.out_dir, args.ledger_dir)
    target = dataset_target(args.to, store)
    options = ExportOptions(args.include_failed_qc, args.format, args.shard_size)
    exported = export_dataset(folder, target, store, options)
    shown = target.describe() if isinstance(target, Store) else display_path(target)
    if args.format == "webdataset":
        print(f"Exported {exported.videos} videos to {shown}/ in {exported.shards} webdataset shards")
    else:
        print(f"Exported {exported.videos} videos to {shown}/ with metadata.jsonl")
    if exported.left_out:
        print(f"Left out {exported.left_out} that failed their checks (--include-failed-qc exports them)")
    return EXIT_OK


def cmd_qc(args: argparse.Namespace) -> int:
    from .write.recheck import recheck
    from .write.storage import locate_run

    folder, store = locate_run(args.out_dir, args.ledger_dir)
    found = recheck(folder, store)
    for job_id in found.failed:
        print(f"{found.paths[job_id] or job_id}: {'; '.join(found.checks[job_id].problems)}")
    print(f"Checked {len(found.checks)} videos: {len(found.failed)} failed")
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from .read.manifest import display_path
    from .write.report import write_report
    from .write.storage import locate_run

    folder, store = locate_run(args.out_dir, args.ledger_dir)
    path = write_report(folder, rows=args.rows, cols=args.cols, store=store)
    print(f"Report: {store.join(path.name) if store else display_path(path)}")
    return EXIT_OK


def cmd_votes_import(args: argparse.Namespace) -> int:
    from .read.manifest import display_path
    from .write.votes import VOTES_FILE, import_votes, read_job_table

    known = frozenset(read_job_table(args.out_dir)["job_id"].astype(str))
    merged = import_votes(args.out_dir, args.files, known)
    counts = merged.as_dict()
    if args.json:
        print(json.dumps(counts, indent=2))
    else:
        print(
            f"Imported {counts['added']:,} new, {counts['replaced']:,} changed, "
            f"{counts['already_there']:,} already there: {display_path(args.out_dir / VOTES_FILE)} holds "
            f"{counts['comparisons']:,} comparisons and {counts['marks']:,} marks"
        )
    return EXIT_OK


def cmd_rank(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from .read.manifest import display_path
    from .write.ranking import RANKINGS_FILE, describe, rank_output

    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    ranking = rank_output(args.out_dir, args.by, now)
    if args.json:
        print(json.dumps(ranking, indent=2, ensure_ascii=False))
    else:
        print("\n".join(describe(ranking)))
        print(
            f"Rankings: {display_path(args.out_dir / RANKINGS_FILE)} "
            f"(vidpipe report {display_path(args.out_dir)} draws them)"
        )
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from . import catalogue
    from .errors import InputError
    from .models import MODELS
    from .run.model_check import availability
    from .write.models_table import heading, matching, no_match, record, table_lines, with_availability

    entries = catalogue.load_catalogue()
    every = [record(entries["models"][model_id], MODELS) for model_id in catalogue.model_ids()]
    shown = matching(every, args.filter)
    if not shown:
        raise InputError(no_match(args.filter, len(every), catalogue.closest))
    book, feed, notes = availability(refresh=args.refresh)
    if book is not None or feed is not None:
        shown = [with_availability(item, book, feed or {}) for item in shown]
    for note in notes:
        print(note, file=sys.stderr)
    if args.json:
        print(json.dumps(shown, indent=2), flush=True)
    else:
        lines = [heading(len(shown), len(every), entries["source"]), *table_lines(shown)]
        lines.append(
            f"Prices: {book.source}." if book else "Prices: none read yet; --refresh asks the service."
        )
        print("\n".join(lines), flush=True)
    return EXIT_OK


def report_error(error: VidpipeError) -> None:
    if isinstance(error, ManifestError):
        for problem in error.problems:
            print(f"error: {problem}", file=sys.stderr)
        if on_github():
            annotate_problems(error.problems)
    else:
        print(f"error: {one_line(str(error))}", file=sys.stderr)
        if on_github():
            print(annotation(one_line(str(error))))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # A pre-commit hook runs `validate` on every commit: it should not wait for the sandbox.
    parser = build_parser(sandbox_arguments=argv[:1] == ["sandbox"])
    args = parser.parse_args(argv)
    try:
        code = args.handler(args)
        sys.stdout.flush()  # here, so a reader that stopped early is caught below
        return code
    except VidpipeError as error:
        report_error(error)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader stopped early (`vidpipe models | head`): not an error. As the Python docs
        # advise, stdout goes to devnull, or the flush at exit fails again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as error:
        if error.errno not in REFUSALS:
            raise
        # Where no step expected it: still the machine's refusal, one line with its path.
        where = f"{error.filename}: " if error.filename else ""
        said = one_line(where + (error.strerror or str(error)))
        print(f"error: {said} (the system refused; free some space or make it writable)", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except Exception as error:  # a bug: one line for the user, the traceback on request
        if os.environ.get("VIDPIPE_DEBUG"):
            traceback.print_exc()
        print(
            f"internal error: {type(error).__name__}: {error} "
            "(set VIDPIPE_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
