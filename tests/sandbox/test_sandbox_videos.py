"""Real videos: size, duration, determinism, first/last frames, watermark; a CDN that expires."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sandbox_helpers import GEN3, blocks, data_uri, decode, video_url

from pipeline.sandbox.contract import RATIOS
from pipeline.sandbox.render import FRAME_SIZES, ClipSpec, render_clip

# H.264 at the sandbox's quality keeps smooth pictures within a few levels per channel.
PIXEL_TOLERANCE = 6.0


def fetch(sandbox, body: dict, endpoint: str = "legacy") -> bytes:
    result = sandbox.generate(body, endpoint)
    assert result["status"] == "completed", result
    return sandbox.download(video_url(result))


@pytest.mark.parametrize("ratio", list(RATIOS))
@pytest.mark.parametrize("duration", [5, 10])
def test_frame_size_and_duration_by_decoding(sandbox, ratio, duration):
    """Each Runway ratio gets its small even frame size; the clip lasts the requested seconds
    (the other models' ratios: test_sandbox_validation.py)."""
    data = fetch(sandbox, {"model": "runway/gen4_turbo", "ratio": ratio, "duration": duration})
    frames, seconds = decode(data)
    width, height = FRAME_SIZES[ratio]
    assert frames[0].shape == (height, width, 3)
    assert width % 2 == 0 and height % 2 == 0
    assert abs(width / height - eval(ratio.replace(":", "/"))) < 0.02
    assert seconds == pytest.approx(duration, abs=0.01)
    assert len(frames) == duration * 8


def test_same_request_and_seed_give_byte_identical_files(make_sandbox):
    """Determinism across servers: same request + seed -> the same bytes."""
    first = fetch(make_sandbox(), GEN3)
    second = fetch(make_sandbox(), GEN3)
    assert first == second


def test_another_seed_gives_a_visibly_different_video(sandbox):
    """Another seed changes the pictures, not just a few bytes."""
    one, _ = decode(fetch(sandbox, GEN3))
    two, _ = decode(fetch(sandbox, {**GEN3, "seed": 2}))
    difference = np.abs(one[20].astype(float) - two[20].astype(float)).mean()
    assert difference > 10


def test_the_prompt_shapes_the_colours(sandbox):
    """Another prompt, same seed: other colours."""
    one, _ = decode(fetch(sandbox, GEN3))
    two, _ = decode(fetch(sandbox, {**GEN3, "prompt": "a green field at dawn"}))
    assert np.abs(one[0].astype(float).mean(axis=(0, 1)) - two[0].mean(axis=(0, 1))).max() > 5


def test_first_and_last_frames_are_the_given_images(sandbox):
    """image_url is frame 0 and last_image_url the last frame, within H.264's tolerance."""
    first = blocks(320, 180, [(200, 40, 40), (40, 200, 40), (40, 40, 200)])
    last = blocks(320, 180, [(250, 250, 250), (10, 10, 10)])
    body = {**GEN3, "image_url": data_uri(first), "last_image_url": data_uri(last, "JPEG")}
    frames, _ = decode(fetch(sandbox, body))
    assert np.abs(frames[0].astype(float) - first).mean() < PIXEL_TOLERANCE
    assert np.abs(frames[-1].astype(float) - last).mean() < PIXEL_TOLERANCE
    assert np.abs(frames[20].astype(float) - first).mean() > 20  # it moves in between


def test_first_image_of_another_size_is_centre_cropped(sandbox):
    """A 2:1 picture on a 16:9 clip is scaled to cover and cropped, not stretched."""
    picture = blocks(400, 200, [(30, 30, 30), (220, 220, 30), (220, 220, 30), (30, 30, 30)])
    frames, _ = decode(fetch(sandbox, {**GEN3, "image_url": data_uri(picture)}))
    middle = frames[0][:, 100:220].astype(float)
    assert np.abs(middle - (220, 220, 30)).mean() < PIXEL_TOLERANCE


def test_https_image_becomes_a_placeholder_derived_from_the_url(sandbox):
    """An https:// image cannot be fetched offline: a picture made from the URL stands in."""
    url_a = {**GEN3, "image_url": "https://example.com/a.jpg"}
    url_b = {**GEN3, "image_url": "https://example.com/b.jpg"}
    a1, _ = decode(fetch(sandbox, url_a))
    b1, _ = decode(fetch(sandbox, url_b))
    plain, _ = decode(fetch(sandbox, GEN3))
    assert np.abs(a1[0].astype(float) - b1[0]).mean() > 10
    assert np.abs(a1[0].astype(float) - plain[0]).mean() > 10


def test_unreadable_image_ends_the_generation_in_error(sandbox):
    """A data URI that is not a picture: the generation ends in error with a reason."""
    body = sandbox.generate({**GEN3, "image_url": "data:image/png;base64,AAAA"})
    assert body["status"] == "error"
    assert "readable" in body["error"]


def test_watermark_draws_a_visible_mark(sandbox):
    """watermark: true brightens the lower right corner; the rest is unchanged."""
    plain, _ = decode(fetch(sandbox, GEN3))
    marked, _ = decode(fetch(sandbox, {**GEN3, "watermark": True}))
    corner = np.abs(marked[0][-20:, -100:].astype(float) - plain[0][-20:, -100:]).mean()
    elsewhere = np.abs(marked[0][:80, :150].astype(float) - plain[0][:80, :150]).mean()
    assert corner > 30 and elsewhere < 2


def test_identical_requests_render_once(sandbox):
    """The render cache: the same spec twice is one render and one cache hit."""
    fetch(sandbox, GEN3)
    fetch(sandbox, GEN3)
    render = sandbox.stats()["render"]
    assert render["renders"] == 1 and render["cache_hits"] == 1


def test_shared_render_mode_renders_one_clip_per_ratio_and_duration(make_sandbox):
    """render=shared: different prompts and seeds reuse one clip per (ratio, duration)."""
    sandbox = make_sandbox(render="shared")
    for seed in range(4):
        fetch(sandbox, {**GEN3, "seed": seed, "prompt": f"prompt {seed}"})
    fetch(sandbox, {**GEN3, "ratio": "9:16"})
    assert sandbox.stats()["render"]["renders"] == 2


def test_spilled_clips_still_download(make_sandbox):
    """With a tiny memory limit clips spill to disk and still download intact."""
    sandbox = make_sandbox(cache_bytes=1)
    first = fetch(sandbox, GEN3)
    fetch(sandbox, {**GEN3, "seed": 5})
    assert sandbox.stats()["render"]["spilled"] >= 1
    assert fetch(sandbox, GEN3) == first


def test_polls_stay_fast_while_rendering(make_sandbox):
    """Rendering runs off the event loop: polls answer quickly while clips render."""
    sandbox = make_sandbox(concurrency=8)
    ids = [
        sandbox.submit({**GEN3, "seed": n, "duration": 10, "ratio": "16:9"}).json()["id"] for n in range(6)
    ]
    slowest = 0.0
    while sandbox.poll(ids[-1]).json()["status"] != "completed":
        started = time.monotonic()
        sandbox.poll(ids[0])
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 0.15  # one 10 s clip renders in about 0.2 s: a blocked loop would show


def test_render_clip_is_pure():
    """render_clip is a function of its spec: two calls, the same bytes."""
    spec = ClipSpec(ratio="1:1", duration=5, seed=3, prompt="x", watermark=True)
    assert render_clip(spec) == render_clip(spec)


def test_cdn_needs_no_key_and_counts_one_sent(sandbox):
    """The CDN serves without Authorization; a client that sends its key there is counted."""
    url = video_url(sandbox.generate(GEN3))
    assert sandbox.session.get(url, timeout=5).status_code == 200
    assert sandbox.session.get(url, headers={"Authorization": "Bearer k"}, timeout=5).ok
    assert sandbox.stats()["downloads"]["with_authorization"] == 1


def test_signed_url_expires_after_its_lifetime(make_sandbox):
    """url_lifetime: the link works, then answers 403; polling again gives a working one."""
    sandbox = make_sandbox(url_lifetime=0.3)
    gen_id = sandbox.submit(GEN3).json()["id"]
    url = video_url(sandbox.wait(gen_id))
    assert sandbox.session.get(url, timeout=5).status_code == 200
    time.sleep(0.35)
    assert sandbox.session.get(url, timeout=5).status_code == 403
    assert sandbox.session.get(video_url(sandbox.poll(gen_id).json()), timeout=5).ok
    assert sandbox.stats()["downloads"]["expired"] == 1


def test_a_tampered_token_is_refused(sandbox):
    """A token for another file, or altered, is 403."""
    one = video_url(sandbox.generate(GEN3))
    two = video_url(sandbox.generate({**GEN3, "seed": 2}))
    swapped = one.split("?")[0] + "?" + two.split("?")[1]
    assert sandbox.session.get(swapped, timeout=5).status_code == 403
    assert sandbox.session.get(one[:-3] + "xyz", timeout=5).status_code == 403
    assert sandbox.stats()["downloads"]["bad_token"] == 2


def test_renders_in_parallel_threads_are_byte_identical():
    """Determinism holds when several renders run at once in a thread pool (as in the server)."""
    from concurrent.futures import ThreadPoolExecutor

    specs = [
        ClipSpec(seed=1, prompt="kite", image_url="https://a.example/x.png", watermark=True),
        ClipSpec(ratio="9:16", seed=2, last_image_url="https://b.example/y.png"),
    ]
    with ThreadPoolExecutor(4) as pool:
        for spec in specs:
            assert len(set(pool.map(render_clip, [spec] * 6))) == 1
