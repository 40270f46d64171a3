"""The budget check before a run starts (runner.py), on a ledger's rows: no I/O."""

from __future__ import annotations

import pytest

from pipeline.errors import InputError
from pipeline.run.runner import _check_budget_before_start
from pipeline.run.steps import Job


class Rows:
    def __init__(self, rows):
        self.rows = rows

    def rows_by_id(self):
        return self.rows


def unpriced(job_id):
    return Job(job_id, {"model": "someone/unpriced"}, f"{job_id}.mp4", 0, price_known=False)


def test_an_uncertain_job_with_no_known_price_refuses_a_budget_before_start():
    """Settled as never arrived, it would be sent again with a 0 estimate."""
    ledger = Rows({"a": {"status": "uncertain", "generation_id": None}})
    with pytest.raises(InputError, match=r"1 jobs have no known price \(someone/unpriced\)"):
        _check_budget_before_start(ledger, [unpriced("a")], 1_000_000, retry_uncertain=False)


def test_an_uncertain_job_whose_generation_is_known_is_only_polled():
    ledger = Rows({"a": {"status": "uncertain", "generation_id": "gen-1"}})
    assert _check_budget_before_start(ledger, [unpriced("a")], 1_000_000, retry_uncertain=False) == 0
