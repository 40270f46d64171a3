"""The signals that stop a run, one policy for both engines: Ctrl-C, SIGTERM and SIGHUP alike.

SIGTERM is what `docker stop`, systemd and `kill` send, SIGHUP what a closed terminal sends:
each means "stop", none means "throw away what was paid for". So the first of any of them is a
first Ctrl-C (no new submits; POSTs on their way and generations already paid for are seen
through and recorded), and the second, whichever it is, stops at once. After a SIGHUP the
terminal is gone: writing to it would fail, so output meant for it is dropped from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def install_stop_signals(on_signal: Callable[[], None]) -> None:
    """Call `on_signal` (on the running loop) for each SIGINT, SIGTERM or SIGHUP."""
    loop = asyncio.get_running_loop()
    # Asked now: once the terminal has hung up, isatty() says False for it.
    terminal = [fd for fd in (1, 2) if os.isatty(fd)]
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, _handler(signum, on_signal, terminal))


def remove_stop_signals() -> None:
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.remove_signal_handler(signum)


def _handler(signum: int, on_signal: Callable[[], None], terminal: list[int]) -> Callable[[], None]:
    def handle() -> None:
        if signum == signal.SIGHUP:
            _leave_the_terminal(terminal)
        on_signal()

    return handle


def _leave_the_terminal(terminal: list[int]) -> None:
    """Point the file descriptors that were the terminal at /dev/null (a file or a pipe keeps its output)."""
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        for fd in terminal:
            os.dup2(null, fd)
        os.close(null)
