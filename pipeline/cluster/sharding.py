"""Pure planning for the Ray engine: which account runs each job, and the shards they form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from ..errors import InputError
from ..read.settings import Account
from ..states import JobState

T = TypeVar("T")


def assign_accounts(
    job_ids: Sequence[str], rows: Mapping[str, Mapping[str, Any]], accounts: Sequence[Account]
) -> dict[str, str]:
    """job_id -> account name.

    A job keeps the account it was given before, if that account is still listed: a generation
    must be polled with the key that made it. Other jobs are dealt out in proportion to each
    account's concurrency (smooth weighted round robin: A, B, A, A, B... for weights 3 and 2).
    """
    names = {account.name for account in accounts}
    assigned: dict[str, str] = {}
    orphans: dict[str, int] = {}
    free: list[str] = []
    for job_id in job_ids:
        row = rows[job_id]
        recorded = row.get("account")
        if recorded in names:
            assigned[job_id] = recorded
        elif JobState(row["status"]).has_generation and recorded is not None:
            orphans[recorded] = orphans.get(recorded, 0) + 1
        else:
            free.append(job_id)
    if orphans:
        listed = ", ".join(f"{count} on {name}" for name, count in sorted(orphans.items()))
        raise InputError(
            f"generations still running were submitted with accounts no longer in run.accounts ({listed}); "
            "list those accounts again so their generations can be polled"
        )
    for job_id, name in zip(free, _weighted_turns(accounts), strict=False):
        assigned[job_id] = name
    return assigned


def _weighted_turns(accounts: Sequence[Account]):
    current = {account.name: 0 for account in accounts}
    total = sum(account.concurrency for account in accounts)
    while True:
        for account in accounts:
            current[account.name] += account.concurrency
        chosen = max(accounts, key=lambda a: current[a.name])
        current[chosen.name] -= total
        yield chosen.name


def split_shards(
    by_account: Mapping[str, Sequence[T]], weights: Mapping[str, int], shard_count: int
) -> list[tuple[str, list[T]]]:
    """(account, items) per shard: every account with items gets at least one shard, the rest in
    proportion to its weight; items are dealt round-robin so each shard gets a mix of the table."""
    busy = {name: items for name, items in by_account.items() if items}
    total = sum(weights[name] for name in busy) or 1
    shards: list[tuple[str, list[T]]] = []
    for name, items in busy.items():
        count = max(1, min(len(items), round(shard_count * weights[name] / total)))
        shards += [(name, list(items[i::count])) for i in range(count)]
    return shards


def budget_shares(budget: int | None, estimates: Sequence[Sequence[float]]) -> list[int | None]:
    """Each shard's part of run.budget, in proportion to its jobs' estimated credits.

    Shards do not lend each other budget: a shard that runs over its share stops submitting even
    if another has room left. That errs on the side of spending less.
    """
    if budget is None:
        return [None] * len(estimates)
    sums = [sum(shard) for shard in estimates]
    total = sum(sums)
    if total == 0:
        return [budget // max(len(estimates), 1)] * len(estimates)
    return [int(budget * part / total) for part in sums]
