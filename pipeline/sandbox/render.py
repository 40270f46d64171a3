"""Real, small, deterministic H.264 MP4s: what a completed sandbox generation holds.

`render_clip(spec)` is a pure function of the request (model, prompt, ratio, duration, seed,
watermark, first and last image): the same spec gives byte-identical bytes (libx264 with one
thread, no timestamps written), another seed gives visibly different pictures. It holds the
GIL only between numpy and encoder calls, so a thread pool can run it beside the server.

The picture: a moving two-colour band pattern and three discs. The prompt picks the colours,
the band direction and the speed; the seed picks the hue shift and where the discs go. A
first image is frame 0 and fades into the pattern; the pattern fades into a last image, the
last frame; with both, the clip fades from one into the other with a disc moving across. An https:// image
cannot be fetched offline, so a placeholder picture derived from the URL stands in for it.
"""

from __future__ import annotations

import base64
import binascii
import colorsys
import hashlib
import io
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from .contract import DEFAULT_DURATION, DEFAULT_RATIO

# Small frames of the right ratio, even sides (yuv420p needs them): every ratio a published
# model takes (tests/sandbox/test_sandbox_videos.py checks the list against the catalogue).
FRAME_SIZES: dict[str, tuple[int, int]] = {
    "16:9": (320, 180),
    "9:16": (180, 320),
    "4:3": (240, 180),
    "3:4": (180, 240),
    "1:1": (180, 180),
    "21:9": (420, 180),
    "9:21": (180, 420),
    "2:1": (360, 180),
    "3:2": (270, 180),
    "2:3": (180, 270),
}
CRF = "23"  # close enough that a decoded first/last frame matches the given picture
PRESET = "veryfast"  # several times smaller files than ultrafast, a little slower
WATERMARK_TEXT = "vidpipe sandbox"
MIN_IMAGE_RATIO, MAX_IMAGE_RATIO = 0.5, 2.0


class RenderError(ValueError):
    """The request cannot be rendered (e.g. its image is not a picture); str() says why."""


@dataclass(frozen=True)
class ClipSpec:
    """Everything that decides a clip's bytes."""

    ratio: str = DEFAULT_RATIO
    duration: int = DEFAULT_DURATION
    seed: int = 0
    prompt: str = ""
    model: str = "gen3a_turbo"
    watermark: bool = False
    image_url: str | None = None
    last_image_url: str | None = None
    fps: int = 8

    @property
    def size(self) -> tuple[int, int]:
        return FRAME_SIZES[self.ratio]

    def key(self) -> str:
        """A short digest identifying the bytes this spec renders to."""
        text = repr(
            (
                self.ratio,
                self.duration,
                self.seed,
                self.prompt,
                self.model,
                self.watermark,
                self.image_url,
                self.last_image_url,
                self.fps,
            )
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def render_clip(spec: ClipSpec) -> bytes:
    """The MP4 for `spec`. Raises RenderError when an image cannot be used."""
    width, height = spec.size
    first = load_picture(spec.image_url, width, height) if spec.image_url else None
    last = load_picture(spec.last_image_url, width, height) if spec.last_image_url else None
    scene = _Scene(spec, width, height)
    mark = _watermark(width, height) if spec.watermark else None
    count = spec.duration * spec.fps
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        # One encoder thread, no threaded lookahead and no B-frames: with any of them x264's
        # output varied with thread timing (measured: renders in a pool), and the same request
        # must give the same bytes. B-frames cost some size; clips stay at 20-60 KB.
        stream.options = {
            "preset": PRESET,
            "crf": CRF,
            "threads": "1",
            "x264-params": "sync-lookahead=0:bframes=0",
        }
        for index in range(count):
            t = index / (count - 1)
            picture = _compose(scene.frame(t), first, last, t, scene)
            if mark is not None:
                picture = picture * (1.0 - mark) + 255.0 * mark
            frame = av.VideoFrame.from_ndarray(
                np.clip(picture + 0.5, 0, 255).astype(np.uint8), format="rgb24"
            )
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def _compose(
    base: np.ndarray, first: np.ndarray | None, last: np.ndarray | None, t: float, scene: _Scene
) -> np.ndarray:
    # Cross-fades are short and the pictures hold still around them: a fade changes every
    # pixel of every frame, which costs the encoder far more bits than motion does.
    if first is not None and last is not None:
        weight = _ramp(t, 0.3, 0.7)
        blend = first * (1.0 - weight) + last * weight
        if 0.0 < t < 1.0:
            scene.disc_over(blend, t)
        return blend
    if first is not None:
        weight = _ramp(t, 0.1, 0.5)
        return first * (1.0 - weight) + base * weight
    if last is not None:
        weight = _ramp(t, 0.5, 0.9)
        return base * (1.0 - weight) + last * weight
    return base


def _ramp(t: float, start: float, end: float) -> float:
    return min(1.0, max(0.0, (t - start) / (end - start)))


class _Scene:
    """The procedural picture of a request: colours and motion from the prompt and seed."""

    LUT_SIZE = 1024

    def __init__(self, spec: ClipSpec, width: int, height: int):
        prompt_digest = hashlib.sha256(spec.prompt.encode("utf-8")).digest()
        seed_digest = hashlib.sha256(f"seed:{spec.seed}".encode()).digest()
        hue_shift = seed_digest[0] / 255.0
        self.colours = [
            _colour((prompt_digest[i] / 255.0 + hue_shift) % 1.0, 0.55 + prompt_digest[i + 1] / 600)
            for i in (0, 2, 4)
        ]
        angle = prompt_digest[6] / 255.0 * 2 * np.pi
        self.speed = 0.25 + prompt_digest[7] / 255.0
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        phase = (xs * np.cos(angle) + ys * np.sin(angle)) / max(width, height)
        # The band weight is a table lookup: one gather per frame instead of a sine per pixel.
        self.phase_index = (phase * self.LUT_SIZE).astype(np.int64) % self.LUT_SIZE
        steps = np.arange(self.LUT_SIZE, dtype=np.float32) / self.LUT_SIZE
        self.weight_lut = (0.5 + 0.5 * np.sin(2 * np.pi * steps)).astype(np.float32)
        rng = np.random.default_rng(int.from_bytes(seed_digest[:8], "big"))
        self.discs = [
            (
                rng.uniform(0, width),
                rng.uniform(0, height),
                rng.uniform(-width, width) * self.speed,
                rng.uniform(-height, height) * self.speed,
                rng.uniform(height * 0.08, height * 0.2),
                self.colours[k % 3][::-1].copy(),
            )
            for k in range(3)
        ]
        self.width, self.height = width, height

    def frame(self, t: float) -> np.ndarray:
        shift = int(t * self.speed * self.LUT_SIZE)
        weight = self.weight_lut[(self.phase_index + shift) % self.LUT_SIZE][..., None]
        c0, c1 = self.colours[0], self.colours[1]
        picture = c0 + (c1 - c0) * weight
        for k in range(len(self.discs)):
            self._disc(picture, k, t)
        return picture

    def disc_over(self, picture: np.ndarray, t: float) -> None:
        self._disc(picture, 0, t)

    def _disc(self, picture: np.ndarray, k: int, t: float) -> None:
        x0, y0, vx, vy, radius, colour = self.discs[k]
        cx = (x0 + vx * t) % self.width
        cy = (y0 + vy * t) % self.height
        # Only the disc's bounding box is touched.
        top, bottom = max(0, int(cy - radius)), min(self.height, int(cy + radius) + 1)
        left, right = max(0, int(cx - radius)), min(self.width, int(cx + radius) + 1)
        ys, xs = np.ogrid[top:bottom, left:right]
        inside = (xs - cx) ** 2 + (ys - cy) ** 2 < radius**2
        picture[top:bottom, left:right][inside] = colour


def _colour(hue: float, saturation: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue, min(saturation, 1.0), 0.9), dtype=np.float32) * 255


def load_picture(ref: str, width: int, height: int) -> np.ndarray:
    """The image named by `ref` as a float RGB array of width x height (centre-cropped)."""
    if not ref.startswith("data:"):
        return np.asarray(placeholder_picture(ref, width, height), dtype=np.float32)
    image = _decode_data_uri(ref)
    ratio = image.width / image.height
    if not MIN_IMAGE_RATIO <= ratio <= MAX_IMAGE_RATIO:
        raise RenderError(
            f"the image is {image.width}x{image.height}; expected a width/height ratio "
            f"between {MIN_IMAGE_RATIO} and {MAX_IMAGE_RATIO}"
        )
    image = _cover(image.convert("RGB"), width, height)
    return np.asarray(image, dtype=np.float32)


def _decode_data_uri(ref: str) -> Image.Image:
    try:
        payload = base64.b64decode(ref.partition(",")[2], validate=True)
        image = Image.open(io.BytesIO(payload))
        image.load()
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError):
        raise RenderError("the data URI does not hold a readable JPEG, PNG or WebP image") from None
    return image


def _cover(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover width x height, then crop the centre (no stretching, no borders)."""
    scale = max(width / image.width, height / image.height)
    resized = image.resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))),
        Image.Resampling.BICUBIC,
    )
    left = (resized.width - width) // 2
    top = (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def placeholder_picture(url: str, width: int, height: int) -> Image.Image:
    """A picture derived from `url` alone: the same URL always gives the same picture."""
    digest = hashlib.sha256(url.encode("utf-8")).digest()
    back = tuple(int(v) for v in _colour(digest[0] / 255, 0.35))
    stripe = tuple(int(v) for v in _colour(digest[1] / 255, 0.8))
    image = Image.new("RGB", (width, height), back)
    draw = ImageDraw.Draw(image)
    step = 12 + digest[2] % 20
    for offset in range(-height, width, step * 2):
        draw.polygon(
            [(offset, 0), (offset + step, 0), (offset + step + height, height), (offset + height, height)],
            fill=stripe,
        )
    radius = height // 4 + digest[3] % (height // 4)
    cx, cy = width // 2, height // 2
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=back)
    return image


def _watermark(width: int, height: int) -> np.ndarray:
    """Opacity (0..1) of a visible mark in the lower right corner, one channel broadcast."""
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    font = ImageFont.load_default()
    left, top, right, bottom = draw.textbbox((0, 0), WATERMARK_TEXT, font=font)
    x = width - (right - left) - 8
    y = height - (bottom - top) - 8
    draw.rectangle((x - 4, y - 3, x + right - left + 4, y + bottom - top + 4), fill=110)
    draw.text((x - left, y - top), WATERMARK_TEXT, fill=255, font=font)
    return (np.asarray(mask, dtype=np.float32) / 255.0)[..., None]
