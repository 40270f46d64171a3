"""Helpers for the sandbox tests: a small synchronous client, decoding, test pictures."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import av
import numpy as np
import requests
from PIL import Image

from pipeline.sandbox.server import LEGACY_PATH, UNIVERSAL_PATH

KEY = "sk-sandbox-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
FINAL = {"completed", "error", "failed", "unknown"}


class Client:
    """A tiny synchronous client of one sandbox (tests only)."""

    def __init__(self, handle: Any, session: requests.Session):
        self.handle = handle
        self.base_url = handle.base_url
        self.session = session

    def path(self, endpoint: str) -> str:
        return self.base_url + (LEGACY_PATH if endpoint == "legacy" else UNIVERSAL_PATH)

    def submit(self, body: dict[str, Any], endpoint: str = "legacy", **kw: Any) -> requests.Response:
        headers = {**AUTH, **kw.pop("headers", {})}
        return self.session.post(self.path(endpoint), json=body, headers=headers, timeout=10, **kw)

    def poll(self, gen_id: str, endpoint: str = "legacy", **kw: Any) -> requests.Response:
        headers = {**AUTH, **kw.pop("headers", {})}
        params = {"generation_id": gen_id}
        return self.session.get(self.path(endpoint), params=params, headers=headers, timeout=10, **kw)

    def wait(self, gen_id: str, endpoint: str = "legacy", timeout: float = 20) -> dict[str, Any]:
        """Poll until the status is final; returns the last body."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.poll(gen_id, endpoint).json()
            if body["status"] in FINAL or time.monotonic() > deadline:
                return body
            time.sleep(0.02)

    def generate(self, body: dict[str, Any], endpoint: str = "legacy") -> dict[str, Any]:
        answer = self.submit(body, endpoint)
        assert answer.status_code in (200, 201), answer.text
        data = answer.json()
        return self.wait(data.get("id") or data["generation_id"], endpoint)

    def download(self, url: str) -> bytes:
        response = self.session.get(url, timeout=10)
        assert response.status_code == 200, response.text
        return response.content

    def stats(self) -> dict[str, Any]:
        return self.session.get(self.base_url + "/_sandbox/stats", timeout=10).json()


def video_url(body: dict[str, Any]) -> str:
    """The URL out of any documented `video` shape."""
    video = body["video"]
    if isinstance(video, list):
        video = video[0]
    if isinstance(video, dict):
        video = video["url"]
    assert isinstance(video, str)
    return video


def decode(data: bytes) -> tuple[list[np.ndarray], float]:
    """(RGB frames, duration in seconds) of an MP4."""
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        duration = container.duration / 1_000_000
    return frames, duration


def data_uri(picture: np.ndarray, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    Image.fromarray(picture.astype(np.uint8)).save(buffer, format=fmt)
    mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}[fmt]
    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def blocks(width: int, height: int, colours: list[tuple[int, int, int]]) -> np.ndarray:
    """A picture of vertical colour blocks (smooth enough for H.264 to keep well)."""
    picture = np.zeros((height, width, 3), np.uint8)
    step = width // len(colours)
    for index, colour in enumerate(colours):
        picture[:, index * step : (index + 1) * step] = colour
    picture[:, len(colours) * step :] = colours[-1]
    return picture


GEN3 = {"model": "gen3a_turbo", "prompt": "a red kite over the sea", "duration": 5, "seed": 1}
