"""Progress output: a bar on a terminal, plain lines in CI and logs, nothing when quiet."""

from __future__ import annotations

import asyncio
import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time

from pipeline.run.progress import Progress, choose_mode, pace, pace_text, status_text
from pipeline.run.tally import Tally
from tests.runner_helpers import REPO, manifest_text


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
    run_briefly(Progress(tally, "bar", average_credits=525_000, stream=stream, columns=160))
    shown = stream.getvalue()
    assert "3/10" in shown
    assert "4 queued, 3 running, 0 downloading, 3 done, 0 failed" in shown
    assert "1,575,000 credits spent, 5,250,000 projected" in shown


def test_jobs_waiting_for_the_logs_are_counted_as_settling_so_the_counts_add_up():
    tally = Tally(total=10, queued=4, running=2, settling=1, completed=3)
    assert status_text(tally, average_credits=0).startswith(
        "4 queued, 2 running, 0 downloading, 1 settling, 3 done, 0 failed"
    )
    stream = Terminal()
    run_briefly(Progress(tally, "bar", average_credits=0, stream=stream, columns=80))
    assert ", 1 settling" in stream.getvalue()


def test_the_projection_counts_the_queued_jobs_own_estimates_not_the_average():
    """A model mix: 2 queued jobs of 300,000 each, though the run's average is 1,000,000."""
    tally = Tally(total=4, queued=2, running=2, credits_reserved=2_000_000, credits_queued=600_000)
    assert status_text(tally, average_credits=1_000_000).endswith("0 credits spent, 2,600,000 projected")


def test_plain_lines_say_what_is_left():
    tally = Tally(total=4, completed=2, running=2, started=time.monotonic() - 10)
    stream = io.StringIO()
    run_briefly(Progress(tally, "lines", average_credits=525_000, stream=stream))
    line = stream.getvalue().splitlines()[0]
    assert line.startswith("[10 s, about 10 s left, 0.2 jobs/s] 2/4 finished: 0 queued, 2 running")
    assert "\r" not in stream.getvalue()


def test_rate_and_time_left_count_only_this_runs_work():
    """A resumed run: 18 of 40 were done before; 4 more in this run's first 4 s."""
    tally = Tally(total=40, completed=22, skipped=18, started=100.0)
    rate, left = pace(tally, now=104.0)
    assert rate == 1.0
    assert left == 18.0
    assert pace(Tally(total=40, completed=18, skipped=18, started=100.0), now=104.0) == (None, None)
    assert "about 18 s left, 1.0 jobs/s" in pace_text(tally, now=104.0)


def _last_drawn_line(text: str) -> str:
    return text.replace("\n", "\r").split("\r")[-2 if text.endswith(("\r", "\n")) else -1]


def test_at_80_columns_the_line_keeps_its_counts_and_fits():
    tally = Tally(
        total=400, queued=100, running=20, downloading=3, completed=270, failed=7, credits_spent=141_750_000
    )
    tally.started = time.monotonic() - 60
    stream = Terminal()
    run_briefly(Progress(tally, "bar", average_credits=525_000, stream=stream, columns=80))
    line = _last_drawn_line(stream.getvalue()).strip()
    assert len(line) <= 80, line
    assert line == "277/400: 270 done, 7 failed, 23 running, 100 queued; 141.8M credits; 0:27 left"
    tally.total = tally.queued = 123_456
    run_briefly(Progress(tally, "bar", average_credits=525_000, stream=stream, columns=60))
    assert len(_last_drawn_line(stream.getvalue()).strip()) < 60


def test_a_run_on_an_80_column_terminal_draws_lines_that_fit_and_add_up(tmp_path):
    """The real CLI on a pseudo-terminal: every line the bar draws fits and its counts add up."""
    run = "run: {concurrency: 3, poll_interval: 0.05, poll_max_interval: 0.1}"
    (tmp_path / "m.yaml").write_text(manifest_text(jobs=12, run=run, extra="sandbox: {gen_time: 0.3}"))
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "GITHUB_ACTIONS")}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "m.yaml"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=child,
    )
    os.close(child)
    drawn = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        drawn += chunk
    os.close(main)
    assert process.wait(timeout=60) == 0
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", drawn.decode())
    lines = [line.strip() for line in re.split(r"[\r\n]", text) if re.match(r"^\s*\d+/12: ", line)]
    assert lines, text
    for line in lines:
        assert len(line) <= 80, line
        finished, done, failed, running, queued = map(
            int, re.match(r"(\d+)/12: (\d+) done, (\d+) failed, (\d+) running, (\d+) queued", line).groups()
        )
        assert finished == done + failed
        assert finished + running + queued == 12, line
    assert lines[-1].startswith("12/12: 12 done, 0 failed, 0 running, 0 queued")
