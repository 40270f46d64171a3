"""Rendered clips: rendered once per spec, off the event loop, kept within a memory limit.

`Renderer.render(spec)` returns the clip's key once its bytes are in the `VideoStore`; two
requests for the same spec share one render. Rendering runs in a thread pool (PyAV and numpy
release the GIL while they work), so the server keeps answering polls meanwhile. The store
keeps the most recently used clips in memory up to `memory_limit` bytes and writes the rest
to a spill folder: rendering is deterministic, so nothing is ever lost, only moved.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .flaws import render_any
from .render import ClipSpec


class VideoStore:
    """Clip bytes by key: memory first (LRU), then a spill folder."""

    def __init__(self, memory_limit: int, spill_dir: str | None = None):
        self.memory_limit = memory_limit
        self._memory: OrderedDict[str, bytes] = OrderedDict()
        self._memory_bytes = 0
        self._spill_root = spill_dir
        self._spill: Path | None = None
        self._spilled: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self._memory or key in self._spilled

    def put(self, key: str, data: bytes) -> None:
        if key in self:
            return
        self._memory[key] = data
        self._memory_bytes += len(data)
        while self._memory_bytes > self.memory_limit and len(self._memory) > 1:
            old_key, old_data = self._memory.popitem(last=False)
            self._memory_bytes -= len(old_data)
            self._spill_path(old_key).write_bytes(old_data)
            self._spilled.add(old_key)

    def get(self, key: str) -> bytes | None:
        data = self._memory.get(key)
        if data is not None:
            self._memory.move_to_end(key)
            return data
        if key in self._spilled:
            return self._spill_path(key).read_bytes()
        return None

    @property
    def memory_bytes(self) -> int:
        return self._memory_bytes

    @property
    def spilled(self) -> int:
        return len(self._spilled)

    def clear(self) -> None:
        self._memory.clear()
        self._memory_bytes = 0
        self._spilled.clear()
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)
            self._spill = None

    def _spill_path(self, key: str) -> Path:
        if self._spill is None:
            self._spill = Path(tempfile.mkdtemp(prefix="vidpipe-sandbox-", dir=self._spill_root))
        return self._spill / f"{key}.mp4"


@dataclass
class RenderStats:
    renders: int = 0
    cache_hits: int = 0
    failures: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0

    def as_dict(self) -> dict[str, float]:
        mean = self.total_ms / self.renders if self.renders else 0.0
        return {
            "renders": self.renders,
            "cache_hits": self.cache_hits,
            "failures": self.failures,
            "mean_ms": round(mean, 1),
            "max_ms": round(self.max_ms, 1),
        }


def _timed_render(spec: ClipSpec) -> tuple[bytes, float]:
    started = time.perf_counter()
    data = render_any(spec)
    return data, (time.perf_counter() - started) * 1000


class Renderer:
    """Renders specs in a thread pool, once each, into a VideoStore."""

    def __init__(self, store: VideoStore, workers: int):
        self.store = store
        self.stats = RenderStats()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox-render")
        self._pending: dict[str, asyncio.Future[None]] = {}

    async def render(self, spec: ClipSpec) -> str:
        """The key of `spec`'s clip, rendered if needed. Raises RenderError for a bad request."""
        key = spec.key()
        if key in self.store:
            self.stats.cache_hits += 1
            return key
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._render(key, spec))
            self._pending[key] = pending
            pending.add_done_callback(self._forget)
        else:
            self.stats.cache_hits += 1
        # shield: one waiter being cancelled must not cancel the render others wait for.
        await asyncio.shield(pending)
        return key

    def _forget(self, done: asyncio.Future[None]) -> None:
        for key, pending in list(self._pending.items()):
            if pending is done:
                del self._pending[key]
        # Mark a failure as seen even when every waiter has gone away.
        if not done.cancelled():
            done.exception()

    async def _render(self, key: str, spec: ClipSpec) -> None:
        loop = asyncio.get_running_loop()
        try:
            data, elapsed_ms = await loop.run_in_executor(self._executor, _timed_render, spec)
        except Exception:
            self.stats.failures += 1
            raise
        self.stats.renders += 1
        self.stats.total_ms += elapsed_ms
        self.stats.max_ms = max(self.stats.max_ms, elapsed_ms)
        self.store.put(key, data)

    async def close(self) -> None:
        """Wait for renders under way, then stop the pool (off the loop, so it never blocks)."""
        for pending in list(self._pending.values()):
            pending.cancel()
        await asyncio.gather(*self._pending.values(), return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)
