"""running_sandbox: a SandboxServer on its own event loop in a background thread.

For synchronous callers (tests using `requests`, the runner's setup): the server lives on a
private loop, and every method of the handle crosses into that loop, so counts are read and
faults replaced between two requests, never in the middle of one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from .config import SandboxConfig
from .faults import FaultConfig
from .server import SandboxServer

START_TIMEOUT_S = 30.0


class SandboxThread:
    """Handle on a sandbox running in a background thread."""

    def __init__(self, config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0):
        self.server = SandboxServer(config)
        self._host, self._port = host, port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="vidpipe-sandbox", daemon=True)
        self._started: Future[str] = Future()
        self._stopping: asyncio.Event | None = None
        self.base_url = ""

    def start(self) -> str:
        self._thread.start()
        self.base_url = self._started.result(timeout=START_TIMEOUT_S)
        return self.base_url

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        try:
            url = await self.server.start(self._host, self._port)
        except BaseException as problem:
            self._started.set_exception(problem)
            return
        self._started.set_result(url)
        try:
            await self._stopping.wait()
        finally:
            await self.server.stop()

    def call(self, function: Any, *args: Any) -> Any:
        """Run function(*args) on the server's loop and return its result (awaited if async)."""

        async def run() -> Any:
            result = function(*args)
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=60)

    def stats(self) -> dict[str, Any]:
        return self.call(self.server.stats)

    def set_faults(self, faults: FaultConfig) -> None:
        self.call(self.server.set_faults, faults)

    def reset(self) -> None:
        self.call(self.server.reset)

    def stop(self) -> None:
        if self._thread.is_alive() and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=60)


@contextmanager
def running_sandbox(
    config: SandboxConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[SandboxThread]:
    """A sandbox serving on host:port (0: a free port) for the duration of the block."""
    handle = SandboxThread(config, host, port)
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()
