"""Decoding the finished videos (their checks and posters) in child processes of low CPU priority.

Both decode video, CPU work that in a thread of the run's process holds the GIL for
milliseconds at a time, so the event loop's next submit or poll waits behind it: at default
settings, with 120 one-second generations on loopback, a submit's round trip took 50 ms of
which the service's part was 2. A child has a GIL of its own, and at nice +10 the OS gives the
cores to the loop and the downloads first. A video that crashes the decoder kills the child,
not the run: that check is left to `vidpipe qc`, and the next video gets a new child.

A child is a fresh `python` running `serve`, not a multiprocessing worker: multiprocessing's
spawn imports the parent's main script again in the child, which for a script that runs
vidpipe without a `__main__` guard would mean running it twice. It imports this vidpipe (the
parent's package folder first on its path, the current folder not on it), takes requests on
its stdin and answers on a pipe of its own (so nothing a library prints can corrupt them):
pickles with a length in front. It runs in a session of its own, so a signal for the
terminal's process group (Ctrl-C, a closed terminal) is the run's to handle; the run ends it,
and it ends by itself when the run's process is gone (its stdin closes). Where no child
starts, or a run is too small to be worth one, the decoding is done in a thread, one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from ..write.posters import extract_poster
from ..write.qc import check_video

T = TypeVar("T")

# What a child may be asked to run, by name.
FUNCTIONS: dict[str, Callable[..., Any]] = {f.__name__: f for f in (check_video, extract_poster)}
NICENESS = 10
CHILDREN = 2  # as many as a small machine's cores: at a run's end its last checks are its tail
# A child costs about 0.4 s of CPU to start (Python with PyAV, NumPy and Pillow); a run of fewer
# jobs decodes its videos (15-25 ms each) in about that, so it keeps the thread.
WORTH_A_CHILD_FROM_JOBS = 50
READY = "vidpipe media child 1"  # the child's first answer, once its imports are done
READY_WITHIN_S = 30.0
ORPHAN_CHECK_S = 1.0
LENGTH_BYTES = 8
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
CHILD_CODE = (
    "import sys\n"
    "if sys.path and sys.path[0] == '': del sys.path[0]\n"  # not a `pipeline` of the current folder
    "from pipeline.run.media import main\n"
    "main()\n"
)


class ChildDied(Exception):
    """The child ended while decoding (a decoder crash, a kill): this call has no answer."""


class MediaWorker:
    """Runs check_video and extract_poster in children (started when needed), else in a thread."""

    @classmethod
    def for_jobs(cls, jobs: int) -> MediaWorker:
        return cls(use_children=jobs >= WORTH_A_CHILD_FROM_JOBS)

    def __init__(self, use_children: bool = True) -> None:
        self._use_children = use_children
        self._child_turns = asyncio.Semaphore(CHILDREN)
        self._thread_turns = asyncio.Semaphore(1)
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._ended: list[_Child] = []  # killed, dead or failed to start: waited for at close

    @property
    def pids(self) -> list[int]:
        """The running children's process ids (none until one is needed)."""
        children = (*self._idle, *self._busy)
        return sorted(child.process.pid for child in children if child.process.returncode is None)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` in a child when it is one of FUNCTIONS, else in a thread."""
        if self._use_children and FUNCTIONS.get(function.__name__) is function:
            async with self._child_turns:
                child = await self._take() if self._use_children else None
                if child is not None:
                    return await self._call(child, function.__name__, args)
        async with self._thread_turns:
            return await asyncio.to_thread(function, *args)

    async def _take(self) -> _Child | None:
        while self._idle:
            child = self._idle.pop()
            if child.process.returncode is None:
                return child
            self._ended.append(child)  # died while idle (killed from outside)
        child = await _Child.spawn()
        if child is None:
            self._use_children = False  # this machine cannot: threads from now on
            return None
        self._busy.add(child)
        try:
            ready = await asyncio.wait_for(child.answer(), READY_WITHIN_S)
        except Exception:  # it ended, or said nothing readable in time
            ready = None
        except BaseException:  # cancelled while it started: ended (waited for at close), not left
            self._end(child)
            raise
        if ready != (True, READY):  # it cannot start (a frozen binary, a broken install)
            self._end(child)
            self._use_children = False
            return None
        self._busy.discard(child)
        return child

    async def _call(self, child: _Child, name: str, args: tuple[Any, ...]) -> Any:
        self._busy.add(child)
        try:
            succeeded, answer = await child.call(name, args)
        except BaseException:
            self._end(child)  # died, or out of step with us (cancelled mid-call)
            raise
        self._busy.discard(child)
        self._idle.append(child)
        if not succeeded:
            raise answer  # what the function raised, as it would have in a thread
        return answer

    def _end(self, child: _Child) -> None:
        self._busy.discard(child)
        self._ended.append(child)
        child.kill()

    async def close(self) -> None:
        """End the children: each reads the end of its input and exits (killed if it does not)."""
        children = [*self._idle, *self._busy, *self._ended]
        self._idle, self._busy, self._ended = [], set(), []
        await asyncio.gather(*(child.end() for child in children))


class _Child:
    def __init__(
        self, process: asyncio.subprocess.Process, answers: asyncio.StreamReader, pipe: asyncio.BaseTransport
    ) -> None:
        self.process = process
        self._answers = answers
        self._pipe = pipe

    @classmethod
    async def spawn(cls) -> _Child | None:
        loop = asyncio.get_running_loop()
        read_end, write_end = os.pipe()
        path = os.pathsep.join(filter(None, (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH"))))
        env = {**os.environ, "PYTHONPATH": path}  # the parent's vidpipe, whatever the current folder
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CHILD_CODE, str(os.getpid()), str(write_end),
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(write_end,), start_new_session=True, env=env,
            )  # fmt: skip
        except (OSError, ValueError, NotImplementedError):
            os.close(read_end)
            return None
        finally:
            os.close(write_end)  # the child's now: its end closing is an end of file here
        answers = asyncio.StreamReader()
        pipe, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(answers), os.fdopen(read_end, "rb", buffering=0)
        )
        return cls(process, answers, pipe)

    async def call(self, name: str, args: tuple[Any, ...]) -> tuple[bool, Any]:
        """(True, what the function returned) or (False, what it raised)."""
        assert self.process.stdin is not None
        request = pickle.dumps((name, args))
        try:
            self.process.stdin.write(len(request).to_bytes(LENGTH_BYTES, "big") + request)
            await self.process.stdin.drain()
            return await self.answer()
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            raise ChildDied(f"the child decoding videos ended ({error.__class__.__name__})") from None

    async def answer(self) -> tuple[bool, Any]:
        size = int.from_bytes(await self._answers.readexactly(LENGTH_BYTES), "big")
        return pickle.loads(await self._answers.readexactly(size))

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    async def end(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except asyncio.TimeoutError:
            self.kill()
            await self.process.wait()
        finally:
            self._pipe.close()


# --- the child ---


def main() -> None:
    """The child's start (CHILD_CODE): argv is the parent's pid and the descriptor to answer on."""
    parent, answers = int(sys.argv[1]), int(sys.argv[2])
    serve(parent, sys.stdin.buffer, os.fdopen(answers, "wb"))


def serve(parent: int, requests: BinaryIO, answers: BinaryIO) -> None:
    """Answer requests until the input ends or the parent is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (its own session gets none; a stray one is the run's)
    with contextlib.suppress(AttributeError, OSError):  # no os.nice on Windows
        os.nice(NICENESS)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    _send(answers, (True, READY))
    while True:
        header = requests.read(LENGTH_BYTES)
        if len(header) < LENGTH_BYTES:
            return
        name, args = pickle.loads(requests.read(int.from_bytes(header, "big")))
        try:
            answer = (True, FUNCTIONS[name](*args))
        except Exception as error:  # the caller's to judge, as in a thread
            answer = (False, error)
        try:
            _send(answers, answer)
        except Exception as error:  # an answer that does not pickle: its words do
            _send(answers, (False, RuntimeError(f"{error.__class__.__name__}: {error}")))


def _send(answers: BinaryIO, answer: tuple[bool, Any]) -> None:
    data = pickle.dumps(answer)
    answers.write(len(data).to_bytes(LENGTH_BYTES, "big") + data)
    answers.flush()


def _exit_with(parent: int) -> None:
    """Gone within a second of the run's process, even if a copy of our stdin's other end lived
    on elsewhere (a process the run started that kept it), so no end of file would come."""
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(0)
