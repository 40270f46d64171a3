"""Ranking the values of a field from reviewers' votes: Bradley-Terry scores with bootstrap
intervals (pure), and `OUTPUT_DIR/rankings.json` (I/O at the bottom).

Bradley-Terry, not Elo: the votes are a set, not a sequence. Elo's scores depend on the order
votes arrive in and on its K factor; Bradley-Terry fits the one set of strengths that best
explains all votes at once, the same however the files were merged. A value's score is the
log of its strength, centred on the mean of the values ranked: a difference d between two
values means the first wins a comparison with odds e^d.

What counts, for `--by FIELD`:
- a comparison between two jobs of one group (the same request apart from FIELD) whose FIELD
  values differ is a win for one (`a` or `b`) or half a win for each (`tie`); one whose values
  are equal, or whose jobs differ in another field too, says nothing about FIELD (ignored);
- for `--by model`, ratio and duration do not split a group (a model's own rules set them:
  per_model, run.adapt), as in compare mode (report.py's `group_fields`);
- a star on a job is one win for its value, spread evenly over the jobs of its group (the
  same request apart from FIELD) that have another value; a flag (`bad`) is one loss, spread
  the same way. So a star weighs as much as one comparison, whatever the group's size.
The fit adds PRIOR of a tie between every two values ranked (a weak pull towards equal, and
a finite score for a value that never won). The interval is the 2.5th to 97.5th percentile of
the scores refitted on BOOTSTRAP_SAMPLES resamples of the votes (each comparison or mark one
unit, drawn with replacement, from a generator with a fixed seed: the same votes always give
the same intervals). When two neighbours' intervals overlap, the votes cannot tell them apart,
and the ranking says so.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .atomic import replace_atomically
from .votes import Comparison, Mark, Vote

RANKINGS_FILE = "rankings.json"
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 0
INTERVAL = 0.95
PRIOR = 0.5
_MAX_ITERATIONS = 1000
_TOLERANCE = 1e-7


@dataclass
class Evidence:
    """The votes as comparisons between values: unit u holds comparisons (i, j, share of i's
    win, weight), and the raw counts each value shows in the table."""

    values: list[str]
    first: list[int] = field(default_factory=list)
    second: list[int] = field(default_factory=list)
    share: list[float] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    unit: list[int] = field(default_factory=list)
    units: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    ignored: int = 0
    marks: int = 0
    comparisons: int = 0

    def add(self, first: int, second: int, share: float, weight: float) -> None:
        self.first.append(first)
        self.second.append(second)
        self.share.append(share)
        self.weight.append(weight)
        self.unit.append(self.units)


def gather(votes: Iterable[Vote], jobs: Mapping[str, tuple[str, Hashable]]) -> Evidence:
    """The evidence about a field from `votes`; `jobs` maps each completed job to its (value
    of the field, group), the group being the rest of its request."""
    votes = list(votes)
    members: dict[Hashable, list[str]] = {}
    for job, (_, group) in jobs.items():
        members.setdefault(group, []).append(job)
    used = sorted(_values_named(votes, jobs, members))
    evidence = Evidence(values=used, counts={v: dict.fromkeys(_COUNTS, 0) for v in used})
    index = {value: number for number, value in enumerate(used)}
    for vote in votes:
        if isinstance(vote, Comparison):
            _add_comparison(evidence, vote, jobs, index)
        elif vote.mark != "none" and vote.job in jobs:
            _add_mark(evidence, vote, jobs, members, index)
    return evidence


def _values_named(votes: list[Vote], jobs, members) -> set[str]:
    """The values a comparison names, and for a mark its value and the others of its group."""
    named = set()
    for vote in votes:
        if isinstance(vote, Comparison):
            if _comparable(vote, jobs):
                named.update(jobs[job][0] for job in (vote.a, vote.b))
        elif vote.mark != "none" and vote.job in jobs:
            group = {jobs[job][0] for job in members[jobs[vote.job][1]]}
            named.update(group if len(group) > 1 else ())
    return named


_COUNTS = ("wins", "losses", "ties", "comparisons", "stars", "flags")


def _comparable(vote: Comparison, jobs) -> bool:
    """Whether a comparison says something about the field: two jobs of one group (the same
    request apart from the field) with different values of it."""
    if vote.a not in jobs or vote.b not in jobs:
        return False
    (value_a, group_a), (value_b, group_b) = jobs[vote.a], jobs[vote.b]
    return value_a != value_b and group_a == group_b


def _add_comparison(evidence: Evidence, vote: Comparison, jobs, index) -> None:
    if not _comparable(vote, jobs):
        evidence.ignored += 1
        return
    a, b = jobs[vote.a][0], jobs[vote.b][0]
    share = {"a": 1.0, "b": 0.0, "tie": 0.5}[vote.outcome]
    evidence.add(index[a], index[b], share, 1.0)
    evidence.units += 1
    evidence.comparisons += 1
    for value, result in ((a, share), (b, 1.0 - share)):
        counts = evidence.counts[value]
        counts["comparisons"] += 1
        counts["wins" if result == 1.0 else "losses" if result == 0.0 else "ties"] += 1


def _add_mark(evidence: Evidence, vote: Mark, jobs, members, index) -> None:
    value, group = jobs[vote.job]
    others = [jobs[other][0] for other in members[group] if jobs[other][0] != value]
    if not others:
        evidence.ignored += 1
        return
    evidence.counts[value]["stars" if vote.mark == "star" else "flags"] += 1
    for other in others:
        evidence.add(index[value], index[other], 1.0 if vote.mark == "star" else 0.0, 1.0 / len(others))
    evidence.units += 1
    evidence.marks += 1


def fit(counts: np.ndarray, wins: np.ndarray) -> np.ndarray:
    """Bradley-Terry log strengths, centred, for each of a batch of problems.

    `counts[b, i, j]` is the weight of comparisons between i and j, `wins[b, i]` i's share of
    them; PRIOR ties are added between every two values. Hunter's MM iteration (2004):
    p_i <- W_i / sum_j n_ij / (p_i + p_j), which converges for any connected comparisons.
    """
    size = counts.shape[-1]
    counts = counts + PRIOR * (1 - np.eye(size))
    wins = wins + PRIOR * (size - 1) / 2
    strength = np.ones(wins.shape)
    for _ in range(_MAX_ITERATIONS):
        sums = strength[:, :, None] + strength[:, None, :]
        updated = wins / (counts / sums).sum(axis=2)
        updated /= np.exp(np.log(updated).mean(axis=1, keepdims=True))
        change = np.abs(np.log(updated) - np.log(strength)).max()
        strength = updated
        if change < _TOLERANCE:
            break
    return np.log(strength)


def _matrices(evidence: Evidence, multipliers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(counts, wins) for each row of `multipliers` (how often each unit was drawn)."""
    size = len(evidence.values)
    first, second = np.array(evidence.first, dtype=int), np.array(evidence.second, dtype=int)
    weight = multipliers[:, np.array(evidence.unit, dtype=int)] * np.array(evidence.weight)
    share = np.array(evidence.share)
    # One-hot columns: a matrix product adds every comparison into its cells at once.
    cells = np.eye(size * size)[first * size + second] + np.eye(size * size)[second * size + first]
    counts = weight @ cells
    wins = (weight * share) @ np.eye(size)[first] + (weight * (1 - share)) @ np.eye(size)[second]
    return counts.reshape(-1, size, size), wins


def rank(
    evidence: Evidence, by: str, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED
) -> dict[str, Any]:
    """The ranking of `evidence.values`, best first, as rankings.json holds it (see README)."""
    size = len(evidence.values)
    result: dict[str, Any] = {
        "by": by,
        "method": "bradley-terry",
        "comparisons": evidence.comparisons,
        "marks": evidence.marks,
        "ignored": evidence.ignored,
        "bootstrap": {"samples": samples, "seed": seed, "interval": INTERVAL},
        "ranking": [],
        "unseparated": [],
    }
    if size < 2 or not evidence.units:
        return result  # nothing compares two values: no ranking, rather than a made-up one
    scores = fit(*_matrices(evidence, np.ones((1, evidence.units))))[0]
    draws = np.random.default_rng(seed).multinomial(
        evidence.units, [1 / evidence.units] * evidence.units, samples
    )
    resampled = fit(*_matrices(evidence, draws))
    tail = (1 - INTERVAL) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail], axis=0)
    order = sorted(range(size), key=lambda i: (-scores[i], evidence.values[i]))
    result["ranking"] = [_row(evidence, evidence.values[i], scores[i], low[i], high[i]) for i in order]
    for upper, lower in zip(result["ranking"], result["ranking"][1:], strict=False):
        if upper["low"] <= lower["high"]:
            result["unseparated"].append([upper["value"], lower["value"]])
    return result


def _row(evidence: Evidence, value: str, score: float, low: float, high: float) -> dict[str, Any]:
    counts = evidence.counts[value]
    played = counts["comparisons"]
    win_rate = (counts["wins"] + counts["ties"] / 2) / played if played else None
    rounded = {"score": round(float(score), 4), "low": round(float(low), 4), "high": round(float(high), 4)}
    return {"value": value, **rounded, **counts, "win_rate": None if win_rate is None else round(win_rate, 4)}


def counted(count: int, one: str, many: str | None = None) -> str:
    """`1 comparison`, `2 comparisons`: a count with its noun."""
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def vote_counts(ranking: Mapping[str, Any]) -> str:
    """`1 comparison, 2 stars and flags` (or `1 star or flag`), as a ranking's text says them."""
    comparisons = counted(ranking.get("comparisons", 0), "comparison")
    return f"{comparisons}, {counted(ranking.get('marks', 0), 'star or flag', 'stars and flags')}"


def unseparated_note(by: str, upper: Any, lower: Any) -> str:
    """What the votes cannot separate, the two values in rank order (the higher first)."""
    return (
        f"too few votes to separate {by} {upper} (ranked higher) from {by} {lower}: their intervals overlap"
    )


def describe(ranking: Mapping[str, Any]) -> list[str]:
    """The ranking as a table for a terminal, with what the votes cannot separate."""
    by = ranking["by"]
    ignored = ranking["ignored"]
    say = "says" if ignored == 1 else "say"
    lines = [
        f"Ranking by {by}: {vote_counts(ranking)}"
        + (f" ({counted(ignored, 'vote')} {say} nothing about {by})" if ignored else ""),
        f"Bradley-Terry scores; interval: {ranking['bootstrap']['interval']:.0%} of "
        f"{ranking['bootstrap']['samples']:,} bootstrap resamples",
    ]
    if not ranking["ranking"]:
        return [*lines, f"no votes compare two values of {by} yet"]
    rows = [("rank", by, "score", "interval", "wins", "losses", "ties", "win rate", "stars", "flags")]
    for number, row in enumerate(ranking["ranking"], start=1):
        rate = "—" if row["win_rate"] is None else f"{row['win_rate']:.0%}"
        interval = f"[{row['low']:+.2f}, {row['high']:+.2f}]"
        rows.append(
            (str(number), row["value"][:40], f"{row['score']:+.2f}", interval, str(row["wins"]),
             str(row["losses"]), str(row["ties"]), rate, str(row["stars"]), str(row["flags"]))
        )  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.ljust(width) if i == 1 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    for upper, lower in ranking["unseparated"]:
        lines.append(unseparated_note(by, upper, lower))
    return lines


# --- rankings.json (I/O) ---------------------------------------------------------------------


def read_rankings(output_dir: Path) -> dict[str, Any]:
    """The rankings of a run by field ({} when it has none, or the file does not parse)."""
    path = Path(output_dir) / RANKINGS_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    rankings = document.get("rankings") if isinstance(document, dict) else None
    return rankings if isinstance(rankings, dict) else {}


_NUMBERS = ("score", "low", "high")
_TALLIES = ("wins", "losses", "ties", "stars", "flags")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_ranking(ranking: Any) -> bool:
    """Whether `ranking` has the shape `rank` gives (a report or card can draw it): rows with a
    value and numbers where numbers are drawn, and pairs in `unseparated`."""
    if not isinstance(ranking, dict) or not isinstance(ranking.get("ranking"), list):
        return False
    if not all(_number(ranking.get(key, 0)) for key in ("comparisons", "marks", "ignored")):
        return False
    unseparated = ranking.get("unseparated") or []
    if not isinstance(unseparated, list) or not all(isinstance(p, list) and len(p) == 2 for p in unseparated):
        return False
    return all(
        isinstance(row, dict)
        and isinstance(row.get("value"), (str, int, float))
        and all(_number(row.get(key)) for key in _NUMBERS)
        and all(_number(row.get(key)) for key in _TALLIES)
        for row in ranking["ranking"]
    )


def drawable_rankings(rankings: Mapping[str, Any], where: Path) -> dict[str, Any]:
    """The rankings of a run that have `rank`'s shape; one warning line names those skipped."""
    kept = {by: ranking for by, ranking in rankings.items() if is_ranking(ranking)}
    if len(kept) < len(rankings):
        skipped = ", ".join(str(by) for by in rankings if by not in kept)
        print(
            f"warning: {where}: ranking by {skipped} is not as vidpipe rank writes it; not drawn "
            f"(vidpipe rank OUTPUT_DIR --by FIELD writes it again)",
            file=sys.stderr,
        )
    return kept


def write_ranking(output_dir: Path, ranking: Mapping[str, Any], generated_at: str) -> Path:
    """Add (or replace) the ranking by its field in rankings.json, atomically; its path."""
    path = Path(output_dir) / RANKINGS_FILE
    rankings = read_rankings(output_dir) | {ranking["by"]: {**ranking, "generated_at": generated_at}}
    text = json.dumps({"version": 1, "rankings": rankings}, indent=2, ensure_ascii=False) + "\n"
    replace_atomically(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))
    return path


def jobs_by(frame: Any, by: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each completed job of the manifest: (its value of `by`, its group), as `gather` takes them."""
    # report.py draws the rankings: imported here, not at the top, or the two would import each other.
    from .report import group_fields, label

    rows = frame[frame["in_manifest"] & (frame["status"] == "completed")].to_dict("records")
    fields = group_fields(by)
    return {
        label(job["job_id"]): (label(job.get(by)), tuple(label(job.get(f)) for f in fields)) for job in rows
    }


def rank_output(output_dir: Path, by: str, generated_at: str) -> dict[str, Any]:
    """Rank the values of `by` from the run's votes.jsonl and record it in rankings.json."""
    from .report import AXIS_FIELDS
    from .votes import VOTES_FILE, no_votes, read_job_table, read_votes

    if by not in AXIS_FIELDS:
        raise InputError(f"rank: --by {by!r} is not a field; expected one of {', '.join(AXIS_FIELDS)}")
    frame = read_job_table(output_dir)
    if not (Path(output_dir) / VOTES_FILE).is_file():
        raise no_votes(output_dir)
    votes = read_votes(output_dir, frozenset(frame["job_id"].astype(str)))
    ranking = rank(gather(votes, jobs_by(frame, by)), by)
    write_ranking(output_dir, ranking, generated_at)
    return ranking
