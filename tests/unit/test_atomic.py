"""Replacing a file atomically (pipeline/write/atomic.py): the one place that writes beside a target and
renames onto it, used by every writer but the streamed download."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipeline.write.atomic import replace_atomically


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_file_appears_whole_with_the_umasks_mode(tmp_path: Path, umask_027):
    target = tmp_path / "deep" / "table.csv"
    replace_atomically(target, lambda temporary: temporary.write_text("a,b\n"))
    assert target.read_text() == "a,b\n"
    assert mode_of(target) == 0o640  # not mkstemp's private 0600
    assert os.listdir(target.parent) == ["table.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path):
    target = tmp_path / "table.csv"
    target.write_text("old\n")

    def half_then_fail(temporary: Path) -> None:
        temporary.write_text("ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        replace_atomically(target, half_then_fail)
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["table.csv"]


def test_mode_none_keeps_the_mode_of_a_hard_link_and_of_the_file_it_shares(tmp_path: Path, umask_027):
    video = tmp_path / "video.mp4"
    video.write_bytes(b"mp4")
    video.chmod(0o604)

    def link(temporary: Path) -> None:
        temporary.unlink()
        os.link(video, temporary)

    replace_atomically(tmp_path / "dataset.mp4", link, mode=None)
    assert mode_of(tmp_path / "dataset.mp4") == mode_of(video) == 0o604
    assert os.path.samefile(video, tmp_path / "dataset.mp4")
