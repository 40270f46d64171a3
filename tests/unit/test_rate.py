"""The request rate (pipeline/net/rate.py) on fake clocks: no cap by default, a learned rate after a
429 (a cut by the share of answers refused, additive increase), and an explicit
requests_per_minute as a hard cap. Deterministic: no sleeping, no network."""

from __future__ import annotations

import asyncio
import random

import pytest

from pipeline.net.rate import Learning, RequestRate
from tests.unit.fakeclock import now, run


def send_at_steady_rate(
    rate: RequestRate, per_s: float, seconds: float, start: float = 0.0, refused_every: int = 0
) -> float:
    """Book requests at `per_s` from `start` for `seconds`, answered at once: 429 for every
    `refused_every`-th one, counted but not yet acted on, as if all had come back together
    (0: none is answered); returns the clock at the end."""
    moment = start
    for number in range(1, round(per_s * seconds) + 1):
        assert rate.reserve(moment) == 0.0
        if refused_every and number % refused_every:
            rate.record_success(moment)
        elif refused_every:
            rate._count_answer(moment, refused=1)
        moment += 1.0 / per_s
    return moment


def test_by_default_nothing_spaces_requests_until_the_service_says_so():
    rate = RequestRate()
    assert [rate.reserve(now=5.0) for _ in range(1000)] == [0.0] * 1000
    assert rate.per_s is None


def test_an_explicit_requests_per_minute_spaces_requests_after_a_burst():
    rate = RequestRate(cap_per_minute=60, burst=3)  # one a second, three at once
    waits = [rate.reserve(now=100.0) for _ in range(6)]
    assert waits == [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]
    assert rate.reserve(now=110.0) == 0.0  # idle time refills the burst


def test_an_explicit_requests_per_minute_holds_the_long_run_rate():
    rate = RequestRate(cap_per_minute=600)
    moment, sent = 0.0, 0
    while moment < 60:
        moment += rate.reserve(moment)
        sent += 1
    assert 600 <= sent <= 611


def test_a_429_holds_every_request_then_spaces_them_at_half_the_measured_rate():
    """With no answer but 429s to go by, a 429 halves the rate (the deepest cut)."""
    rate = RequestRate(burst=1)
    end = send_at_steady_rate(rate, per_s=100, seconds=5)
    rate.throttled(end, hold_s=2.0)
    assert rate.learned_per_s == pytest.approx(50, rel=0.02)
    waits = [rate.reserve(end) for _ in range(3)]
    assert waits == pytest.approx([2.0, 2.02, 2.04], abs=1e-3)


def test_a_lone_429_among_many_successes_cuts_the_rate_by_its_share_not_by_half():
    """A 429 that comes at random (a busy upstream, not our pace) costs its share of the rate."""
    rate = RequestRate()
    end = send_at_steady_rate(rate, per_s=100, seconds=5, refused_every=500)
    rate.throttled(end, hold_s=0.5)
    assert rate.learned_per_s == pytest.approx(100 * (1 - 1 / 500), rel=0.02)


def test_past_a_real_limit_the_rate_falls_to_what_the_service_accepted():
    rate = RequestRate()
    end = send_at_steady_rate(rate, per_s=100, seconds=5, refused_every=4)  # 75 a second taken
    rate.throttled(end, hold_s=0.5)
    assert rate.learned_per_s == pytest.approx(75, rel=0.03)


def test_answers_older_than_the_measured_seconds_do_not_count():
    rate = RequestRate()
    send_at_steady_rate(rate, per_s=100, seconds=5, refused_every=4)
    end = send_at_steady_rate(rate, per_s=100, seconds=6, start=10.0, refused_every=1_000_000)
    rate.throttled(end, hold_s=0.5)
    assert rate.learned_per_s == pytest.approx(100, rel=0.03)


def test_a_burst_of_429s_from_one_overload_cuts_the_rate_once():
    rate = RequestRate()
    end = send_at_steady_rate(rate, per_s=40, seconds=5)
    for offset in (0.0, 0.1, 0.5, 0.9):  # the requests that were in the air at the first 429
        rate.throttled(end + offset, hold_s=0.5)
    assert rate.learned_per_s == pytest.approx(20, rel=0.03)
    rate.throttled(end + 1.5, hold_s=0.5)  # a 429 after the cooldown: the lower rate is too fast
    assert rate.learned_per_s == pytest.approx(10, rel=0.03)


def test_successes_bring_the_rate_back_in_equal_steps():
    rate = RequestRate(learning=Learning(recover_after=10, step_share=0.1))
    end = send_at_steady_rate(rate, per_s=100, seconds=5)
    rate.throttled(end, hold_s=1.0)
    cut = rate.learned_per_s
    seen = []
    for _ in range(5):
        rate.record_success(end, 9)
        assert rate.learned_per_s == (seen[-1] if seen else cut)  # not yet a whole run of successes
        rate.record_success(end)
        seen.append(rate.learned_per_s)
    steps = [b - a for a, b in zip([cut, *seen[:-1]], seen, strict=True)]
    assert steps == pytest.approx([0.1 * cut] * 5)


def test_a_429_ends_the_run_of_successes():
    rate = RequestRate(learning=Learning(recover_after=10))
    rate.throttled(send_at_steady_rate(rate, per_s=10, seconds=5), hold_s=1.0)
    rate.record_success(5.0, 9)
    later = send_at_steady_rate(rate, per_s=rate.learned_per_s, seconds=5, start=100.0)
    before = rate.learned_per_s
    rate.throttled(later, hold_s=1.0)
    rate.record_success(later, 1)  # the tenth success, but not in a row: no step up
    assert rate.learned_per_s == pytest.approx(before / 2)


def test_the_learned_rate_never_passes_the_hard_cap_nor_falls_below_the_floor():
    rate = RequestRate(cap_per_minute=120, learning=Learning(floor_per_s=0.2))
    for moment in range(0, 100, 2):  # 429 after 429, each after the cooldown
        rate.throttled(float(moment), hold_s=0.0)
    assert rate.learned_per_s == 0.2 and rate.per_s == 0.2
    rate.record_success(100.0, 100_000)
    assert rate.learned_per_s > 2 and rate.per_s == 2.0  # the cap: 120 a minute


def test_a_rate_cut_to_the_floor_climbs_back_in_minutes_not_hours():
    """At the floor (12 a minute) a step of 5% would be 0.01 a second: with the minimum step,
    100 successes (two and a half minutes at the rates passed through) reach 2 a second."""
    rate = RequestRate()
    for moment in range(0, 100, 2):
        rate.throttled(float(moment), hold_s=0.0)
    assert rate.learned_per_s == Learning().floor_per_s
    rate.record_success(100.0, 100)
    assert rate.learned_per_s >= 2.0


class RateLimitedService:
    """A service allowing `per_s` requests a second (a token bucket; None: no limit), answering
    429 past it, and also, at random, to `random_share` of what it would take (a busy upstream)."""

    def __init__(self, per_s: float | None, random_share: float = 0.0):
        self.per_s, self.tokens, self.last = per_s, per_s or 0.0, 0.0
        self.random_share, self.rng = random_share, random.Random(1)
        self.accepted = self.refused = 0

    def answer(self, moment: float, horizon: float = 120.0) -> bool:
        """Whether the request at `moment` is taken; counted only before `horizon`."""
        taken = True
        if self.per_s is not None:
            self.tokens = min(self.per_s, self.tokens + (moment - self.last) * self.per_s)
            self.last = moment
            taken = self.tokens >= 1
            self.tokens -= taken
        taken = taken and self.rng.random() >= self.random_share
        if moment < horizon:
            self.accepted += taken
            self.refused += not taken
        return taken


def fifty_workers_for_two_minutes(service: RateLimitedService) -> None:
    """50 workers that could send 1,000 requests a second, each 429 holding everyone 0.5 s."""
    rate = RequestRate()

    async def worker() -> None:
        while now() < 120:
            await asyncio.sleep(await rate.turn())
            if service.answer(now()):
                rate.succeeded()
                await asyncio.sleep(0.05)  # the answer's round trip
            else:
                rate.hold(0.5)
                await asyncio.sleep(0.5)

    async def scenario() -> None:
        await asyncio.gather(*(worker() for _ in range(50)))

    run(scenario())


@pytest.mark.parametrize(
    ("limit_per_s", "random_share", "share_used", "share_refused"),
    [(100, 0.0, 0.95, 0.12), (10, 0.0, 0.9, 0.2), (30, 0.02, 0.9, 0.16)],
)
def test_many_workers_learn_a_service_limit_they_were_never_told(
    limit_per_s, random_share, share_used, share_refused
):
    """Over two minutes the workers use nearly all of a limit they are never told, and the
    429s stay a minority: the price of probing for it (a 429 costs a hold, not credits)."""
    service = RateLimitedService(per_s=limit_per_s, random_share=random_share)
    fifty_workers_for_two_minutes(service)
    assert service.accepted >= share_used * limit_per_s * 120 * (1 - random_share)
    assert service.refused <= share_refused * (service.accepted + service.refused)


@pytest.mark.parametrize(("random_share", "at_least"), [(0.01, 12_000), (0.05, 8_000), (0.07, 7_000)])
def test_429s_at_random_do_not_ratchet_the_rate_down_to_its_floor(random_share, at_least):
    """429s that come whatever the rate (the chaos soak's, a busy upstream's). Halving on each
    one took the rate to its floor: 1,167, 480 and 451 answers in these two minutes. Now what
    bounds it is the hold each 429 imposes on everyone (about 16,500 answers at 1%)."""
    service = RateLimitedService(per_s=None, random_share=random_share)
    fifty_workers_for_two_minutes(service)
    assert service.accepted >= at_least


def test_a_clusters_shards_learn_one_rate_per_account():
    """On the Ray engine the coordinator keeps each account's rate: a 429 one shard meets makes
    every shard on that key wait, other keys go on, and successes sent with turns recover it."""
    from pipeline.cluster.coordinator import Coordinator
    from pipeline.read.settings import Account

    coordinator = Coordinator([Account("KEY_A", 4, None), Account("KEY_B", 4, 600)])

    async def scenario() -> tuple[float, float, float, float]:
        for _ in range(100):  # two shards' requests over five seconds
            assert await coordinator.turn("KEY_A") == 0.0
            await asyncio.sleep(0.05)
        await coordinator.slow_down("KEY_A", 2.0)  # shard 1 meets a 429
        other_shard = await coordinator.turn("KEY_A")
        other_key = await coordinator.turn("KEY_B")
        cut = coordinator.limiters["KEY_A"].learned_per_s
        await coordinator.turn("KEY_A", successes=20)
        return other_shard, other_key, cut, coordinator.limiters["KEY_A"].learned_per_s

    other_shard, other_key, cut, recovered = run(scenario())
    assert other_shard == pytest.approx(2.0) and other_key == 0.0
    assert cut == pytest.approx(10, rel=0.05)  # half of the 20 a second both shards sent
    assert recovered == pytest.approx(cut + 2 * 0.5)  # two runs of 10 successes: 5% of the cut each


def test_a_shards_429_brings_the_successes_it_had_not_told_yet():
    """A shard tells its successes with its next turn; a 429 sends them first, so the share of
    429s the coordinator cuts by is the real one, not a 429 among nothing."""
    from pipeline.cluster.coordinator import Coordinator
    from pipeline.read.settings import Account

    coordinator = Coordinator([Account("KEY_A", 4, None)])

    async def scenario() -> float:
        for _ in range(100):  # 20 requests a second for five seconds, answers not told yet
            assert await coordinator.turn("KEY_A") == 0.0
            await asyncio.sleep(0.05)
        await coordinator.slow_down("KEY_A", 0.5, successes=99)
        return coordinator.limiters["KEY_A"].learned_per_s

    assert run(scenario()) == pytest.approx(20 * (1 - 1 / 100), rel=0.05)
