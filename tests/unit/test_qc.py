"""The checks' judgement of a measured video (pure): each tolerance at its edge."""

from __future__ import annotations

import pytest

from pipeline.write.qc import Asked, Measured, Runs, judge

GOOD = Measured(frames=120, duration_s=5.0, width=1280, height=720)


def problems(measured: Measured = GOOD, **request) -> tuple[str, ...]:
    return judge(measured, Asked.from_request(request)).problems


def with_(**changes) -> Measured:
    return Measured(**{**vars(GOOD), **changes})


def test_a_video_as_asked_passes():
    verdict = judge(GOOD, Asked.from_request({"duration": 5, "ratio": "16:9"}))
    assert verdict.problems == () and verdict.qc == "passed"


@pytest.mark.parametrize(("seconds", "fails"), [(4.5, False), (4.4, True), (5.5, False), (5.6, True)])
def test_duration_allows_half_a_second_on_a_short_clip(seconds, fails):
    assert bool(problems(with_(duration_s=seconds), duration=5)) is fails


@pytest.mark.parametrize(("seconds", "fails"), [(9.0, False), (8.9, True), (11.0, False)])
def test_duration_allows_a_tenth_on_a_long_clip(seconds, fails):
    assert bool(problems(with_(duration_s=seconds), duration=10)) is fails


def test_a_field_not_asked_for_is_not_checked():
    assert problems(with_(duration_s=1.0, width=100, height=900)) == ()


def test_a_shape_ratio_allows_what_models_answer_for_it():
    """1280x768 is some models' 16:9 (6 % off); portrait for landscape is not."""
    assert problems(with_(width=1280, height=768), ratio="16:9") == ()
    assert problems(with_(width=720, height=1280), ratio="16:9") == ("is 720x1280, not 16:9",)


def test_a_pixel_ratio_names_the_frame_size():
    assert problems(with_(width=1280, height=768), ratio="1280:768") == ()
    assert problems(with_(width=1280, height=720), ratio="1280:768") == ("is 1280x720; 1280x768 was asked",)


@pytest.mark.parametrize(
    ("runs", "problem"),
    [
        (Runs(black_s=2.0), "black for 2.0 s"),
        (Runs(flat_s=2.5), "a flat picture for 2.5 s"),
        (Runs(frozen_s=3.0), "frozen for 3.0 s"),
    ],
)
def test_a_long_bad_run_is_a_problem(runs, problem):
    assert problems(with_(runs=runs)) == (problem,)


def test_a_short_bad_run_is_not():
    assert problems(with_(runs=Runs(black_s=1.9, flat_s=1.9, frozen_s=1.9))) == ()


def test_a_short_video_counts_half_of_it_as_long():
    short = with_(duration_s=2.0, runs=Runs(frozen_s=1.0))
    assert problems(short) == ("frozen for 1.0 s",)


def test_audio_is_checked_only_when_asked():
    assert problems(generate_audio=True) == ("no audio, though generate_audio was asked",)
    assert problems(with_(audio=True), generate_audio=True) == ()
    assert problems() == ()


def test_an_unreadable_video_says_only_that():
    assert problems(Measured(unreadable="no frame decodes"), duration=5) == ("no frame decodes",)


def test_a_frame_size_that_changes_restarts_the_comparison():
    """A clip whose frame size changes mid-stream: no numpy error, and no frozen run across it."""
    import numpy as np

    from pipeline.write.qc import _RunTally

    tally = _RunTally(1 / 24)
    rng = np.random.default_rng(0)
    for size in (64, 64, 96, 96):
        tally.add(rng.integers(0, 255, size).astype(np.float32))
    assert tally.frames == 4 and tally.runs().frozen_s == 0


def test_a_frame_that_cannot_be_measured_makes_the_video_unreadable(tmp_path, monkeypatch):
    from pipeline.sandbox.render import ClipSpec, render_clip
    from pipeline.write import qc

    video = tmp_path / "v.mp4"
    video.write_bytes(render_clip(ClipSpec(seed=1, duration=1)))

    def broken(frame):
        raise ValueError("cannot reshape array")

    monkeypatch.setattr(qc, "_luma", broken)
    measured = qc.measure(video)
    assert measured.unreadable == "cannot be measured after 0 frames: cannot reshape array"
