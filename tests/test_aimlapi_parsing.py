"""Reading the AI/ML API's answers in every form the contract lists. Pure: no I/O."""

from __future__ import annotations

import pytest

from pipeline.errors import RejectedError
from pipeline.net.providers import AimlApi
from pipeline.states import PollState

URL = "https://cdn.aimlapi.com/wolf/9b4c.mp4?_jwt=abc"
api = AimlApi()


@pytest.mark.parametrize(
    "body",
    [
        {"id": "d0cddca1-e382-4625-84c9-0817a6441876", "status": "queued"},
        {"generation_id": "d0cddca1-e382-4625-84c9-0817a6441876"},
        {"id": "d0cddca1-e382-4625-84c9-0817a6441876:runway-gen3/turbo/image-to-video"},
        {"id": 123456789},
        {"id": "V1StGXR8_Z5jdHi6B-myT"},
        {"id": "zzzz-not-hex", "meta": {"usage": {"credits_used": 0}}},
    ],
)
def test_submit_ids_are_opaque_and_read_from_id_or_generation_id(body):
    submitted = api.read_submit(body, {})
    assert submitted.generation_id == str(body.get("id") or body.get("generation_id"))


@pytest.mark.parametrize("body", [{}, {"id": ""}, {"status": "queued"}, [], "text", None, {"id": True}])
def test_a_submit_answer_without_an_id_is_an_error(body):
    with pytest.raises(RejectedError):
        api.read_submit(body, {})


def test_the_poll_url_encodes_ids_with_colons_and_slashes():
    request = api.poll_request("abc:runway-gen3/turbo/image-to-video")
    assert request.params == {"generation_id": "abc:runway-gen3/turbo/image-to-video"}


@pytest.mark.parametrize(
    "video",
    [
        [URL],
        [{"url": URL}],
        {"url": URL, "duration": 5},
        {"url": URL, "content_type": "video/mp4", "file_name": "a.mp4", "file_size": 1234},
        URL,
        [None, "", URL],
    ],
)
def test_every_video_shape_gives_the_url(video):
    generation = api.read_poll({"id": "g", "status": "completed", "video": video}, {})
    assert (generation.state, generation.video_url) == (PollState.COMPLETED, URL)


def test_file_size_is_kept_when_announced():
    body = {"status": "completed", "video": {"url": URL, "file_size": 1234}}
    assert api.read_poll(body, {}).video_bytes == 1234


@pytest.mark.parametrize(
    "status", ["queued", "generating", "waiting", "active", "processing", "pending", "", "QUEUED"]
)
@pytest.mark.parametrize("video", [None, [], "absent"])
def test_running_statuses_and_pending_videos(status, video):
    body = {"id": "g", "status": status}
    if video != "absent":
        body["video"] = video
    assert api.read_poll(body, {}).state == PollState.RUNNING


@pytest.mark.parametrize(
    ("body", "name", "message"),
    [
        (
            {"status": "error", "error": {"name": "ModerationError", "message": "Prompt rejected"}},
            "ModerationError",
            "Prompt rejected",
        ),
        ({"status": "error", "error": "Generation failed"}, "error", "Generation failed"),
        (
            {
                "status": "failed",
                "error": {"detail": [{"loc": ["body", "prompt"], "msg": "too long", "type": "x"}]},
            },
            "failed",
            "prompt: too long",
        ),
        ({"status": "cancelled", "error": None}, "cancelled", "the generation ended with status 'cancelled'"),
        ({"status": "canceled"}, "canceled", "the generation ended with status 'canceled'"),
        ({"status": "generating", "error": "GPU exploded"}, "generating", "GPU exploded"),
    ],
)
def test_final_failures_carry_a_name_and_a_message(body, name, message):
    generation = api.read_poll(body, {})
    assert (generation.state, generation.error_name, generation.error_message) == (
        PollState.FAILED,
        name,
        message,
    )


def test_status_unknown_means_the_id_is_lost_not_that_the_generation_failed():
    """A lost id may belong to a billed generation: it must not look safe to resubmit."""
    generation = api.read_poll({"status": "unknown"}, {})
    assert (generation.state, generation.error_name) == (PollState.LOST, "lost")
    assert api.read_poll({"status": "unknown", "error": "Bad input"}, {}).state == PollState.FAILED


@pytest.mark.parametrize("video", [None, [], {}, {"url": ""}, [{"href": "x"}]])
def test_completed_without_a_usable_url_is_still_completed(video):
    """It is done and billed; the scheduler polls again for a URL instead of resubmitting."""
    generation = api.read_poll({"status": "completed", "video": video}, {})
    assert (generation.state, generation.video_url) == (PollState.COMPLETED, None)


@pytest.mark.parametrize(
    ("body", "headers", "credits"),
    [
        ({"meta": {"usage": {"credits_used": 525000}}}, {}, 525000.0),
        ({"meta": {"usage": {"tokens_used": 1050000}}}, {}, 1050000.0),
        ({"meta": {"usage": {"credits_used": None}}}, {"x-aimlapi-credits-used": "525000"}, 525000.0),
        ({"meta": {"usage": {"usd_spent": 0.2625}}}, {}, 525000.0),
        ({"meta": None}, {}, None),
        ({}, {"x-aimlapi-credits-used": "lots"}, None),
    ],
)
def test_credits_from_meta_usage_or_headers(body, headers, credits):
    assert api.read_poll({"status": "completed", "video": [URL], **body}, headers).credits == credits


@pytest.mark.parametrize(
    ("body", "text", "message"),
    [
        ({"message": "Body validation error", "statusCode": 400}, "", "Body validation error"),
        (
            {"message": ["prompt too long", "ratio invalid"], "statusCode": "400"},
            "",
            "prompt too long; ratio invalid",
        ),
        ({"error": {"message": "Invalid enum value"}}, "", "Invalid enum value"),
        ({"error": "Bad things"}, "", "Bad things"),
        (
            None,
            "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            "502 Bad Gateway",
        ),
        (None, "upstream timed out\n", "upstream timed out"),
        (None, "", "no message"),
        (None, "x" * 1000, "x" * 297 + "..."),
    ],
)
def test_error_messages_from_every_shape(body, text, message):
    assert api.error_message(body, text) == message


def test_request_bodies_send_what_is_set_with_universal_names():
    request = {
        "model": "gen3a_turbo",
        "prompt": "p",
        "ratio": "9:16",
        "duration": 5,
        "seed": 1,
        "last_image_url": "https://x/y.png",
    }
    legacy = AimlApi("legacy").submit_request({**request, "watermark": None})
    assert legacy.path == "/v2/generate/video/runway/generation"
    assert legacy.json == request
    universal = AimlApi("universal").submit_request(request)
    assert universal.path == "/v2/video/generations"
    assert universal.json == {
        "model": "gen3a_turbo",
        "prompt": "p",
        "aspect_ratio": "9:16",
        "duration": 5,
        "seed": 1,
        "tail_image_url": "https://x/y.png",
    }
