"""An event loop on a fake clock: time moves only when every task waits, and then jumps.

`run(coroutine)` runs real asyncio code (sleeps, timeouts, semaphores, tasks) on a loop whose
`time()` starts at 0 and, whenever nothing is ready to run, jumps straight to the next timer
instead of sleeping. So `asyncio.sleep(60)` takes no real time, every run sees exactly the same
clock readings whatever the machine's speed, and "before the clock moves" is a testable claim.
A wait with no timer set would wait forever: it fails the test at once instead. No I/O: a test
that needs the network uses the sandbox or tests/hostile.py on the real clock.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Deadlock(AssertionError):
    """Every task waits and no timer is set: the code under test would hang."""


class _JumpingSelector(selectors.BaseSelector):
    """The loop's selector, except that waiting means moving the clock to the next timer."""

    def __init__(self, inner: selectors.BaseSelector, loop: FakeClockLoop):
        self._inner, self._loop = inner, loop

    def select(self, timeout: float | None = None):
        ready = self._inner.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise Deadlock("every task is waiting and no timer is set")
        self._loop.now += timeout
        return []

    def register(self, fileobj, events, data=None):
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj):
        return self._inner.unregister(fileobj)

    def modify(self, fileobj, events, data=None):
        return self._inner.modify(fileobj, events, data)

    def get_map(self):
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()


class FakeClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self._selector = _JumpingSelector(self._selector, self)

    def time(self) -> float:
        return self.now


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` to the end on a fresh fake-clock loop."""
    loop = FakeClockLoop()  # (asyncio.Runner's loop_factory would do this; it is Python 3.11+)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(coroutine)
    finally:
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def now() -> float:
    """The running loop's clock."""
    return asyncio.get_running_loop().time()
