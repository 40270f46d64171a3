"""Progress output: a bar on a terminal, plain lines in CI and logs, nothing when quiet."""

from __future__ import annotations

import asyncio
import io

from pipeline.progress import Progress, choose_mode
from pipeline.tally import Tally


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_unless_in_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    assert choose_mode(quiet=False, stream=Terminal()) == "bar"
    assert choose_mode(quiet=False, stream=io.StringIO()) == "lines"
    assert choose_mode(quiet=True, stream=Terminal()) == "quiet"
    monkeypatch.setenv("CI", "true")
    assert choose_mode(quiet=False, stream=Terminal()) == "lines"


def run_briefly(progress: Progress) -> None:
    async def main() -> None:
        task = asyncio.create_task(progress.run())
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


def test_the_bar_shows_counts_and_credits():
    tally = Tally(
        total=10, queued=4, running=3, completed=3, credits_spent=1_575_000, credits_reserved=1_575_000
    )
    stream = Terminal()
    run_briefly(Progress(tally, "bar", average_credits=525_000, stream=stream))
    shown = stream.getvalue()
    assert "3/10" in shown
    assert "4 queued, 3 running, 0 downloading, 3 done, 0 failed" in shown
    assert "1,575,000 credits spent, 5,250,000 projected" in shown


def test_plain_lines_say_what_is_left():
    tally = Tally(total=4, completed=2, running=2)
    stream = io.StringIO()
    run_briefly(Progress(tally, "lines", average_credits=525_000, stream=stream))
    line = stream.getvalue().splitlines()[0]
    assert line.startswith("[0 s] 2/4 finished: 0 queued, 2 running")
    assert "\r" not in stream.getvalue()
