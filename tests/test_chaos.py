"""The chaos soak, small: every fault class at once, the runner SIGKILLed and resumed.

bench/chaos.py is the full soak (1,000 jobs); this runs the same script on 60 jobs, so the
suite proves the same invariants: nothing lost, nothing billed twice, nothing left uncertain
without a manual step (maybe-sent submits are settled from the sandbox's usage logs), table
equals ledger.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_chaos_soak_loses_nothing_and_pays_nothing_twice():
    result = subprocess.run(
        [sys.executable, "bench/chaos.py", "--jobs", "60", "--kills", "3", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["problems"] == []
    assert figures["jobs_lost"] == 0
    assert figures["billed_twice"] == 0 and figures["uncertain_left"] == 0
    assert figures["completed"] + figures["failed"] == 60
    assert figures["faults_injected"] > 10
    assert figures["kills"] >= 1
