"""The reference approach from the API docs: one job at a time with requests; POST, poll, download.

    python bench/clients/reference.py BASE_URL JOBS POLL_SECONDS OUT_DIR

The docs' example polls every 10 s against a generation of about 25 s; the benchmark scales the
interval with the sandbox's generation time. Prints one JSON line: {"seconds": ...}.
"""

import json
import sys
import time
from pathlib import Path

import requests

PATH = "/v2/generate/video/runway/generation"
HEADERS = {"Authorization": "Bearer bench-key", "Content-Type": "application/json"}


def main() -> None:
    base_url, jobs, poll_s, out_dir = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4])
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for n in range(jobs):
        body = {
            "model": "gen3a_turbo",
            "prompt": f"reference job {n}",
            "ratio": "16:9",
            "duration": 5,
            "seed": n,
        }
        gen_id = requests.post(base_url + PATH, json=body, headers=HEADERS, timeout=60).json()["id"]
        while True:
            time.sleep(poll_s)
            answer = requests.get(
                base_url + PATH, params={"generation_id": gen_id}, headers=HEADERS, timeout=60
            ).json()
            if answer["status"] not in ("queued", "generating", "waiting", "active"):
                break
        video = requests.get(answer["video"][0], timeout=60)
        (out_dir / f"{n}.mp4").write_bytes(video.content)
    print(json.dumps({"seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
