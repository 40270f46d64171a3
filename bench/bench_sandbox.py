"""How fast the sandbox answers polls, and how long a render takes.

    .venv/bin/python bench/bench_sandbox.py [--seconds 5] [--clients 64] [--generations 200]

The server runs standalone in its own process (`python -m pipeline.sandbox`), as in a load
test, so the client's work is not counted against it. First `--generations` generations are
submitted and left to complete (render=shared, gen_time 0); then `--clients` concurrent
aiohttp workers poll them round-robin for `--seconds` over keep-alive connections, and the
answered polls per second are reported (target: above 2,000/s on 2 cores). Render times are
measured in this process by calling render_clip directly for each ratio and duration. Prints
a small table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.sandbox.render import FRAME_SIZES, ClipSpec, render_clip  # noqa: E402

PATH = "/v2/generate/video/runway/generation"
AUTH = {"Authorization": "Bearer bench"}


def start_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.sandbox", "--port", "0", "--gen-time", "0",
         "--render", "shared", "--concurrency", "10000"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    line = process.stdout.readline() if process.stdout else ""
    if "listening on" not in line:
        process.kill()
        raise SystemExit(f"the sandbox did not start: {line!r}")
    return process, line.split("listening on", 1)[1].strip()


async def submit_all(session: aiohttp.ClientSession, base: str, count: int) -> list[str]:
    async def one(n: int) -> str:
        body = {"model": "gen3a_turbo", "prompt": f"bench {n}", "duration": 5, "seed": n}
        async with session.post(base + PATH, json=body, headers=AUTH) as answer:
            return (await answer.json())["id"]

    ids = await asyncio.gather(*(one(n) for n in range(count)))
    while True:
        async with session.get(base + "/_sandbox/stats") as answer:
            if (await answer.json())["generations"]["completed"] == count:
                return list(ids)
        await asyncio.sleep(0.1)


async def poll_load(base: str, ids: list[str], clients: int, seconds: float) -> tuple[int, list[float]]:
    """(answered polls, latencies in ms) of `clients` workers polling for `seconds`."""
    connector = aiohttp.TCPConnector(limit=clients)
    latencies: list[float] = []
    done = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal done
            index = offset
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                params = {"generation_id": ids[index % len(ids)]}
                async with session.get(base + PATH, params=params, headers=AUTH) as answer:
                    await answer.read()
                    assert answer.status == 200
                latencies.append((time.perf_counter() - started) * 1000)
                done += 1
                index += clients

        await asyncio.gather(*(worker(n) for n in range(clients)))
    return done, latencies


async def measure_polls(args: argparse.Namespace) -> dict[str, float]:
    process, base = start_server()
    try:
        async with aiohttp.ClientSession() as session:
            ids = await submit_all(session, base, args.generations)
        await poll_load(base, ids, args.clients, 0.5)  # warm up connections
        answered, latencies = await poll_load(base, ids, args.clients, args.seconds)
        latencies.sort()
        return {
            "polls_per_s": answered / args.seconds,
            "p50_ms": latencies[len(latencies) // 2],
            "p99_ms": latencies[int(len(latencies) * 0.99)],
        }
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout:
            process.stdout.close()


def measure_renders(repeats: int) -> list[tuple[str, float, float, int]]:
    rows = []
    specs = [(f"{ratio} {duration}s", ClipSpec(ratio=ratio, duration=duration, prompt="bench"))
             for ratio in FRAME_SIZES for duration in (5, 10)]  # fmt: skip
    specs.append(
        ("16:9 5s first+last+mark", ClipSpec(image_url="https://a/x.jpg",
                                             last_image_url="https://a/y.jpg", watermark=True))
    )  # fmt: skip
    for label, spec in specs:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            data = render_clip(spec)
            times.append((time.perf_counter() - started) * 1000)
        rows.append((label, statistics.mean(times), max(times), len(data)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--generations", type=int, default=200)
    parser.add_argument("--render-repeats", type=int, default=3)
    args = parser.parse_args()

    polls = asyncio.run(measure_polls(args))
    renders = measure_renders(args.render_repeats)

    print(f"\nsandbox poll throughput ({os.cpu_count()} CPUs, {args.clients} clients, loopback)")
    print(f"  {'polls/s':<28}{polls['polls_per_s']:>10,.0f}   (target > 2,000)")
    print(f"  {'latency p50 / p99 (ms)':<28}{polls['p50_ms']:>10.1f} / {polls['p99_ms']:.1f}")
    print("\nrender time per clip (one thread)")
    print(f"  {'clip':<28}{'mean ms':>10}{'max ms':>10}{'bytes':>10}")
    for label, mean, worst, size in renders:
        print(f"  {label:<28}{mean:>10.0f}{worst:>10.0f}{size:>10,}")
    return 0 if polls["polls_per_s"] > 2000 else 1


if __name__ == "__main__":
    sys.exit(main())
