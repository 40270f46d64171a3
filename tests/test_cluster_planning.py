"""The Ray engine's pure parts: accounts, shards, budget shares and the shared window. No Ray."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.cluster.coordinator import Coordinator, Window
from pipeline.cluster.sharding import assign_accounts, budget_shares, split_shards
from pipeline.errors import InputError
from pipeline.read.settings import Account

A = Account("KEY_A", 3, 60)
B = Account("KEY_B", 2, 60)


def rows(statuses: dict[str, tuple[str, str | None]]):
    return {job: {"status": status, "account": account} for job, (status, account) in statuses.items()}


def test_new_jobs_are_spread_in_proportion_to_concurrency():
    jobs = [f"j{i}" for i in range(10)]
    assigned = assign_accounts(jobs, rows({j: ("pending", None) for j in jobs}), [A, B])
    assert [assigned[j] for j in jobs[:5]] == ["KEY_A", "KEY_B", "KEY_A", "KEY_B", "KEY_A"]
    assert sum(name == "KEY_A" for name in assigned.values()) == 6


def test_a_running_generation_keeps_its_account():
    state = rows({"j0": ("submitted", "KEY_B"), "j1": ("pending", None), "j2": ("completed", "KEY_B")})
    assigned = assign_accounts(["j0", "j1", "j2"], state, [A, B])
    assert assigned["j0"] == "KEY_B" and assigned["j2"] == "KEY_B" and assigned["j1"] == "KEY_A"


def test_a_running_generation_whose_account_is_gone_is_an_error():
    state = rows(
        {"j0": ("submitted", "KEY_OLD"), "j1": ("timed_out", "KEY_OLD"), "j2": ("failed", "KEY_OLD")}
    )
    with pytest.raises(InputError, match=r"2 on KEY_OLD.*list those accounts again"):
        assign_accounts(["j0", "j1", "j2"], state, [A])


def test_a_finished_job_of_a_removed_account_moves_to_a_listed_one():
    assigned = assign_accounts(["j0"], rows({"j0": ("failed", "KEY_OLD")}), [B])
    assert assigned == {"j0": "KEY_B"}


def test_shards_cover_every_job_once_and_mix_the_table():
    shards = split_shards(
        {"KEY_A": list(range(9)), "KEY_B": list(range(100, 104)), "KEY_C": []},
        {"KEY_A": 3, "KEY_B": 1, "KEY_C": 5},
        4,
    )
    assert [name for name, _ in shards] == ["KEY_A", "KEY_A", "KEY_A", "KEY_B"]
    assert shards[0][1] == [0, 3, 6]
    assert sorted(item for _, items in shards for item in items) == [*range(9), *range(100, 104)]


def test_never_more_shards_than_jobs():
    assert split_shards({"KEY_A": [1, 2]}, {"KEY_A": 1}, 8) == [("KEY_A", [1]), ("KEY_A", [2])]


def test_budget_is_shared_by_estimated_cost_and_never_over():
    shares = budget_shares(1000, [[100, 100, 100], [100]])
    assert shares == [750, 250]
    assert budget_shares(999, [[1], [1], [1]]) == [333, 333, 333]
    assert budget_shares(None, [[1], [2]]) == [None, None]


def run(coroutine):
    return asyncio.run(coroutine)


def test_window_admits_size_jobs_then_waits_in_order():
    async def scenario():
        window = Window(2)
        assert await window.acquire("a") and await window.acquire("b")
        third = asyncio.create_task(window.acquire("c"))
        fourth = asyncio.create_task(window.acquire("d"))
        await asyncio.sleep(0)
        assert not third.done()
        window.release("a")
        assert await third and not fourth.done()
        return set(window.holders)

    assert run(scenario()) == {"b", "c"}


def test_a_job_that_holds_a_slot_takes_it_again_for_free():
    """A restarted shard resumes a generation whose slot the dead shard still holds."""

    async def scenario():
        window = Window(1)
        await window.acquire("a")
        return await asyncio.wait_for(window.acquire("a"), 1), len(window.holders)

    assert run(scenario()) == (True, 1)


def test_when_every_slot_is_held_past_its_timeout_waiters_are_told_no():
    async def scenario():
        window = Window(1)
        await window.acquire("a")
        waiting = asyncio.create_task(window.acquire("b"))
        await asyncio.sleep(0)
        window.hold("a")
        return await asyncio.wait_for(waiting, 1), await window.acquire("c")

    assert run(scenario()) == (False, False)


def test_coordinator_counts_in_flight_across_accounts_and_settles_a_dead_shards_slots():
    async def scenario():
        coordinator = Coordinator([A, B])
        for job in ("a1", "a2", "a3"):
            await coordinator.acquire("KEY_A", job)
        await coordinator.acquire("KEY_B", "b1")
        peak = coordinator.peak_in_flight
        # A restarted shard owning a1..a3: a2's generation runs (it resumes it), a3's submit was
        # in the air (it may run: its slot is kept until the run ends), a1 had not been sent.
        await coordinator.settle("KEY_A", ["a1", "a2", "a3"], running=["a2"], maybe=["a3"])
        window = coordinator.windows["KEY_A"]
        return peak, coordinator.in_flight, dict(window.holders)

    assert run(scenario()) == (4, 3, {"a2": False, "a3": True})


def test_slots_left_to_unwatched_generations_end_the_wait_instead_of_hanging():
    """A shard given up on leaves generations nobody polls: when they hold every slot, waiting
    shards are told no (and stop submitting) rather than waiting forever."""

    async def scenario():
        coordinator = Coordinator([B])  # 2 slots
        await coordinator.acquire("KEY_B", "lost1")
        await coordinator.acquire("KEY_B", "lost2")
        waiting = asyncio.create_task(coordinator.acquire("KEY_B", "other"))
        await asyncio.sleep(0)
        await coordinator.settle("KEY_B", ["lost1", "lost2"], running=[], maybe=["lost1", "lost2"])
        return await asyncio.wait_for(waiting, 1)

    assert run(scenario()) is False


def test_a_shard_that_ends_frees_what_it_holds_but_not_a_generation_past_its_timeout():
    async def scenario():
        coordinator = Coordinator([A])
        await coordinator.acquire("KEY_A", "granted-while-stopping")
        await coordinator.acquire("KEY_A", "timed-out")
        await coordinator.hold("KEY_A", "timed-out")
        await coordinator.settle("KEY_A", ["granted-while-stopping", "timed-out"], [], [])
        return dict(coordinator.windows["KEY_A"].holders)

    assert run(scenario()) == {"timed-out": True}


def test_coordinator_passes_the_first_stop_abort_and_cancel_on():
    async def scenario():
        coordinator = Coordinator([A])
        await coordinator.abort("AuthError", "401 on KEY_A")
        await coordinator.abort("CreditsError", "later")
        control = await coordinator.report(0, {"completed": 1})
        return control.abort, coordinator.tallies

    assert run(scenario()) == (("AuthError", "401 on KEY_A"), {0: {"completed": 1}})


def test_each_account_has_its_own_window():
    async def scenario():
        coordinator = Coordinator([A, B])  # 3 and 2 slots
        granted = [await coordinator.acquire("KEY_B", f"b{n}") for n in range(2)]
        third_b = asyncio.create_task(coordinator.acquire("KEY_B", "b2"))
        granted += [await asyncio.wait_for(coordinator.acquire("KEY_A", f"a{n}"), 1) for n in range(3)]
        await asyncio.sleep(0)
        return granted, third_b.done(), coordinator.in_flight

    assert run(scenario()) == ([True] * 5, False, 5)
