"""Which pairs of videos compare mode shows, in what order (pure).

Compare mode asks a reviewer which of two videos is better: two jobs of one group (the same
request apart from the compared field, so the same prompt), with different values of that
field. Every candidate should be seen about equally often however early the reviewer stops,
so the pairs come as a round-robin tournament per group (the circle method): in each round
every candidate of a group meets one other (an odd group gives one a bye), and after k-1
rounds every pair of its k candidates has met once. Rounds are interleaved across groups
(round 1 of every group, then round 2, ...), so stopping after any round leaves every
candidate of every group compared the same number of times, give or take one.

The order is shuffled (members, pairs within a round, left and right) by a generator seeded
with the run's identity: the same run always gets the same schedule, and no candidate sits
on the left more than chance would put it there. Whole rounds are kept while the total stays
within `max_pairs` (at least one round): a 2,000-job seed sweep has more pairs than anyone
will judge, and the page carries every scheduled pair.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Iterator, Sequence

MAX_PAIRS = 5000


def round_robin(members: Sequence[int]) -> Iterator[list[tuple[int, int]]]:
    """The rounds of a tournament among `members` (circle method), one at a time: each pair
    meets once. Lazily, since a long schedule is cut after a few rounds."""
    players: list[int | None] = list(members)
    if len(players) % 2:
        players.append(None)  # a bye
    for _ in range(len(players) - 1):
        half = len(players) // 2
        pairs = [(players[i], players[-1 - i]) for i in range(half)]
        yield [(a, b) for a, b in pairs if a is not None and b is not None]
        players = [players[0], players[-1], *players[1:-1]]


def pair_schedule(
    candidates: Sequence[tuple[Hashable, Hashable]], seed: str, max_pairs: int = MAX_PAIRS
) -> list[tuple[int, int]]:
    """The pairs to show, as (left, right) positions in `candidates`.

    `candidates` holds one (group, value) per video that can be shown; two videos are paired
    only within a group and only when their values differ.
    """
    rng = random.Random(seed)
    groups: dict[Hashable, list[int]] = {}
    for position, (group, _) in enumerate(candidates):
        groups.setdefault(group, []).append(position)
    tournaments = []
    for members in groups.values():
        rng.shuffle(members)
        tournaments.append(round_robin(members))
    schedule: list[tuple[int, int]] = []
    while tournaments:
        this_round, going = [], []
        for rounds in tournaments:
            pairs = next(rounds, None)
            if pairs is not None:
                going.append(rounds)
                this_round.extend((a, b) for a, b in pairs if candidates[a][1] != candidates[b][1])
        tournaments = going
        if schedule and len(schedule) + len(this_round) > max_pairs:
            break
        rng.shuffle(this_round)
        schedule.extend((b, a) if rng.random() < 0.5 else (a, b) for a, b in this_round)
    return schedule
