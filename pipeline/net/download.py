"""Downloading finished videos: streamed, checked, hashed, and renamed into place only when whole.

The video URL is a signed link on a CDN host, not the API host, so it is fetched by a session
that has never seen the API key. Memory stays flat whatever the file size (chunks go straight
to a temporary file beside the target). A file counts as downloaded only if it is non-empty,
has the size the server announced, and is a whole MP4: its top-level boxes start with `ftyp`,
include `moov`, and end exactly at the end of the file. (A CDN can send a short file with
headers that agree with it; only the boxes show it is cut.)

What a hostile CDN cannot do:
- make the download hang: it is held to a pace (pace.py), so a file of S bytes must be whole
  within 60 s + S / 32 kB/s, and a drip-fed or endless body is cut off;
- fill the disk: the video is asked for uncompressed (`Accept-Encoding: identity`), a
  compressed answer is refused before its body is read, and bytes are counted against the
  announced size as they arrive: the first byte past it stops the download;
- send it elsewhere: redirects are followed here, hop by hop, and every hop meets the same
  rules as the URL the poll gave (https only, plain http only on loopback; no API key in it).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from ..errors import DownloadError, ExpiredUrlError, InputError
from .pace import DOWNLOAD_PACE, Pace
from .untrusted import Untrusted

CHUNK_BYTES = 256 * 1024
MAX_VIDEO_BYTES = 2 * 1024**3
EXPIRED_STATUSES = (401, 403, 404, 410)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str = "video URL", untrusted: Untrusted | None = None) -> None:
    """https everywhere; plain http only to this machine (local servers such as the sandbox).
    With `untrusted`, a URL that carries the API key is refused too (and never shown)."""
    untrusted = untrusted or Untrusted(None)
    if untrusted.carries_key(url):
        raise DownloadError(f"refusing the {what}: it carries the API key")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return
    shown = untrusted.text(url)[:80]
    raise DownloadError(f"refusing the {what} {shown!r}: expected https (plain http only on loopback)")


def target_path(folder: Path, name: str) -> Path:
    """`name` inside `folder`, refusing anything that would land elsewhere."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise InputError(f"the file name {name!r} is not allowed; expected a plain file name")
    path = (folder / name).resolve()
    if path.parent != folder.resolve():
        raise InputError(f"the file name {name!r} would leave the output folder")
    return path


class Downloader:
    """Fetches videos with at most `parallel` downloads at once."""

    def __init__(
        self,
        parallel: int = 8,
        timeout: aiohttp.ClientTimeout | None = None,
        max_bytes: int = MAX_VIDEO_BYTES,
        *,
        pace: Pace = DOWNLOAD_PACE,
        untrusted: Untrusted | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._slots = asyncio.Semaphore(parallel)
        self.max_bytes = max_bytes
        self.pace = pace
        # The API client's cleaner: it knows the key, to refuse URLs that carry it.
        self.untrusted = untrusted or Untrusted(None)
        self._clock = clock
        # No fixed total limit: the pace bounds a download by its size instead.
        self._timeout = timeout or aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=60)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Downloader:
        # Bytes on the wire are bytes on disk: nothing is inflated (see the module doc).
        self._session = aiohttp.ClientSession(timeout=self._timeout, auto_decompress=False)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def fetch(self, url: str, path: Path, announced_size: int | None = None) -> Downloaded:
        check_url(url, untrusted=self.untrusted)
        assert self._session is not None, "use Downloader inside 'async with'"
        async with self._slots:
            return await self._fetch(url, path, announced_size)

    async def _get(self, url: str) -> aiohttp.ClientResponse:
        """The answer at the end of `url`'s redirects, each hop checked like the first URL."""
        for _ in range(MAX_REDIRECTS + 1):
            response = await self._session.get(
                url, allow_redirects=False, headers={"Accept-Encoding": "identity"}
            )
            if response.status not in REDIRECT_STATUSES:
                return response
            location = response.headers.get("Location")
            response.release()
            if not location:
                raise DownloadError(f"the video download answered HTTP {response.status} with no Location")
            try:
                url = str(response.url.join(URL(location)))
            except ValueError:
                shown = self.untrusted.text(location)[:80]
                raise DownloadError(f"the video download was redirected to {shown!r}, not a URL") from None
            check_url(url, "redirect of the video URL to", self.untrusted)
        raise DownloadError(f"the video download was redirected more than {MAX_REDIRECTS} times")

    async def _fetch(self, url: str, path: Path, announced_size: int | None) -> Downloaded:
        # Not atomic.replace_atomically: its write() is a blocking call, and this one streams
        # chunk by chunk on the event loop (and fsyncs off it). The fixed name also means a
        # download cut off by a kill is overwritten by the next attempt rather than left behind.
        temporary = path.with_name(f".{path.name}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            started = self._clock()
            async with await self._get(url) as response:
                if response.status in EXPIRED_STATUSES:
                    raise ExpiredUrlError(
                        f"the video URL was refused (HTTP {response.status}); it has expired"
                    )
                if response.status != 200:
                    raise DownloadError(f"the video download answered HTTP {response.status}")
                encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise DownloadError(
                        f"the video came compressed ({self.untrusted.text(encoding)[:40]}); "
                        "it was asked for uncompressed (Accept-Encoding: identity)"
                    )
                expected = response.content_length or announced_size
                if expected is not None and expected > self.max_bytes:
                    raise DownloadError(
                        f"the video is {expected:,} bytes; at most {self.max_bytes:,} are accepted"
                    )
                limit = expected if expected is not None else self.max_bytes
                head = b""
                with temporary.open("wb") as handle:
                    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                        if len(head) < 8:
                            head += chunk[:8]
                            if len(head) >= 8 and not _looks_like_mp4(head):
                                raise DownloadError("the download is not an MP4 video")
                        size += len(chunk)
                        if size > limit:
                            raise DownloadError(
                                f"the download passed its announced {limit:,} bytes; stopped"
                                if expected is not None
                                else f"the video passed {self.max_bytes:,} bytes; stopped"
                            )
                        slow = self.pace.problem(size, self._clock() - started)
                        if slow:
                            raise DownloadError(f"the video download was {slow}; stopped")
                        digest.update(chunk)
                        handle.write(chunk)
                    handle.flush()
                    # On disk before it counts as downloaded; fsync can take milliseconds, off the loop.
                    await asyncio.to_thread(os.fsync, handle.fileno())
            if size == 0:
                raise DownloadError("the download was empty")
            if not _looks_like_mp4(head):
                raise DownloadError("the download is not an MP4 video")
            if expected is not None and size != expected:
                raise DownloadError(f"the download stopped short: {size:,} of {expected:,} bytes")
            check_mp4_boxes(temporary)
            os.replace(temporary, path)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            temporary.unlink(missing_ok=True)
            reason = self.untrusted.text(str(error) or type(error).__name__)
            raise DownloadError(f"the video download failed: {reason}") from None
        except OSError as error:  # the disk, not the network: full, read-only, name too long
            temporary.unlink(missing_ok=True)
            raise DownloadError(f"cannot write the video to {path}: {error.strerror or error}") from None
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return Downloaded(path, size, digest.hexdigest())


def check_mp4_boxes(path: Path) -> None:
    """Raise DownloadError unless the top-level MP4 boxes cover the file exactly and hold a moov."""
    size = path.stat().st_size
    kinds: set[bytes] = set()
    offset = 0
    with path.open("rb") as handle:
        while offset < size:
            handle.seek(offset)
            header = handle.read(8)
            if len(header) < 8:
                raise DownloadError(
                    f"the MP4 is cut inside a box header at byte {offset:,}: the download is short"
                )
            box_size, kind = struct.unpack(">I4s", header)
            if box_size == 1:  # a 64-bit size follows the type
                box_size = struct.unpack(">Q", handle.read(8))[0]
            elif box_size == 0:  # the box runs to the end of the file
                box_size = size - offset
            if box_size < 8:
                raise DownloadError(f"the MP4 has a broken box at byte {offset:,}")
            kinds.add(kind)
            offset += box_size
    if offset != size:
        raise DownloadError(f"the MP4 is short: its boxes need {offset:,} bytes, the file has {size:,}")
    if b"moov" not in kinds:
        raise DownloadError("the MP4 has no moov box: it cannot be played")


def _looks_like_mp4(head: bytes) -> bool:
    return len(head) >= 8 and head[4:8] == b"ftyp"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()
