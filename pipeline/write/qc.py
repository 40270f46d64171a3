"""Automatic checks on a downloaded video: does it hold what was asked for?

`check_video(path, request)` decodes the file to the end (`measure`, the only part that reads
anything) and judges what it found against the request (`judge`, pure). The verdict is
`passed` or `failed` with one line per problem. A video that fails stays a completed job: it
was generated and paid for; the checks only say whether to trust it.

What is checked, and how much slack each check allows:

| check      | a problem when                                                               |
| ---------- | ---------------------------------------------------------------------------- |
| decodes    | the file does not open, holds no video stream or no frame, or stops decoding |
| duration   | it differs from `duration` by more than 0.5 s and 10 % of it                 |
| frame size | `ratio` W:H as pixels (both 64 or more): a side is off by more than 2 %;      |
|            | otherwise (16:9): width/height is off the ratio by more than 8 % (1280x768   |
|            | is a 16:9 answer of some models: 6 % off)                                     |
| black      | frames of mean luma below 24 (of 255) for a long run                         |
| flat       | near-constant frames (luma spread below 3) of any other colour for a long run |
| frozen     | successive frames differing by less than 0.1 (mean luma) for a long run      |
| audio      | `generate_audio` was asked and the file has no audio stream                  |

The frozen threshold sits between what was measured: a held frame, encoded, changes by under
0.01 a frame; the slowest sandbox pattern (a smooth band drifting) by 0.3. A long run is 2 s,
or half the video when it is shorter than 4 s. A check whose field the request does not name
(no `duration`, no `ratio`) is not made: the service's default is its own.

Cheap by design: only the luma plane is looked at, every second pixel each way, so a frame
costs its decode and little more (bench/bench_qc.py measures it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

PASSED, FAILED = "passed", "failed"
DURATION_SLACK_S, DURATION_SLACK_SHARE = 0.5, 0.10
SIZE_SLACK, RATIO_SLACK = 0.02, 0.08
PIXEL_SIDE_MIN = 64  # a ratio such as 1280:768 names pixels; 16:9 only a shape
BLACK_LUMA, FLAT_SPREAD, FROZEN_CHANGE = 24.0, 3.0, 0.1
LONG_RUN_S, SHORT_VIDEO_S = 2.0, 4.0
STEP = 2  # every second pixel of the luma plane, each way
# One decoding thread: a check runs beside the event loop and the downloads, and FFmpeg's own
# threads saved no CPU (measured: about 0.5 ms of CPU a 320x180 frame either way).
DECODE_THREADS = 1


@dataclass(frozen=True)
class Asked:
    """What a request asked for that a file can show."""

    duration_s: float | None = None
    ratio: tuple[int, int] | None = None
    audio: bool = False

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> Asked:
        duration = request.get("duration")
        ratio = request.get("ratio") or request.get("aspect_ratio")
        return cls(
            duration_s=float(duration) if _number(duration) and duration > 0 else None,
            ratio=_ratio(ratio),
            audio=request.get("generate_audio") is True,
        )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ratio(text: Any) -> tuple[int, int] | None:
    if not isinstance(text, str):
        return None
    for separator in (":", "x"):
        width, _, height = text.partition(separator)
        if width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0:
            return int(width), int(height)
    return None


@dataclass(frozen=True)
class Runs:
    """The longest runs of each kind of bad frame, in seconds."""

    black_s: float = 0.0
    flat_s: float = 0.0
    frozen_s: float = 0.0


@dataclass(frozen=True)
class Measured:
    """What decoding a file found."""

    frames: int = 0
    duration_s: float = 0.0
    width: int = 0
    height: int = 0
    audio: bool = False
    runs: Runs = Runs()
    unreadable: str | None = None  # why it does not decode (to the end)


@dataclass(frozen=True)
class Verdict:
    problems: tuple[str, ...] = ()

    @property
    def qc(self) -> str:
        return FAILED if self.problems else PASSED


def check_video(path: Path, request: Mapping[str, Any]) -> Verdict:
    """The checks of the video at `path` against `request`. Blocking (it decodes the whole
    file): call it off the event loop."""
    return judge(measure(path), Asked.from_request(request))


def judge(measured: Measured, asked: Asked) -> Verdict:
    """The problems of a measured video against what was asked (pure)."""
    if measured.unreadable is not None:
        return Verdict((measured.unreadable,))
    problems = [*_shape_problems(measured, asked), *_run_problems(measured)]
    if asked.audio and not measured.audio:
        problems.append("no audio, though generate_audio was asked")
    return Verdict(tuple(problems))


def _shape_problems(measured: Measured, asked: Asked) -> Iterator[str]:
    if asked.duration_s is not None:
        slack = max(DURATION_SLACK_S, DURATION_SLACK_SHARE * asked.duration_s)
        if abs(measured.duration_s - asked.duration_s) > slack:
            yield f"lasts {measured.duration_s:.1f} s; {asked.duration_s:g} s was asked"
    if asked.ratio is None:
        return
    width, height = asked.ratio
    size = f"{measured.width}x{measured.height}"
    if min(width, height) >= PIXEL_SIDE_MIN:
        if _off(measured.width, width) > SIZE_SLACK or _off(measured.height, height) > SIZE_SLACK:
            yield f"is {size}; {width}x{height} was asked"
    elif _off(measured.width / measured.height, width / height) > RATIO_SLACK:
        yield f"is {size}, not {width}:{height}"


def _off(value: float, wanted: float) -> float:
    return abs(value - wanted) / wanted


def _run_problems(measured: Measured) -> Iterator[str]:
    long_run = LONG_RUN_S if measured.duration_s >= SHORT_VIDEO_S else measured.duration_s / 2
    runs = measured.runs
    for seconds, what in (
        (runs.black_s, "black"),
        (runs.flat_s, "a flat picture"),
        (runs.frozen_s, "frozen"),
    ):
        if seconds >= long_run and seconds > 0:
            yield f"{what} for {seconds:.1f} s"


def measure(path: Path) -> Measured:
    """Decode `path` to the end, looking at each frame's luma. Never raises for a bad file:
    what went wrong is `unreadable` (a frame size that changes mid-stream only restarts the
    comparison of one frame with the next)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return Measured(unreadable="holds no video stream")
            stream = container.streams.video[0]
            stream.codec_context.thread_count = DECODE_THREADS
            audio = bool(container.streams.audio)
            tally = _RunTally(_frame_seconds(stream))
            width = height = 0
            try:
                for frame in container.decode(stream):
                    width, height = frame.width, frame.height
                    tally.add(_luma(frame))
            except av.FFmpegError as error:
                return Measured(unreadable=f"stops decoding after {tally.frames} frames: {_said(error)}")
            except (ValueError, RuntimeError, MemoryError) as error:  # a frame numpy cannot read
                return Measured(unreadable=f"cannot be measured after {tally.frames} frames: {error}")
    except (av.FFmpegError, OSError) as error:
        return Measured(unreadable=f"does not open as a video: {_said(error)}")
    if tally.frames == 0:
        return Measured(unreadable="no frame decodes")
    return Measured(
        frames=tally.frames,
        duration_s=tally.frames * tally.frame_s,
        width=width,
        height=height,
        audio=audio,
        runs=tally.runs(),
    )


def _said(error: Exception) -> str:
    # FFmpeg's own errno (e.g. 1094995529) means nothing to a reader; its message does.
    return str(getattr(error, "strerror", None) or error)


def _frame_seconds(stream: Any) -> float:
    rate = stream.average_rate or stream.guessed_rate or Fraction(24)
    return float(1 / Fraction(rate))


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """Every STEP-th pixel of the luma plane, flat, as float32 (no colour conversion for YUV)."""
    if frame.format.name.startswith(("yuv", "yuvj", "nv")):
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        luma = rows[: frame.height : STEP, : frame.width : STEP]
    else:
        luma = frame.to_ndarray(format="gray")[::STEP, ::STEP]
    return luma.astype(np.float32).ravel()


class _RunTally:
    """Longest runs of black, flat and unchanged frames, one frame at a time."""

    def __init__(self, frame_s: float):
        self.frame_s = frame_s
        self.frames = 0
        self._current = {"black": 0, "flat": 0, "frozen": 0}
        self._longest = dict(self._current)
        self._previous: np.ndarray | None = None

    def add(self, luma: np.ndarray) -> None:
        self.frames += 1
        # Mean and spread from two dot products: numpy's std() costs several times more a frame.
        count = luma.size
        mean = float(luma.sum()) / count
        spread = max(0.0, float(np.dot(luma, luma)) / count - mean * mean) ** 0.5
        flat = spread < FLAT_SPREAD
        black = flat and mean < BLACK_LUMA
        # A flat picture is reported as such; frozen is for pictures with something in them.
        frozen = (
            not flat
            and self._previous is not None
            and self._previous.shape == luma.shape  # a new frame size: a new picture
            and float(np.abs(luma - self._previous).sum()) / count < FROZEN_CHANGE
        )
        for kind, now in (("black", black), ("flat", flat and not black), ("frozen", frozen)):
            self._current[kind] = self._current[kind] + 1 if now else 0
            # n frames like the one before them hold a picture for n + 1 frames.
            held = self._current[kind] + 1 if kind == "frozen" and now else self._current[kind]
            self._longest[kind] = max(self._longest[kind], held)
        self._previous = luma

    def runs(self) -> Runs:
        longest = {kind: count * self.frame_s for kind, count in self._longest.items()}
        return Runs(black_s=longest["black"], flat_s=longest["flat"], frozen_s=longest["frozen"])
