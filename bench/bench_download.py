"""How much memory a large download adds: a 50 MB video through vidpipe's Downloader.

    .venv/bin/python bench/bench_download.py [--mb 50]

A loopback server streams an MP4-shaped file of the given size (a real ftyp box, one big mdat,
a moov); the Downloader fetches it in a fresh process, which reports its peak RSS before and
after. Target (issue #6): a 50 MB download adds under 20 MB of RSS.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import asyncio, json, resource, sys
from pathlib import Path
from aiohttp import web
from pipeline.net.download import Downloader

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

async def main(source, target):
    app = web.Application()
    app.router.add_get("/v.mp4", lambda request: web.FileResponse(source))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    before = peak()
    async with Downloader() as downloader:
        done = await downloader.fetch(f"http://127.0.0.1:{port}/v.mp4", Path(target))
    after = peak()
    await runner.cleanup()
    print(json.dumps({"before": before, "after": after, "bytes": done.size}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def mp4_shaped(path: Path, megabytes: int) -> None:
    """ftyp + a large mdat + moov: passes the Downloader's box check."""
    body = megabytes * 1024 * 1024
    with path.open("wb") as handle:
        handle.write(struct.pack(">I4s", 16, b"ftyp") + b"isom\x00\x00\x02\x00")
        handle.write(struct.pack(">I4s", body + 8, b"mdat"))
        chunk = bytes(1024 * 1024)
        for _ in range(megabytes):
            handle.write(chunk)
        handle.write(struct.pack(">I4s", 8, b"moov"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.mp4"
        mp4_shaped(source, args.mb)
        output = subprocess.run(
            [sys.executable, "-c", CHILD, str(source), str(Path(tmp) / "copy.mp4")],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    figures = json.loads(output)
    print(f"download of {figures['bytes'] / 1024 / 1024:.0f} MB: peak RSS {figures['before']:.0f} MB before, "
          f"{figures['after']:.0f} MB after, +{figures['after'] - figures['before']:.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
