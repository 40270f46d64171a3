"""Reviewers' votes: the votes file format, checking each line, merging files (pure), and
`OUTPUT_DIR/votes.jsonl`, which holds a run's merged votes (I/O at the bottom).

A votes file is JSON Lines, as report.html exports it. A line is a comparison or a mark:

    {"a": "<job id>", "b": "<job id>", "outcome": "a" | "b" | "tie", "reviewer": "ann", "at": "<ISO time>"}
    {"job": "<job id>", "mark": "star" | "bad" | "none", "reviewer": "ann", "at": "<ISO time>"}

`reviewer` is optional (no name is the reviewer ""); `mark: none` clears an earlier mark. Two
lines are the same vote when they have the same reviewer and the same two jobs (in either
order, the outcome read accordingly), or for a mark the same reviewer and job: the one with
the latest `at` counts, once. So a file imported twice, or a later export of the same browser
(a snapshot of all its choices), adds nothing twice, and a changed mind replaces the old
vote. Two reviewers who leave their name empty are one reviewer to this rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import InputError, ManifestError, Problem
from ..run.ledger import LEDGER_FILE, Ledger
from .atomic import replace_atomically
from .results import results_frame

VOTES_FILE = "votes.jsonl"
OUTCOMES = ("a", "b", "tie")
MARKS = ("star", "bad", "none")
_FLIPPED = {"a": "b", "b": "a", "tie": "tie"}
_PAIR_KEYS = {"a", "b", "outcome", "reviewer", "at"}
_MARK_KEYS = {"job", "mark", "reviewer", "at"}
MAX_LINE_CHARS = 10_000  # a vote is two job ids, a name and a time: a few hundred characters


@dataclass(frozen=True)
class Comparison:
    """One reviewer's choice between two jobs: `outcome` names the better (a, b) or a tie."""

    a: str
    b: str
    outcome: str
    reviewer: str
    at: str

    def key(self) -> tuple[str, str, str, str]:
        return ("pair", self.reviewer, *sorted((self.a, self.b)))

    def canonical(self) -> Comparison:
        """The same vote with its two jobs in sorted order."""
        if self.a <= self.b:
            return self
        return Comparison(self.b, self.a, _FLIPPED[self.outcome], self.reviewer, self.at)


@dataclass(frozen=True)
class Mark:
    """One reviewer's star (a good one), flag (`bad`) or clearing (`none`) of one job."""

    job: str
    mark: str
    reviewer: str
    at: str

    def key(self) -> tuple[str, str, str]:
        return ("mark", self.reviewer, self.job)


Vote = Comparison | Mark


def parse_line(text: str, known_jobs: set[str] | frozenset[str]) -> Vote:
    """One line of a votes file as a vote; ValueError says what is wrong with it."""
    if len(text) > MAX_LINE_CHARS:
        raise ValueError(f"a line of {len(text):,} characters; a vote is under {MAX_LINE_CHARS:,}")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg})") from None
    except RecursionError:
        raise ValueError("not JSON (nested too deeply)") from None
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object with a, b and outcome, or job and mark")
    keys = _PAIR_KEYS if "outcome" in record or "a" in record else _MARK_KEYS
    required = keys - {"reviewer"}
    missing = sorted(required - record.keys())
    extra = sorted(record.keys() - keys)
    if missing or extra:
        said = [f"missing {', '.join(missing)}"] * bool(missing) + [f"unknown {', '.join(extra)}"] * bool(
            extra
        )
        raise ValueError(f"{'; '.join(said)}; expected the keys {', '.join(sorted(keys))}")
    reviewer = record.get("reviewer") or ""
    if not isinstance(reviewer, str):
        raise ValueError("reviewer: expected a name (text)")
    at = _time(record["at"])
    jobs = [record["a"], record["b"]] if keys is _PAIR_KEYS else [record["job"]]
    for job in jobs:
        if not isinstance(job, str) or job not in known_jobs:
            raise ValueError(f"unknown job id {job!r}: not a job of this run")
    if keys is _MARK_KEYS:
        if record["mark"] not in MARKS:
            raise ValueError(f"mark {record['mark']!r}: expected one of {', '.join(MARKS)}")
        return Mark(record["job"], record["mark"], reviewer, at)
    if record["outcome"] not in OUTCOMES:
        raise ValueError(f"outcome {record['outcome']!r}: expected one of {', '.join(OUTCOMES)}")
    if record["a"] == record["b"]:
        raise ValueError("a and b are the same job; a vote compares two")
    return Comparison(record["a"], record["b"], record["outcome"], reviewer, at)


def _time(value: object) -> str:
    """The time as given, once it parses as an ISO 8601 time with a zone."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return value
    raise ValueError(f"at {value!r}: expected an ISO 8601 time with its zone, like 2026-12-01T15:20:03Z")


def _instant(vote: Vote) -> datetime:
    return datetime.fromisoformat(vote.at.replace("Z", "+00:00")).astimezone(timezone.utc)


def parse_files(
    files: Iterable[tuple[str, str]], known_jobs: set[str] | frozenset[str]
) -> tuple[list[Vote], list[Problem]]:
    """Every vote of every (name, text) file, and every problem found (`name:line: ...`)."""
    votes, problems = [], []
    for name, text in files:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                votes.append(parse_line(line, known_jobs))
            except ValueError as error:
                problems.append(Problem(f"{name}:{number}", "", str(error)))
    return votes, problems


@dataclass
class Merged:
    """The votes after a merge, and what the merge did with the new ones."""

    votes: list[Vote]
    added: int = 0
    replaced: int = 0
    already: int = 0

    def as_dict(self) -> dict[str, int]:
        comparisons = sum(isinstance(vote, Comparison) for vote in self.votes)
        return {
            "comparisons": comparisons,
            "marks": len(self.votes) - comparisons,
            "added": self.added,
            "replaced": self.replaced,
            "already_there": self.already,
        }


def merge(existing: Iterable[Vote], new: Iterable[Vote]) -> Merged:
    """One vote per key (see the module docstring), the latest one, in a stable order."""
    kept: dict[tuple, Vote] = {}
    for vote in existing:
        kept[vote.key()] = _later(kept.get(vote.key()), vote)
    merged = Merged([])
    for vote in new:
        before = kept.get(vote.key())
        after = _later(before, vote)
        if before is None:
            merged.added += 1
        elif after is before or _same(after, before):
            merged.already += 1
        else:
            merged.replaced += 1
        kept[vote.key()] = after
    merged.votes = sorted(kept.values(), key=lambda vote: (_instant(vote), vote.key()))
    return merged


def _same(one: Vote, other: Vote) -> bool:
    if isinstance(one, Comparison) and isinstance(other, Comparison):
        return one.canonical() == other.canonical()
    return one == other


def _later(before: Vote | None, vote: Vote) -> Vote:
    if isinstance(vote, Comparison):
        vote = vote.canonical()
    if before is None:
        return vote
    # Equal times that disagree: the larger line wins, so the merge is the same in any order.
    return max(before, vote, key=lambda v: (_instant(v), json.dumps(asdict(v), sort_keys=True)))


def as_line(vote: Vote) -> str:
    record = {k: v for k, v in asdict(vote).items() if k != "reviewer" or v}
    return json.dumps(record, ensure_ascii=False)


# --- the run's votes file (I/O) --------------------------------------------------------------


def read_votes(output_dir: Path, known_jobs: set[str] | frozenset[str]) -> list[Vote]:
    """The merged votes of a run (none when it has no votes file yet)."""
    path = Path(output_dir) / VOTES_FILE
    if not path.is_file():
        return []
    votes, problems = parse_files([(str(path), path.read_text(encoding="utf-8"))], known_jobs)
    if problems:
        raise ManifestError(problems)
    return votes


def import_votes(output_dir: Path, files: list[Path], known_jobs: set[str] | frozenset[str]) -> Merged:
    """Merge reviewers' `files` into `output_dir/votes.jsonl`, replaced atomically.

    Every problem of every file is reported together (a ManifestError, one `file:line` each),
    and then nothing is written.
    """
    texts, problems = [], []
    for path in files:
        try:
            texts.append((str(path), path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as error:
            problems.append(
                Problem(str(path), "", f"cannot read it: {getattr(error, 'strerror', None) or error}")
            )
    new, found = parse_files(texts, known_jobs)
    problems.extend(found)
    if problems:
        raise ManifestError(problems)
    merged = merge(read_votes(output_dir, known_jobs), new)
    text = "".join(as_line(vote) + "\n" for vote in merged.votes)
    replace_atomically(Path(output_dir) / VOTES_FILE, lambda temporary: temporary.write_text(text, "utf-8"))
    return merged


def read_job_table(output_dir: Path) -> Any:
    """The run's jobs as the output table has them, read from its ledger."""
    ledger_path = Path(output_dir) / LEDGER_FILE
    if not ledger_path.is_file():
        raise InputError(f"{output_dir}: no {LEDGER_FILE} here; expected an output folder of vidpipe run")
    with Ledger(ledger_path, read_only=True) as ledger:
        return results_frame(ledger)


def no_votes(output_dir: Path) -> InputError:
    return InputError(
        f"{output_dir}: no {VOTES_FILE} here; import reviewers' files first: "
        f"vidpipe votes import {output_dir} FILE..."
    )
