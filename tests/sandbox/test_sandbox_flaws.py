"""Broken videos on demand: each `video` fault gives a real file that the client's checks
(pipeline/write/qc.py) catch, and nothing else about the clip changes."""

from __future__ import annotations

import re

import pytest
from sandbox_helpers import GEN3, video_url

from pipeline.sandbox import FaultConfig
from pipeline.write.qc import check_video

ASKED = {"ratio": "16:9", "duration": 5}
BODY = {**GEN3, "ratio": "16:9"}


def checked(sandbox, tmp_path, body: dict, asked: dict) -> tuple[str, ...]:
    result = sandbox.generate(body)
    assert result["status"] == "completed", result
    video = tmp_path / "clip.mp4"
    video.write_bytes(sandbox.download(video_url(result)))
    verdict = check_video(video, asked)
    assert verdict.qc == ("failed" if verdict.problems else "passed")
    return verdict.problems


def test_a_clip_without_faults_passes_every_check(sandbox, tmp_path):
    assert checked(sandbox, tmp_path, BODY, ASKED) == ()


@pytest.mark.parametrize(
    ("flaw", "problem"),
    [
        ("black", "black for 5.0 s"),
        ("frozen", "frozen for 5.0 s"),
        ("short", "lasts 2.5 s; 5 s was asked"),
        ("wrong_size", "is 180x320, not 16:9"),
        ("undecodable", "stops decoding after N frames: Invalid data found when processing input"),
    ],
)
def test_each_video_fault_is_caught_by_its_check(make_sandbox, tmp_path, flaw, problem):
    sandbox = make_sandbox(faults=FaultConfig(video={flaw: 1.0}))
    found = checked(sandbox, tmp_path, BODY, ASKED)
    # Where the noise stops the decoder depends on the clip's bytes; that it stops does not.
    assert tuple(re.sub(r"after \d+ frames", "after N frames", text) for text in found) == (problem,)


def test_sound_comes_when_asked_and_the_no_audio_fault_takes_it_away(make_sandbox, tmp_path):
    asked = {**ASKED, "generate_audio": True}
    body = {**BODY, "generate_audio": True}
    assert checked(make_sandbox(), tmp_path, body, asked) == ()
    silent = make_sandbox(faults=FaultConfig(video={"no_audio": 1.0}))
    assert checked(silent, tmp_path, body, asked) == ("no audio, though generate_audio was asked",)
    # Without generate_audio asked, a silent clip is what was asked for.
    assert checked(silent, tmp_path, body, ASKED) == ()
