"""Replacing a file atomically, with the permissions the user's umask asks for.

A reader never sees a half-written file: it is written beside its target and renamed into
place, which is atomic on POSIX filesystems. `tempfile.mkstemp` makes the file private (0600);
outputs are shared like any file the user makes, so the mode is set from the umask.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return _umask_read_by_setting()


@functools.cache
def _umask_read_by_setting() -> int:
    """Elsewhere the umask is read by setting it and putting it back: once, at first use, since
    doing so while other threads create files would give them the wrong mode."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def replace_atomically(path: Path, write: Callable[[Path], None], mode: int | None = 0o666) -> None:
    """Call write(temporary) and rename the result onto `path`, with `mode` less the umask.

    `temporary` is an empty file, a unique name beside `path`; an error in write() removes it
    and leaves `path` as it was. `mode=None` keeps the mode of the file write() left there (a
    hard link, which shares its mode with the file it links).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        if mode is not None:
            os.chmod(temporary, mode & ~current_umask())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
