"""Votes files: each line checked with its position, and merged so the same vote counts once (pure)."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import ManifestError
from pipeline.write.votes import Comparison, Mark, as_line, import_votes, merge, parse_files, parse_line

JOBS = frozenset({"j1", "j2", "j3"})


def line(**fields) -> str:
    return json.dumps({"at": "2026-12-01T15:20:03Z"} | fields)


def test_a_comparison_and_a_mark_parse_and_print_back():
    """The README's example lines: a comparison (reviewer optional) and a star."""
    vote = parse_line(line(a="j1", b="j2", outcome="a", reviewer="ann"), JOBS)
    assert vote == Comparison("j1", "j2", "a", "ann", "2026-12-01T15:20:03Z")
    assert parse_line(as_line(vote), JOBS) == vote
    mark = parse_line(line(job="j3", mark="star"), JOBS)
    assert mark == Mark("j3", "star", "", "2026-12-01T15:20:03Z") and "reviewer" not in as_line(mark)


def test_every_bad_line_of_every_file_is_reported_with_its_place():
    """Unknown job ids, bad outcomes, times, keys and JSON: all found in one pass, file:line each."""
    bad = "\n".join(
        [
            line(a="j1", b="nope", outcome="a"),
            "{not json",
            line(a="j1", b="j2", outcome="left"),
            "",
            line(job="j1", mark="star", at="yesterday"),
            line(a="j1", b="j1", outcome="tie"),
            line(a="j1", b="j2", outcome="a", colour="red"),
            json.dumps([1, 2]),
            line(a="j1", b="j2", outcome="b"),
        ]
    )
    votes, problems = parse_files([("ann.jsonl", bad), ("bo.jsonl", line(job="x9", mark="bad"))], JOBS)
    assert len(votes) == 1
    assert [str(p) for p in problems] == [
        "ann.jsonl:1: unknown job id 'nope': not a job of this run",
        "ann.jsonl:2: not JSON (Expecting property name enclosed in double quotes)",
        "ann.jsonl:3: outcome 'left': expected one of a, b, tie",
        "ann.jsonl:5: at 'yesterday': expected an ISO 8601 time with its zone, like 2026-12-01T15:20:03Z",
        "ann.jsonl:6: a and b are the same job; a vote compares two",
        "ann.jsonl:7: unknown colour; expected the keys a, at, b, outcome, reviewer",
        "ann.jsonl:8: expected a JSON object with a, b and outcome, or job and mark",
        "bo.jsonl:1: unknown job id 'x9': not a job of this run",
    ]


def test_the_same_vote_twice_counts_once_in_either_order_and_the_latest_wins():
    """Same reviewer and same two jobs (either order) is one vote; a later one replaces it;
    another reviewer's vote on the same pair is a vote of its own."""
    first = Comparison("j1", "j2", "a", "ann", "2026-12-01T10:00:00Z")
    flipped = Comparison("j2", "j1", "b", "ann", "2026-12-01T10:00:00Z")
    changed = Comparison("j2", "j1", "a", "ann", "2026-12-01T11:00:00+00:00")
    other = Comparison("j1", "j2", "b", "bo", "2026-12-01T09:00:00Z")
    merged = merge([first], [flipped, other])
    assert (merged.added, merged.already, merged.replaced) == (1, 1, 0) and len(merged.votes) == 2
    merged = merge(merged.votes, [changed, first])
    assert (merged.added, merged.replaced, merged.already) == (0, 1, 1)
    assert merged.votes == [other, Comparison("j1", "j2", "b", "ann", "2026-12-01T11:00:00+00:00")]
    marks = merge(
        [], [Mark("j1", "star", "", "2026-12-01T10:00:00Z"), Mark("j1", "none", "", "2026-12-01T12:00:00Z")]
    )
    assert marks.votes == [Mark("j1", "none", "", "2026-12-01T12:00:00Z")]


def test_merging_is_the_same_in_any_order():
    """Equal times that disagree still merge to one answer, whichever file came first."""
    one = Comparison("j1", "j2", "a", "ann", "2026-12-01T10:00:00Z")
    two = Comparison("j1", "j2", "tie", "ann", "2026-12-01T10:00:00Z")
    assert merge([], [one, two]).votes == merge([], [two, one]).votes


def test_import_writes_nothing_when_any_file_is_wrong(tmp_path):
    """A bad line anywhere: every problem is raised together and votes.jsonl is left as it was."""
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text(line(a="j1", b="j2", outcome="a") + "\n", encoding="utf-8")
    bad.write_text(line(a="j1", b="j7", outcome="a") + "\n", encoding="utf-8")
    assert import_votes(tmp_path, [good], JOBS).as_dict()["comparisons"] == 1
    before = (tmp_path / "votes.jsonl").read_text(encoding="utf-8")
    with pytest.raises(ManifestError) as raised:
        import_votes(tmp_path, [good, bad, tmp_path / "absent.jsonl"], JOBS)
    assert sorted(p.where for p in raised.value.problems) == sorted(
        [f"{bad}:1", str(tmp_path / "absent.jsonl")]
    )
    assert (tmp_path / "votes.jsonl").read_text(encoding="utf-8") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "good.jsonl", "votes.jsonl"]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[" * 9_000, "not JSON (nested too deeply)"),
        ('{"a": "' + "x" * 20_000 + '"}', "a line of 20,009 characters"),
    ],
)
def test_a_deeply_nested_or_huge_line_is_a_problem_of_that_line(text, said):
    votes, problems = parse_files([("v.jsonl", text)], {"j1"})
    assert votes == [] and len(problems) == 1 and said in str(problems[0])
