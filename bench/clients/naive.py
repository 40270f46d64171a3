"""The obvious async script: asyncio.gather of every job under a semaphore, fixed poll interval.

    python bench/clients/naive.py BASE_URL JOBS CONCURRENCY POLL_SECONDS OUT_DIR

Prints one JSON line: {"seconds": ...}.
"""

import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

PATH = "/v2/generate/video/runway/generation"
HEADERS = {"Authorization": "Bearer bench-key"}


async def one(session, semaphore, base_url, n, poll_s, out_dir):
    async with semaphore:
        body = {"model": "gen3a_turbo", "prompt": f"naive job {n}", "ratio": "16:9", "duration": 5, "seed": n}
        async with session.post(base_url + PATH, json=body, headers=HEADERS) as response:
            gen_id = (await response.json())["id"]
        while True:
            await asyncio.sleep(poll_s)
            async with session.get(
                base_url + PATH, params={"generation_id": gen_id}, headers=HEADERS
            ) as response:
                answer = await response.json()
            if answer["status"] not in ("queued", "generating", "waiting", "active"):
                break
        async with session.get(answer["video"][0]) as response:
            (out_dir / f"{n}.mp4").write_bytes(await response.read())


async def main() -> None:
    base_url, jobs, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    poll_s, out_dir = float(sys.argv[4]), Path(sys.argv[5])
    out_dir.mkdir(parents=True, exist_ok=True)
    semaphore = asyncio.Semaphore(concurrency)
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(session, semaphore, base_url, n, poll_s, out_dir) for n in range(jobs)))
    print(json.dumps({"seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    asyncio.run(main())
