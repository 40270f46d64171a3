"""The service's model feeds, read without a key and cached on disk: prices and deprecations.

Two GETs, neither needing a key (so none is sent): `/v1/models?output_modalities=video&
include=pricing` (the live catalogue with prices) and `/v1/models/deprecations`. Each answer
is kept in the cache folder with its ETag; the next read sends `If-None-Match` and a 304 reuses
the kept copy. Where the service cannot be reached, fails, or lacks the route (404, an older
service), the kept copy stands in, and where there is none, the caller's shipped snapshot;
`Feed.problem` says why, for the one line the user sees.

Bounded: each GET has `TIMEOUT_S` in all and an answer over `MAX_BYTES` is refused. What comes
back is parsed JSON, untrusted: catalogue/pricing.py and catalogue/deprecations.py read it.

The cache folder is $VIDPIPE_CACHE_DIR, else $XDG_CACHE_HOME/vidpipe, else ~/.cache/vidpipe;
one file per URL. VIDPIPE_OFFLINE=1 sends nothing: the kept copy or the snapshot is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..write.atomic import replace_atomically
from .untrusted import Untrusted

if TYPE_CHECKING:  # imported when a feed is asked: `vidpipe models` without --refresh needs none
    import aiohttp

CATALOGUE_PATH = "/v1/models?output_modalities=video&include=pricing"
DEPRECATIONS_PATH = "/v1/models/deprecations"
TIMEOUT_S = 10.0
MAX_BYTES = 16 * 1024 * 1024  # the whole catalogue with prices is about 1.3 MB
USER_AGENT = "vidpipe (model feeds)"


@dataclass(frozen=True)
class Feed:
    """One feed's answer (parsed JSON, or None) and where it came from."""

    answer: Any
    origin: str  # "live", "cached" or "none"
    fetched_at: float | None = None  # when the kept copy was last confirmed by the service
    problem: str | None = None  # why it is not live

    def age(self, now: float) -> str:
        """How old the copy is, for a person: "3 h ago", "2 days ago"."""
        return ago(now - (self.fetched_at or now))


def cache_dir() -> Path:
    if os.environ.get("VIDPIPE_CACHE_DIR"):
        return Path(os.environ["VIDPIPE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vidpipe"


def offline() -> bool:
    return os.environ.get("VIDPIPE_OFFLINE", "").strip() not in ("", "0")


def read_feeds(base_url: str, paths: tuple[str, ...], refresh: bool = True) -> list[Feed]:
    """Each path's feed from `base_url`: asked live when `refresh` (and not offline), else kept."""
    if not refresh or offline():
        why = "VIDPIPE_OFFLINE is set" if refresh else None
        return [_kept(base_url + p, why or "not asked") for p in paths]
    return asyncio.run(_fetch_all(base_url, paths))


def cached_feed(base_url: str, path: str) -> Feed:
    """The kept copy of one feed, without asking the service."""
    return _kept(base_url + path, "not asked")


async def _fetch_all(base_url: str, paths: tuple[str, ...]) -> list[Feed]:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": USER_AGENT}) as session:
        return list(await asyncio.gather(*(_fetch(session, base_url + p) for p in paths)))


async def _fetch(session: aiohttp.ClientSession, url: str) -> Feed:
    import aiohttp

    kept = _read_cache(url)
    headers = {"Accept": "application/json"}
    if kept and isinstance(kept.get("etag"), str):
        headers["If-None-Match"] = kept["etag"]
    try:
        async with session.get(url, headers=headers, allow_redirects=False) as response:
            if response.status == 304 and kept:
                _write_cache(url, kept["etag"], kept["answer"])
                return Feed(kept["answer"], "live", time.time())
            if response.status == 404:
                return _kept(url, f"the service has no {_path(url)} (404)")
            if response.status != 200:
                return _kept(url, f"{_path(url)} answered {response.status}")
            body = await response.content.read(MAX_BYTES + 1)
            etag = response.headers.get("ETag")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as error:
        # aiohttp's "Cannot connect to host h:p ssl:default [...]": the host and port say enough.
        said = Untrusted(None).text(str(error) or type(error).__name__).split(" ssl:")[0][:160]
        return _kept(url, f"the service could not be reached: {said}")
    if len(body) > MAX_BYTES:
        return _kept(url, f"{_path(url)} answered more than {MAX_BYTES:,} bytes")
    try:
        answer = json.loads(body)
    except (ValueError, RecursionError):
        return _kept(url, f"{_path(url)} answered something other than JSON")
    _write_cache(url, etag if etag and len(etag) <= 200 else None, answer)
    return Feed(answer, "live", time.time())


def _kept(url: str, problem: str) -> Feed:
    kept = _read_cache(url)
    if kept is None:
        return Feed(None, "none", None, problem)
    return Feed(kept["answer"], "cached", kept["fetched_at"], problem)


def _cache_file(url: str) -> Path:
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]
    return cache_dir() / "models" / f"{digest}.json"


def _read_cache(url: str) -> dict[str, Any] | None:
    path = _cache_file(url)
    try:
        if path.stat().st_size > MAX_BYTES * 2:
            return None
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    fetched_at = kept.get("fetched_at") if isinstance(kept, dict) else None
    if kept.get("url") != url or not isinstance(fetched_at, int | float) or "answer" not in kept:
        return None
    return kept


def _write_cache(url: str, etag: str | None, answer: Any) -> None:
    record = {"url": url, "etag": etag, "fetched_at": time.time(), "answer": answer}
    text = json.dumps(record)
    # A cache that cannot be written costs the next run a full download, nothing more.
    with contextlib.suppress(OSError):
        replace_atomically(_cache_file(url), lambda tmp: tmp.write_text(text, encoding="utf-8"), 0o644)


def _path(url: str) -> str:
    path = url.split("://", 1)[-1]
    return "/" + path.split("/", 1)[1].split("?", 1)[0] if "/" in path else url


def ago(seconds: float) -> str:
    """A duration as "just now", "5 min ago", "3 h ago", "2 days ago"."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"
