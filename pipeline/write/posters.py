"""Poster frames: a small JPEG of a video's first frame, shown by the report before a video loads.

Posters live beside the videos, in `<output dir>/posters/<video stem>.jpg`, so report.html can
name both by relative paths. Each is written to a temporary file and renamed into place, so a
reader (or a crash) never sees half a JPEG.
"""

from __future__ import annotations

from pathlib import Path

import av
from PIL import Image

from .atomic import replace_atomically

POSTER_DIR = "posters"
JPEG_QUALITY = 82


class PosterError(ValueError):
    """The video could not be decoded into a poster: missing, truncated, or not a video."""


def poster_path_for(output_dir: Path, video_relative_path: str | Path) -> Path:
    """Where the poster of `video_relative_path` (relative to `output_dir`) lives."""
    return Path(output_dir) / POSTER_DIR / f"{Path(video_relative_path).stem}.jpg"


def extract_poster(video: Path, poster: Path, width: int = 240) -> None:
    """Write the first frame of `video` to `poster` as a JPEG `width` pixels wide, aspect kept.

    The file appears whole or not at all. Raises PosterError when `video` does not decode.
    Blocking (it decodes): call it off the event loop.
    """
    image = _first_frame(Path(video))
    height = max(1, round(image.height * width / image.width))
    image = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    # A poster is as public as the video beside it: the umask decides, as for every output.
    replace_atomically(
        Path(poster),
        lambda temporary: image.save(temporary, format="JPEG", quality=JPEG_QUALITY, optimize=True),
    )


def _first_frame(video: Path) -> Image.Image:
    try:
        with av.open(str(video)) as container:
            if not container.streams.video:
                raise PosterError(f"{video}: no video stream")
            stream = container.streams.video[0]
            # Only the first frame is wanted: skip the codec's frame threads.
            stream.thread_type = "SLICE"
            for frame in container.decode(stream):
                return frame.to_image()
    except av.FFmpegError as error:
        # FFmpeg's own errno (e.g. 1094995529) means nothing to a reader; its message does.
        raise PosterError(f"{video}: cannot decode: {error.strerror or error}") from None
    raise PosterError(f"{video}: no frame decodes")
