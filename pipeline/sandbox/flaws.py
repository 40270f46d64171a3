"""Broken videos on demand, and sound when it is asked for: variants of a rendered clip.

A `video` fault (faults.py) makes a generation complete with a clip that is wrong in one way,
so each of the client's checks (pipeline/write/qc.py) meets a real file:

    black        every frame black                 frozen      the first frame held throughout
    short        half the asked duration           wrong_size  the frames of another ratio
    undecodable  the second half of the picture data replaced by noise (every MP4 box whole, so
                 the download is taken; the frames there do not decode)
    no_audio     no sound, though generate_audio was asked (without the fault, the clip has a tone)

A `Variant` is a ClipSpec with the flaw and the sound: the same spec and flaw give the same
bytes. The good clip is rendered by render.py and decoded again here, so a variant is that
clip changed, never a picture of its own.
"""

from __future__ import annotations

import dataclasses
import io
import struct
from dataclasses import dataclass

import av
import numpy as np

from .render import FRAME_SIZES, ClipSpec, render_clip

AUDIO_RATE = 16_000
TONE_HZ = 440.0


@dataclass(frozen=True)
class Variant(ClipSpec):
    flaw: str | None = None
    audio: bool = False  # generate_audio was asked

    def key(self) -> str:
        return f"{super().key()}-{self.flaw or 'whole'}-{'audio' if self.audio else 'mute'}"


def variant_of(spec: ClipSpec, flaw: str | None, audio: bool) -> ClipSpec:
    """`spec` itself when nothing changes it (the common case renders as it always did)."""
    if flaw is None and not audio:
        return spec
    return Variant(
        **{f.name: getattr(spec, f.name) for f in dataclasses.fields(ClipSpec)}, flaw=flaw, audio=audio
    )


def render_any(spec: ClipSpec) -> bytes:
    """The bytes of a clip or of a variant of one."""
    if not isinstance(spec, Variant):
        return render_clip(spec)
    base = ClipSpec(**{f.name: getattr(spec, f.name) for f in dataclasses.fields(ClipSpec)})
    if spec.flaw == "wrong_size":
        base = dataclasses.replace(base, ratio=_other_ratio(base.ratio))
    clip = render_clip(base)
    if spec.flaw == "undecodable":
        return _noise_in_picture_data(clip)
    frames = _frames(clip)
    if spec.flaw == "black":
        frames = [np.zeros_like(frame) for frame in frames]
    elif spec.flaw == "frozen":
        frames = [frames[0]] * len(frames)
    elif spec.flaw == "short":
        frames = frames[: max(1, len(frames) // 2)]
    sound = spec.audio and spec.flaw != "no_audio"
    return _encode(frames, spec.fps, sound)


def _noise_in_picture_data(clip: bytes) -> bytes:
    damaged, position = bytearray(clip), 0
    while position < len(damaged):
        size, kind = struct.unpack(">I4s", damaged[position : position + 8])
        if kind == b"mdat":
            start, end = position + 8 + (size - 8) // 2, position + size
            noise = np.random.default_rng(len(clip)).integers(0, 256, end - start, dtype=np.uint8)
            damaged[start:end] = noise.tobytes()
            return bytes(damaged)
        position += size
    raise ValueError("the clip has no mdat box")


def _other_ratio(ratio: str) -> str:
    width, height = FRAME_SIZES[ratio]
    # The other orientation: a portrait clip where landscape was asked, and back.
    return next(r for r, (w, h) in FRAME_SIZES.items() if (w > h) != (width > height) and w != h)


def _frames(clip: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(clip)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def _encode(frames: list[np.ndarray], fps: int, sound: bool) -> bytes:
    height, width = frames[0].shape[:2]
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.thread_count = 1
        video.options = {"preset": "veryfast", "crf": "23", "threads": "1", "x264-params": "bframes=0"}
        audio = container.add_stream("aac", rate=AUDIO_RATE, layout="mono") if sound else None
        for index, picture in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio is not None:
            _tone(container, audio, len(frames) / fps)
    return out.getvalue()


def _tone(container: av.container.OutputContainer, stream: av.AudioStream, seconds: float) -> None:
    samples = int(seconds * AUDIO_RATE)
    wave = (0.2 * np.sin(2 * np.pi * TONE_HZ * np.arange(samples) / AUDIO_RATE)).astype(np.float32)
    chunk = 1024  # AAC's frame size
    for start in range(0, samples, chunk):
        piece = wave[start : start + chunk][None, :]
        frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
        frame.sample_rate, frame.pts = AUDIO_RATE, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
