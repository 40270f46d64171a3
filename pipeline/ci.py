"""Output for CI: GitHub Actions annotations and the job's Markdown step summary.

With GITHUB_ACTIONS=true, validation problems and failed jobs are also printed as workflow
commands (`::error file=...,line=...::message`), which GitHub shows on the manifest's line in
the pull request, and the run's figures are appended to the file GITHUB_STEP_SUMMARY names.
Every message here has already been scrubbed of the API key where it came from a server.
"""

from __future__ import annotations

import html
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from .errors import Problem, one_line


def on_github() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def on_ci() -> bool:
    return bool(os.environ.get("CI")) or on_github()


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(message: str, where: str | None = None, level: str = "error") -> str:
    """One workflow command; `where` is "file:line" (or a bare file)."""
    properties = ""
    if where:
        file, _, line = where.rpartition(":")
        if file and line.isdigit():
            properties = f" file={_escape_property(file)},line={line}"
        else:
            properties = f" file={_escape_property(where)}"
    return f"::{level}{properties}::{_escape_data(message)}"


def annotate_problems(problems: Iterable[Problem], stream: TextIO | None = None) -> None:
    for problem in problems:
        message = f"{problem.field}: {problem.message}" if problem.field else problem.message
        print(annotation(message, problem.where), file=stream or sys.stdout)


def annotate_failures(failures: Iterable[Mapping[str, Any]], stream: TextIO | None = None) -> None:
    for failure in failures:
        message = f"job {failure['job_id']} {failure['status']}: {failure['error']}"
        print(annotation(message, failure.get("source")), file=stream or sys.stdout)


def step_summary(summary: Mapping[str, Any], planned_credits: float | None = None) -> str:
    """The run as Markdown for GITHUB_STEP_SUMMARY."""
    credits = summary["credits_spent"]
    lines = [
        f"## vidpipe: {_cell(summary['name'])}",
        "",
        "| jobs | completed | failed | uncertain | done before | credits spent | wall time |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {summary['jobs']:,} | {summary['completed']:,} | {summary['failed']:,} "
        f"| {summary['uncertain']:,} | {summary['already_done']:,} "
        f"| {credits:,.0f} (${credits / 2_000_000:,.2f}) "
        f"| {summary['wall_seconds']:.0f} s |",
        "",
    ]
    if planned_credits is not None:
        lines.append(f"Planned before the run: {planned_credits:,.0f} credits.")
    lines.append(f"Provider: {summary['provider']}; exit code {summary['exit_code']}.")
    if summary.get("report"):
        lines.append(f"Report: `{summary['report']}` (in the output folder, or the build's artifacts).")
    failures = summary.get("failures") or []
    if failures:
        lines += ["", "### Not completed", "", "| job | status | reason |", "| --- | --- | --- |"]
        for failure in failures[:50]:
            lines.append(f"| `{failure['job_id']}` | {failure['status']} | {_cell(failure['error'])} |")
        if len(failures) > 50:
            lines.append(f"| ... | | {len(failures) - 50} more in results.csv |")
    if summary.get("stop_reason"):
        lines += ["", f"Stopped: {_cell(summary['stop_reason'])}"]
    return "\n".join(lines) + "\n"


def _cell(text: Any) -> str:
    """Server text made inert in Markdown: one line, no HTML, no table breaks, no images."""
    flat = one_line(str(text or "")).replace("\\r", " ").replace("\\n", " ")
    return html.escape(flat).replace("|", "\\|").replace("![", "!\\[")


def append_step_summary(text: str) -> Path | None:
    """Append to GITHUB_STEP_SUMMARY; a summary that cannot be written is a warning, not a failure."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        print(
            f"warning: cannot write the step summary to {target}: {error.strerror or error}", file=sys.stderr
        )
        return None
    return path
