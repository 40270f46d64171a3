"""First/last-frame images: where they come from, whether the service would take them, their digest.

A manifest may name an https:// URL (sent as is; it cannot be checked offline), a data: URI,
or a local file. A local file must sit inside the manifest's folder (so a manifest from
elsewhere cannot send ~/.ssh/id_rsa as a "picture"), be a JPEG, PNG or WebP, have a width/height
ratio between 0.5 and 2, and fit in a 5 MB data URI. Local and inline images are known by the
sha256 of their bytes, so moving or renaming a file does not change a job's identity.

A local file is read again and encoded when its job is submitted (`encode_for_submit`), from
the path resolved when the manifest was read, and only if it is still that file (not a link
swapped in since) with the same bytes: the job id was made from them, so a changed picture is
a different job, which a rerun makes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from .manifest import display_path

MAX_DATA_URI_CHARS = 5 * 1024 * 1024
# base64 turns 3 bytes into 4 characters; leave room for the "data:image/jpeg;base64," head.
MAX_LOCAL_IMAGE_BYTES = (MAX_DATA_URI_CHARS - 32) // 4 * 3
MIN_RATIO, MAX_RATIO = 0.5, 2.0
MIME_BY_FORMAT = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class ImageProblem(ValueError):
    """The image cannot be sent; str() says why, in one line."""


@dataclass(frozen=True)
class ImageInfo:
    kind: str  # "url", "data" or "file"
    key: str  # what identifies the content: the URL, or "sha256:<hex>"
    mime: str | None = None
    width: int | None = None
    height: int | None = None
    path: Path | None = None


def kind_of(ref: str) -> str:
    if ref.startswith("https://"):
        return "url"
    if ref.startswith("data:"):
        return "data"
    return "file"


def inspect_image(ref: str, folder: Path) -> ImageInfo:
    """Check one image reference. Raises ImageProblem with a one-line reason."""
    kind = kind_of(ref)
    if kind == "url":
        return ImageInfo(kind="url", key=ref)
    if kind == "data":
        payload = _decode_data_uri(ref)
        mime, width, height = _check_picture(payload)
        declared = ref[len("data:") : ref.index(";")]
        if declared != mime:
            raise ImageProblem(f"the data URI says {declared} but holds {mime}")
        return ImageInfo("data", "sha256:" + hashlib.sha256(payload).hexdigest(), mime, width, height)
    path = local_image_path(ref, folder)
    payload = path.read_bytes()
    mime, width, height = _check_picture(payload)
    return ImageInfo("file", "sha256:" + hashlib.sha256(payload).hexdigest(), mime, width, height, path)


def local_image_path(ref: str, folder: Path) -> Path:
    """The file `ref` names, checked to be a readable file inside `folder` and small enough."""
    root = folder.resolve()
    path = (folder / ref).resolve()
    if not path.is_relative_to(root):
        raise ImageProblem(f"'{ref}' is outside the manifest's folder ({display_path(folder)})")
    if not path.exists():
        raise ImageProblem(f"'{ref}': no such file in {display_path(folder)}")
    if not path.is_file():
        raise ImageProblem(f"'{ref}' is not a file")
    size = path.stat().st_size
    if size > MAX_LOCAL_IMAGE_BYTES:
        raise ImageProblem(
            f"'{ref}' has {size:,} bytes; expected at most {MAX_LOCAL_IMAGE_BYTES:,} (a 5 MB data URI)"
        )
    return path


def _decode_data_uri(ref: str) -> bytes:
    head, _, data = ref.partition(",")
    if not head.endswith(";base64"):
        raise ImageProblem("the data URI is not base64; expected data:image/...;base64,...")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ImageProblem("the data URI's base64 text is broken") from None


def _check_picture(payload: bytes) -> tuple[str, int, int]:
    if not payload:
        raise ImageProblem("the image is empty")
    from PIL import Image, UnidentifiedImageError  # only for manifests with images

    try:
        with Image.open(io.BytesIO(payload)) as picture:
            fmt, (width, height) = picture.format, picture.size
    except (UnidentifiedImageError, OSError, ValueError):
        raise ImageProblem("not a picture; expected a JPEG, PNG or WebP image") from None
    if fmt not in MIME_BY_FORMAT:
        raise ImageProblem(f"a {fmt} image; expected JPEG, PNG or WebP")
    if not width or not height or not MIN_RATIO <= width / height <= MAX_RATIO:
        raise ImageProblem(
            f"a {width}x{height} image; expected a width/height ratio between {MIN_RATIO} and {MAX_RATIO}"
        )
    return MIME_BY_FORMAT[fmt], width, height


def encode_for_submit(image: ImageInfo) -> str:
    """A local image as the data URI its job was made from (see the module doc); ImageProblem
    (or OSError) when the file is no longer what the manifest named."""
    path = image.path
    if path is None:
        raise ValueError("only a local image is encoded at submit time")
    shown = display_path(path)
    if path.resolve() != path:
        raise ImageProblem(f"'{shown}' was replaced by a link since the manifest was read; not sent")
    size = path.stat().st_size
    if size > MAX_LOCAL_IMAGE_BYTES:
        raise ImageProblem(f"'{shown}' has grown to {size:,} bytes since the manifest was read; not sent")
    payload = path.read_bytes()
    if "sha256:" + hashlib.sha256(payload).hexdigest() != image.key:
        raise ImageProblem(
            f"'{shown}' changed since the manifest was read (its job id was made from the old "
            "picture); not sent: run vidpipe again to make the job for the new one"
        )
    mime, _, _ = _check_picture(payload)
    return f"data:{mime};base64," + base64.b64encode(payload).decode("ascii")
