"""Rankings from votes: Bradley-Terry fit, what counts, bootstrap intervals, the table (pure)."""

from __future__ import annotations

import math

import numpy as np

from pipeline.write.ranking import PRIOR, describe, drawable_rankings, fit, gather, is_ranking, rank
from pipeline.write.votes import Comparison, Mark

AT = "2026-12-01T15:20:03Z"
# Six jobs of one prompt, seeds 1..3, two ratios: a group is (prompt, ratio).
JOBS = {f"{ratio}-{seed}": (str(seed), ("kite", ratio)) for seed in (1, 2, 3) for ratio in ("wide", "tall")}


def versus(winner: str, loser: str, reviewer: str = "ann", outcome: str = "a") -> Comparison:
    return Comparison(winner, loser, outcome, reviewer, AT)


def test_two_values_score_as_the_closed_form():
    """Two values: the strengths' ratio is the ratio of wins, with the PRIOR tie added."""
    votes = [versus("wide-1", "wide-2", str(n)) for n in range(3)] + [versus("tall-2", "tall-1")]
    ranking = rank(gather(votes, JOBS), "seed", samples=50)
    first, second = ranking["ranking"]
    expected = math.log((3 + PRIOR / 2) / (1 + PRIOR / 2))
    assert (first["value"], second["value"]) == ("1", "2")
    assert math.isclose(first["score"] - second["score"], expected, abs_tol=1e-3)
    assert math.isclose(first["score"] + second["score"], 0, abs_tol=1e-3)  # centred
    assert (first["wins"], first["losses"], first["comparisons"], first["win_rate"]) == (3, 1, 4, 0.75)


def test_fit_recovers_known_strengths_from_many_votes():
    """Votes drawn from known strengths: the fitted scores come back within a few hundredths."""
    truth = np.array([1.0, 0.3, -0.2, -1.1])
    rng = np.random.default_rng(7)
    first, second = rng.integers(0, 4, 20000), rng.integers(0, 4, 20000)
    first, second = first[first != second], second[first != second]
    first_wins = rng.random(len(first)) < 1 / (1 + np.exp(truth[second] - truth[first]))
    counts, wins = np.zeros((1, 4, 4)), np.zeros((1, 4))
    np.add.at(counts[0], (first, second), 1)
    np.add.at(counts[0], (second, first), 1)
    np.add.at(wins[0], np.where(first_wins, first, second), 1)
    fitted = fit(counts, wins)[0]
    assert np.allclose(fitted, truth - truth.mean(), atol=0.05)


def test_equal_values_and_cleared_marks_say_nothing_and_stars_weigh_one_vote():
    """A comparison of two jobs with the same seed is ignored; a star is one win spread over
    the other values of its group; `none` counts for nothing."""
    votes = [
        Comparison("wide-1", "tall-1", "a", "ann", AT),
        Mark("wide-3", "star", "ann", AT),
        Mark("tall-2", "none", "ann", AT),
    ]
    evidence = gather(votes, JOBS)
    assert (evidence.ignored, evidence.comparisons, evidence.marks) == (1, 0, 1)
    assert evidence.values == ["1", "2", "3"] and evidence.weight == [0.5, 0.5]
    ranking = rank(evidence, "seed", samples=50)
    assert ranking["ranking"][0]["value"] == "3" and ranking["ranking"][0]["stars"] == 1
    flagged = rank(gather([Mark("wide-3", "bad", "bo", AT)], JOBS), "seed", samples=50)
    assert flagged["ranking"][-1]["value"] == "3" and flagged["ranking"][-1]["flags"] == 1


def test_bootstrap_is_reproducible_and_separates_only_with_enough_votes():
    """Same votes, same intervals; a few votes leave neighbours unseparated, many separate them."""
    few = [versus("wide-1", "wide-2"), versus("tall-2", "tall-3"), versus("wide-1", "wide-3", "bo")]
    one = rank(gather(few, JOBS), "seed", samples=200)
    assert one == rank(gather(few, JOBS), "seed", samples=200)
    assert one["unseparated"] and [row["value"] for row in one["ranking"]] == ["1", "2", "3"]
    for row in one["ranking"]:
        assert row["low"] <= row["score"] <= row["high"]
    many = [
        versus(f"wide-{w}", f"wide-{lose}", str(n)) for n in range(30) for w, lose in ((1, 2), (2, 3), (1, 3))
    ]
    clear = rank(gather(many, JOBS), "seed", samples=200)
    assert clear["unseparated"] == [] and clear["ranking"][0]["low"] > clear["ranking"][1]["high"]


def test_the_table_says_what_the_votes_cannot_separate():
    """describe: a header, one row per value best first, and a line per unseparated pair."""
    ranking = rank(
        gather([versus("wide-1", "wide-2"), versus("tall-1", "tall-2", "bo", "tie")], JOBS), "seed", 100
    )
    lines = describe(ranking)
    assert lines[0] == "Ranking by seed: 2 comparisons, 0 stars and flags"
    assert lines[2].split() == [
        "rank",
        "seed",
        "score",
        "interval",
        "wins",
        "losses",
        "ties",
        "win",
        "rate",
        "stars",
        "flags",
    ]
    assert lines[3].split()[:2] == ["1", "1"] and lines[3].split()[-4:] == ["1", "75%", "0", "0"]
    assert (
        lines[-1] == "too few votes to separate seed 1 (ranked higher) from seed 2: their intervals overlap"
    )
    assert describe(rank(gather([], JOBS), "seed"))[-1] == "no votes compare two values of seed yet"


def test_a_comparison_of_jobs_that_differ_in_another_field_too_says_nothing():
    """wide-1 against tall-2 differs in seed and ratio: it counts for neither."""
    votes = [versus("wide-1", "tall-2"), versus("wide-1", "wide-2")]
    evidence = gather(votes, JOBS)
    assert (evidence.ignored, evidence.comparisons) == (1, 1)
    assert rank(evidence, "seed", samples=20)["ranking"][0]["comparisons"] == 1
    only_mixed = gather([versus("wide-1", "tall-2")], JOBS)
    assert (only_mixed.values, only_mixed.ignored) == ([], 1)


def test_models_are_compared_whatever_duration_or_ratio_their_rules_set():
    """One definition of a group: for model, duration and ratio do not split it (per_model)."""
    from pipeline.write.report import group_fields

    assert "duration" in group_fields("seed") and "ratio" in group_fields("seed")
    assert "duration" not in group_fields("model") and "ratio" not in group_fields("model")
    assert "prompt" in group_fields("model") and "seed" in group_fields("model")
    assert group_fields("model", ["seed", "duration", "tags"]) == ["seed"]


def test_counts_are_said_in_the_singular_for_one():
    ranking = rank(gather([versus("wide-1", "wide-2"), Mark("wide-3", "star", "bo", AT)], JOBS), "seed", 20)
    assert describe(ranking)[0] == "Ranking by seed: 1 comparison, 1 star or flag"
    ignored = rank(gather([versus("wide-1", "tall-1"), versus("wide-1", "wide-2")], JOBS), "seed", 20)
    assert describe(ignored)[0].endswith("(1 vote says nothing about seed)")


def test_only_rankings_of_rank_s_shape_are_drawn(capsys, tmp_path):
    good = rank(gather([versus("wide-1", "wide-2")], JOBS), "seed", samples=20)
    assert is_ranking(good)
    bad = {
        "model": {"ranking": [{"value": "a"}]},
        "prompt": "x",
        "ratio": {"ranking": [{**good["ranking"][0], "score": None}]},
        "duration": {**good, "unseparated": [["a"]]},
    }
    assert not any(is_ranking(ranking) for ranking in bad.values())
    assert drawable_rankings({"seed": good, **bad}, tmp_path / "rankings.json") == {"seed": good}
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1 and said[0].startswith("warning: ") and "model, prompt, ratio, duration" in said[0]
