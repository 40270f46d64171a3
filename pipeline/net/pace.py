"""How slowly an answer may arrive, for API answers and video downloads alike.

A read timeout alone does not bound a body: a server dripping one byte a second never lets it
fire. So every body is held to a pace: after `floor_s` seconds it must keep averaging
`min_rate` bytes a second. By t seconds in, (t - floor_s) x min_rate bytes must have arrived,
so a body of S bytes must be whole within floor_s + S / min_rate seconds: its deadline scales
with its size, from a floor. The check runs as bytes arrive; silence is ended by the read
timeout. A body cut off by its pace is a failed attempt like any other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pace:
    floor_s: float
    min_rate: float  # bytes a second, on average, after floor_s

    def deadline_s(self, size: int) -> float:
        """Seconds a body of `size` bytes may take, start to end."""
        return self.floor_s + size / self.min_rate

    def problem(self, received: int, elapsed_s: float) -> str | None:
        """Why `received` bytes after `elapsed_s` seconds are too slow, or None if they are not."""
        if elapsed_s <= self.deadline_s(received):
            return None
        return (
            f"too slow: {received:,} bytes in {elapsed_s:.0f} s (after the first "
            f"{self.floor_s:.0f} s, at least {self.min_rate:,.0f} bytes a second are expected)"
        )


# API answers are small JSON documents: a poll dripped a byte a second ends after 10 s.
API_PACE = Pace(floor_s=10.0, min_rate=16_000)
# Videos are megabytes: a minute to get going, then 32 kB/s (a 10 MB video: about 6 minutes).
DOWNLOAD_PACE = Pace(floor_s=60.0, min_rate=32_000)
