"""The media worker (pipeline/run/media.py): videos decoded in child processes of low priority,
which a crash of the decoder cannot take the run down with, and which never outlive the run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.run.media import NICENESS, WORTH_A_CHILD_FROM_JOBS, ChildDied, MediaWorker
from pipeline.sandbox.render import ClipSpec, render_clip
from pipeline.write.posters import PosterError, extract_poster
from pipeline.write.qc import check_video

ROOT = Path(__file__).resolve().parents[1]
REQUEST = {"duration": 1, "ratio": "16:9"}
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")


@pytest.fixture
def clip(tmp_path) -> Path:
    video = tmp_path / "clip.mp4"
    video.write_bytes(render_clip(ClipSpec(seed=1, duration=1)))
    return video


def niceness(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


def ended(pid: int) -> bool:
    """Exited: gone, or a zombie its parent has not waited for yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def gone(pid: int, within_s: float = 20.0) -> bool:
    deadline = time.monotonic() + within_s
    while not ended(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_video_is_checked_in_a_child_below_the_runs_priority_with_the_same_verdict(clip, tmp_path):
    async def main():
        worker = MediaWorker(use_children=True)
        try:
            verdict = await worker.run(check_video, clip, REQUEST)
            await worker.run(extract_poster, clip, tmp_path / "poster.jpg")
            (pid,) = worker.pids
            return verdict, pid, niceness(pid)
        finally:
            await worker.close()

    verdict, pid, child_niceness = asyncio.run(main())
    assert verdict == check_video(clip, REQUEST) and verdict.qc == "passed"
    assert (tmp_path / "poster.jpg").stat().st_size > 0
    assert pid != os.getpid() and child_niceness == min(niceness(os.getpid()) + NICENESS, 19)
    assert gone(pid)  # closed with the worker


def test_what_a_child_raises_is_raised_here(tmp_path):
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("not a video")

    async def main():
        worker = MediaWorker(use_children=True)
        try:
            with pytest.raises(PosterError, match="cannot decode"):
                await worker.run(extract_poster, not_a_video, tmp_path / "poster.jpg")
            return worker.pids
        finally:
            await worker.close()

    assert len(asyncio.run(main())) == 1  # the child lives on


def test_a_child_that_dies_fails_its_call_only_and_the_next_call_gets_a_new_one(tmp_path, clip):
    long_clip = tmp_path / "long.mp4"
    long_clip.write_bytes(render_clip(ClipSpec(seed=2, duration=10)))

    async def main():
        worker = MediaWorker(use_children=True)
        try:
            await worker.run(check_video, clip, REQUEST)
            (first,) = worker.pids
            check = asyncio.create_task(worker.run(check_video, long_clip, REQUEST))
            for _ in range(5):  # the request is on its way; decoding ten seconds takes far longer
                await asyncio.sleep(0)
            os.kill(first, signal.SIGKILL)  # as a decoder crashing on a hostile file would end it
            with pytest.raises(ChildDied):
                await check
            verdict = await worker.run(check_video, clip, REQUEST)
            return first, worker.pids, verdict
        finally:
            await worker.close()

    first, now, verdict = asyncio.run(main())
    assert verdict.qc == "passed" and len(now) == 1 and now[0] != first


def test_a_child_killed_while_idle_is_replaced_before_its_next_call(clip):
    async def main():
        worker = MediaWorker(use_children=True)
        try:
            await worker.run(check_video, clip, REQUEST)
            (first,) = worker.pids
            os.kill(first, signal.SIGKILL)
            while first in worker.pids:  # until its exit is noticed
                await asyncio.sleep(0.05)
            verdict = await worker.run(check_video, clip, REQUEST)
            return first, worker.pids, verdict
        finally:
            await worker.close()

    first, now, verdict = asyncio.run(main())
    assert verdict.qc == "passed" and now != [first]


def test_small_runs_decode_in_a_thread(clip):
    async def children_after_one_check(jobs: int) -> int:
        worker = MediaWorker.for_jobs(jobs)
        try:
            await worker.run(check_video, clip, REQUEST)
            return len(worker.pids)
        finally:
            await worker.close()

    assert asyncio.run(children_after_one_check(WORTH_A_CHILD_FROM_JOBS - 1)) == 0
    assert asyncio.run(children_after_one_check(WORTH_A_CHILD_FROM_JOBS)) == 1


def test_the_child_is_gone_soon_after_the_run_is_killed(clip):
    """kill -9 closes nothing the child could notice in time: it watches its parent instead."""
    script = textwrap.dedent(
        f"""
        import asyncio, time
        from pipeline.run.media import MediaWorker
        from pipeline.write.qc import check_video
        async def main():
            worker = MediaWorker(use_children=True)
            await worker.run(check_video, {str(clip)!r}, {REQUEST!r})
            print(worker.pids[0], flush=True)
            time.sleep(60)
        asyncio.run(main())
        """
    )  # no __main__ guard, as a user's script may have none
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    if not gone(child):
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent")


def test_where_no_child_can_start_the_videos_are_decoded_in_a_thread(clip, monkeypatch):
    """A frozen binary (sys.executable is not a Python that takes -m) never says it is ready."""
    monkeypatch.setattr(sys, "executable", "/bin/false")

    async def main():
        worker = MediaWorker(use_children=True)
        try:
            verdict = await worker.run(check_video, clip, REQUEST)
            return verdict, worker.pids
        finally:
            await worker.close()

    verdict, pids = asyncio.run(main())
    assert verdict.qc == "passed" and pids == []


def test_a_child_cancelled_while_it_starts_does_not_outlive_the_worker(clip):
    async def main():
        worker = MediaWorker(use_children=True)
        check = asyncio.create_task(worker.run(check_video, clip, REQUEST))
        while not worker.pids:  # spawned; importing PyAV and NumPy for a few tenths of a second
            await asyncio.sleep(0.005)
        (pid,) = worker.pids
        check.cancel()
        with pytest.raises(asyncio.CancelledError):
            await check
        await worker.close()
        return pid

    assert gone(asyncio.run(main()), within_s=0)
