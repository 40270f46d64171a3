"""The end-of-run summary's credits line (pipeline/write/summary.py): what this run spent against
what it planned, apart from what generations an earlier run sent cost when this one finished them."""

from __future__ import annotations

from pipeline.run.tally import Tally
from pipeline.write.summary import RunSummary, describe


def credits_line(tally: Tally, planned: int) -> str:
    summary = RunSummary(
        "sweep", "aimlapi", "outputs/sweep", tally.total, tally, 9.0, 0, planned_credits=planned
    )
    return next(line for line in describe(summary) if line.startswith("Credits"))


def test_a_resume_after_a_kill_does_not_read_as_overspending():
    """4 generations in flight at the kill (3,150,000) were planned and sent by the killed run."""
    tally = Tally(total=60, completed=60, credits_spent=24_150_000, budget_spent=21_000_000)
    assert credits_line(tally, planned=22_050_000).startswith(
        "Credits spent this run: 21,000,000 of 22,050,000 planned "
        "and 3,150,000 for generations an earlier run sent (about $"
    )


def test_a_fresh_run_says_only_what_it_spent_of_its_plan():
    tally = Tally(total=16, completed=16, credits_spent=8_400_000, budget_spent=8_400_000)
    assert credits_line(tally, planned=8_400_000).startswith(
        "Credits spent this run: 8,400,000 of 8,400,000 planned (about $"
    )
