"""Compare mode's pairs: a round-robin per group, interleaved, capped by whole rounds (pure)."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

from pipeline.write.pairing import pair_schedule, round_robin


def test_round_robin_meets_every_pair_once_and_each_member_once_a_round():
    """Circle method: k-1 rounds (k even) or k rounds with a bye (k odd); no repeats."""
    for size in range(2, 10):
        rounds = list(round_robin(list(range(size))))
        assert len(rounds) == (size - 1 if size % 2 == 0 else size)
        met = [frozenset(pair) for pairs in rounds for pair in pairs]
        assert sorted(met, key=sorted) == sorted(map(frozenset, combinations(range(size), 2)), key=sorted)
        for pairs in rounds:
            members = [m for pair in pairs for m in pair]
            assert len(members) == len(set(members))


def test_pairs_stay_in_their_group_and_differ_in_value():
    """Only two videos of one group, with different values of the compared field, are paired."""
    candidates = [("kite", "1"), ("kite", "2"), ("kite", "2"), ("fox", "1"), ("fox", "3"), ("owl", "1")]
    schedule = pair_schedule(candidates, seed="run")
    assert schedule
    for a, b in schedule:
        assert candidates[a][0] == candidates[b][0] and candidates[a][1] != candidates[b][1]
    assert {frozenset(pair) for pair in schedule} == {frozenset(p) for p in [(0, 1), (0, 2), (3, 4)]}
    assert len(schedule) == len({frozenset(pair) for pair in schedule})


def test_every_candidate_is_compared_equally_often_after_any_whole_round():
    """Stopping after round r leaves each candidate in exactly r comparisons (even groups)."""
    candidates = [(prompt, str(seed)) for prompt in "abc" for seed in range(6)]
    schedule = pair_schedule(candidates, seed="x")
    per_round = 3 * 3  # three groups of six: three pairs each a round
    for rounds in range(1, 6):
        counts = Counter(m for pair in schedule[: rounds * per_round] for m in pair)
        assert set(counts.values()) == {rounds} and len(counts) == len(candidates)


def test_schedule_is_reproducible_balanced_left_right_and_capped_by_whole_rounds():
    """The same seed gives the same order; sides are shuffled; a cap keeps whole rounds only."""
    candidates = [(prompt, str(seed)) for prompt in range(20) for seed in range(10)]
    assert pair_schedule(candidates, seed="a") == pair_schedule(candidates, seed="a")
    assert pair_schedule(candidates, seed="a") != pair_schedule(candidates, seed="b")
    full = pair_schedule(candidates, seed="a")
    assert len(full) == 20 * 45
    lower_on_the_left = sum(a < b for a, b in full) / len(full)
    assert 0.4 < lower_on_the_left < 0.6
    capped = pair_schedule(candidates, seed="a", max_pairs=250)
    assert len(capped) == 200 and capped == full[:200]  # 2 rounds of 100; a third would pass 250
    assert len(pair_schedule(candidates, seed="a", max_pairs=1)) == 100  # at least one round
    assert pair_schedule([], seed="a") == [] and pair_schedule([("p", "1")], seed="a") == []
