"""The poll schedule (pipeline/run/cadence.py) as pure code: waits over elapsed seconds and an rng."""

from __future__ import annotations

import random

from pipeline.run.cadence import MAX_STEADY_POLLS, Cadence, Durations, poll_delays, polls_until


def polls_of(cadence: Cadence, done_at: float, durations: Durations, rng: random.Random) -> list[float]:
    """The seconds after submit of each poll of a generation that finishes at `done_at`."""
    waits, elapsed, polls = cadence.waits(rng), 0.0, []
    while not polls or polls[-1] < done_at:
        elapsed += waits.next(elapsed, durations.typical())
        polls.append(elapsed)
    return polls


def test_before_any_duration_is_known_the_waits_grow_to_the_cap_with_jitter():
    """No generation has finished yet: 1 s, 1.5 s, 2.25 s... up to 15 s, each within +-20%."""
    waits = Cadence(1.0, 15.0).waits(random.Random(5))
    seen = [waits.next(0.0, None) for _ in range(10)]
    for wait, plain in zip(seen, poll_delays(1.0, 15.0), strict=False):
        assert 0.8 * plain <= wait <= 1.2 * plain
    assert max(seen) <= 18.0 and seen[-1] >= 12.0


def test_once_the_typical_duration_is_known_the_end_is_seen_within_a_short_step():
    """After 20 s generations, the next ones are first asked at about 95% of 20 s (never later),
    then every twentieth of it: the end is seen within 1.2 s (a step with its jitter)."""
    cadence, durations, rng = Cadence(1.0, 15.0), Durations([20.0] * 10), random.Random(11)
    for n in range(8):
        done_at = 20.0 + n * 0.3
        polls = polls_of(cadence, done_at, durations, rng)
        assert 0.95 * 0.95 * 20 <= polls[0] <= 0.95 * 20
        assert polls[-1] - done_at <= 1.2 and len(polls) <= 6


def test_polls_around_the_expected_end_do_not_grow_with_the_generation_length():
    """A 10-minute generation gets its first poll near 9.5 minutes, six steps of 30 s, then the
    usual back-off at poll_max_interval: not hundreds of polls at poll_interval."""
    waits = Cadence(1.0, 15.0).waits(random.Random(3))
    first = waits.next(0.0, 600.0)
    elapsed, steady = first, []
    for _ in range(MAX_STEADY_POLLS):
        steady.append(waits.next(elapsed, 600.0))
        elapsed += steady[-1]
    then = waits.next(elapsed, 600.0)
    assert 0.95 * 600 * 0.95 <= first <= 0.95 * 600
    assert all(24 <= wait <= 36 for wait in steady)  # a twentieth of 600 s, +-20%
    assert 12 <= then <= 18  # then poll_max_interval (15 s), not back to 1 s


def test_steady_steps_stop_at_one_and_a_half_times_the_typical_duration():
    """A generation still running at 1.5x the typical time (10 s) is asked at growing waits
    again: from the 0.5 s step up, by 1.5 each time, not at 0.5 s on and on."""
    waits = Cadence(1.0, 15.0).waits(random.Random(4))
    waits.next(0.0, 10.0)
    assert 0.4 <= waits.next(9.6, 10.0) <= 0.6  # a twentieth of 10 s, +-20%
    grown = [waits.next(elapsed, 10.0) for elapsed in (15.1, 15.6, 16.4)]
    assert 0.4 <= grown[0] <= 0.6 and 0.6 <= grown[1] <= 0.9 and 0.9 <= grown[2] <= 1.35


def test_a_first_wait_already_passed_is_skipped():
    """A generation woken late (its first poll came after 95% of the typical time) goes on with
    the short steps instead of waiting again."""
    waits = Cadence(1.0, 15.0).waits(random.Random(2))
    assert waits.next(0.0, None) <= 1.2
    assert 0.4 <= waits.next(30.0, 20.0) <= 1.2  # 20 s / 20, +-20%


def test_a_duration_is_learned_to_the_middle_between_running_and_final():
    """Seen running at 18 s and final at 22 s: 20 s is recorded. Seen final at the first poll:
    only 80% of that time, since the end came earlier."""
    durations = Durations()
    assert durations.typical() is None
    durations.learn(22.0, 18.0)
    assert durations.typical() == 20.0
    first_seen = Durations()
    first_seen.learn(10.0, None)
    assert first_seen.typical() == 8.0


def test_a_typical_time_learned_too_long_comes_back_within_a_few_waves():
    """A first wave seen late (a busy machine) taught 1.6 s for 1 s generations. Each first poll
    then finds the end already past, which says only that it came earlier: the learned time
    comes down: from the third wave the end is seen within 0.15 s, from the fifth within one
    short step (a twentieth of the typical time, with its jitter)."""
    cadence, durations, rng = Cadence(1.0, 15.0), Durations([1.6] * 20), random.Random(11)
    lateness = []
    for _ in range(6):
        wave = [polls_of(cadence, 1.0, durations, rng) for _ in range(20)]
        for polls in wave:
            running_at = polls[-2] if len(polls) > 1 else None
            durations.learn(polls[-1], running_at)
        lateness.append(max(polls[-1] for polls in wave) - 1.0)
    assert lateness[0] > 0.3  # the first poll at about 95% of 1.6 s
    assert max(lateness[2:]) <= 0.15 and max(lateness[4:]) <= 0.06, lateness


def test_the_estimate_counts_polls_on_the_same_curve():
    """The plan's count of polls: 5 for a 25 s generation before any duration is known (2, 3,
    4.5, 6.75, 10.125 s), 3 once 25 s is the typical time (23.2 s, then steps of 1.25 s)."""
    assert polls_until(25, 2, 15) == 5
    assert polls_until(25, 2, 15, typical=25) == 3
    assert polls_until(0, 2, 15) == 1 and polls_until(0, 2, 15, typical=0) == 1
