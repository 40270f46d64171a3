"""The learned request rate (pipeline/net/rate.py) against services it is never told about.

    .venv/bin/python bench/bench_rate.py

On a fake clock (tests/unit/fakeclock.py), so the figures are the same on any machine and take
seconds: 50 workers that could send 1,000 requests a second, for two minutes, each 429 holding
everyone 0.5 s, against a token-bucket limit, 429s at random whatever the pace, or both. The
README's table of the learner comes from this.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.unit.test_rate import RateLimitedService, fifty_workers_for_two_minutes

SERVICES = [(100, 0.0), (10, 0.0), (30, 0.02), (None, 0.01), (None, 0.05), (None, 0.07)]


def main() -> None:
    print(f"{'limit':>8} {'random 429s':>12} {'taken':>8} {'refused':>8} {'of the limit':>13}")
    for limit, random_share in SERVICES:
        service = RateLimitedService(per_s=limit, random_share=random_share)
        fifty_workers_for_two_minutes(service)
        answered = service.accepted + service.refused
        used = f"{service.accepted / (limit * 120 * (1 - random_share)):.0%}" if limit else "-"
        print(
            f"{(f'{limit}/s' if limit else 'none'):>8} {random_share:>12.0%} {service.accepted:>8,} "
            f"{service.refused / answered:>8.1%} {used:>13}"
        )


if __name__ == "__main__":
    main()
