"""Where finished videos go: fetched into the run's video folder and, when output.dir is a URL,
uploaded to the store (the local copy deleted) before the job is marked completed. Posters (the
report's first frames) are made here too, and the automatic checks of each video (write/qc.py);
neither a poster nor a check ever fails a paid job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..net.download import Downloaded, Downloader
from ..write.posters import POSTER_DIR, extract_poster, poster_path_for
from ..write.qc import check_video
from ..write.storage import Store
from .ledger import Checks
from .media import MediaWorker
from .outcomes import Completed


class Publisher:
    def __init__(
        self,
        downloader: Downloader,
        video_dir: Path,
        store: Store | None = None,
        media: MediaWorker | None = None,
    ):
        self._downloader = downloader
        self._media = media or MediaWorker(use_children=False)
        self._video_dir = video_dir
        # Where finished videos are published; None: they stay in video_dir (a local run).
        self.store = store
        self._published: dict[str, int] | None = None  # relative path -> size, of videos in the store
        # Decoding is CPU work, and a still for the report or a check must never take the event
        # loop's core from the paid videos: the media worker decodes below the run's priority,
        # or one video at a time in a thread.

    async def fetch(self, url: str, filename: str, size: int | None) -> Downloaded:
        """The checked video in the video folder (DownloadError, ExpiredUrlError otherwise)."""
        return await self._downloader.fetch(url, self._video_dir / filename, size)

    def relative(self, video: Path) -> Path:
        """Where the ledger records a video: from the output folder."""
        return video.relative_to(self._video_dir.parent)

    async def after_completed(self, completed: Completed) -> None:
        """What follows a completed job and is not part of its work: the report's poster (a run
        publishing to a store made it in `publish`)."""
        if self.store is None:
            await self._poster(completed.video, completed.relative)

    async def check(self, video: Path, request: Mapping[str, Any]) -> Checks | None:
        """The automatic checks of a fetched video, decoded by the media worker. None when the
        checking itself broke (`vidpipe qc` checks the video later): a check never fails a job."""
        try:
            verdict = await self._media.run(check_video, video, dict(request))
        except Exception:
            return None
        return Checks(verdict.qc, verdict.problems)

    def video_missing(self, row: dict[str, Any]) -> bool:
        """A completed job's video is not where it was put (or has another size): fetch it again."""
        if self.store is None:
            path = self._video_dir.parent / (row["path"] or "")
            return not row["path"] or not path.is_file() or path.stat().st_size != row["bytes"]
        if self._published is None:  # one listing of the store for a whole work list
            self._published = self.store.sizes(self._video_dir.name)
        return not row["path"] or self._published.get(Path(row["path"]).as_posix()) != row["bytes"]

    async def _poster(self, video: Path, relative: Path) -> None:
        """The report's still of the first frame. A poster never fails a paid job, whatever goes
        wrong (the report extracts missing posters again)."""
        poster = poster_path_for(self._video_dir.parent, relative)
        with contextlib.suppress(Exception):
            await self._media.run(extract_poster, video, poster)

    async def publish(self, video: Path, relative: Path) -> None:
        """Poster first (it needs the video), then the video to the store (its local copy goes),
        then the poster (its copy stays for the report). Only then is the job completed. Without
        a store (a local run) the video is already in place: nothing to do."""
        if self.store is None:
            return
        await self._poster(video, relative)
        store, poster = self.store, poster_path_for(self._video_dir.parent, relative)
        await asyncio.to_thread(store.publish, video, relative.as_posix(), keep=False)
        if poster.is_file():
            with contextlib.suppress(StoreError, OSError):  # the report publishes it later
                await asyncio.to_thread(store.publish, poster, f"{POSTER_DIR}/{poster.name}")
