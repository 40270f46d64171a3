"""WebDataset shards: the exported videos as tar files of samples, for streaming loaders.

Each sample is two members sharing a key, `NNNNNN.mp4` (the video) and `NNNNNN.json` (its
metadata: the same fields as a line of metadata.jsonl), the key counting samples from 0 in
dataset order. Shards are `shard-NNNNNN.tar` of `shard_size` samples each (the last may hold
fewer). Each is written to a temporary file and renamed into place, with fixed member times and
owners, so the same export gives the same bytes; shards an earlier, larger export left are
removed.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .atomic import replace_atomically

SHARD_SIZE = 1000
SHARD_PATTERN = "shard-{:06d}.tar"


def write_shards(samples: Sequence[tuple[Path, dict[str, Any]]], target: Path, shard_size: int) -> list[Path]:
    """Write (video, metadata) samples into shards in `target`; the shards' paths."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for number, start in enumerate(range(0, len(samples), shard_size)):
        path = target / SHARD_PATTERN.format(number)
        chunk = list(enumerate(samples[start : start + shard_size], start=start))
        replace_atomically(path, lambda temporary, chunk=chunk: _write_tar(temporary, chunk))
        written.append(path)
    for stale in set(target.glob("shard-*.tar")) - set(written):
        stale.unlink(missing_ok=True)
    return written


def _write_tar(path: Path, samples: Iterable[tuple[int, tuple[Path, dict[str, Any]]]]) -> None:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for index, (video, metadata) in samples:
            key = f"{index:06d}"
            with video.open("rb") as handle:
                tar.addfile(_member(f"{key}.mp4", video.stat().st_size), handle)
            data = json.dumps(metadata, ensure_ascii=False, sort_keys=True).encode("utf-8")
            tar.addfile(_member(f"{key}.json", len(data)), io.BytesIO(data))


def _member(name: str, size: int) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.size, member.mode, member.mtime = size, 0o644, 0
    return member
