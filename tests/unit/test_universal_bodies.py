"""Bodies on the universal path carry only the fields each model declares, under its names,
on its own path; polls go where the job was sent, and universal answers read for any model."""

from __future__ import annotations

import pytest

from pipeline import catalogue
from pipeline.net.providers import AimlApi
from pipeline.read.contracts import nearest_value
from pipeline.states import PollState

REQUEST = {
    "model": "google/veo-3.1-t2v-fast",
    "prompt": "a red kite",
    "ratio": "9:16",
    "duration": 6,
    "seed": 7,
    "watermark": True,  # Veo declares none: never sent
    "last_image_url": None,
    "negative_prompt": "blur",
}


@pytest.mark.parametrize("endpoint", ["legacy", "universal"])
def test_a_non_runway_model_goes_on_its_own_path_with_its_names_whatever_the_endpoint(endpoint):
    sent = AimlApi(endpoint).submit_request(REQUEST)
    assert sent.path == "/v2/video/generations"
    assert sent.json == {
        "model": "google/veo-3.1-t2v-fast",
        "prompt": "a red kite",
        "aspect_ratio": "9:16",
        "duration": 6,
        "seed": 7,
        "negative_prompt": "blur",
    }


def test_no_field_a_model_does_not_declare_is_ever_sent():
    """Kling v2.1 master has no seed: vidpipe's chosen seed stays in the table, not the body."""
    request = {"model": "klingai/v2.1-master-text-to-video", "prompt": "p", "seed": 3, "ratio": "16:9"}
    body = AimlApi("universal").submit_request(request).json
    declared = catalogue.request_schema("klingai/v2.1-master-text-to-video")["properties"]
    assert set(body) <= set(declared) and "seed" not in body


def test_the_runway_models_keep_the_legacy_path_and_names_unless_universal_is_asked():
    request = {"model": "gen3a_turbo", "prompt": "p", "ratio": "9:16", "duration": 5, "watermark": True}
    legacy = AimlApi("legacy").submit_request(request)
    assert legacy.path == "/v2/generate/video/runway/generation" and legacy.json == request
    universal = AimlApi("universal").submit_request(request)
    # gen3a_turbo's published universal schema has no watermark.
    assert universal.json == {"model": "gen3a_turbo", "prompt": "p", "aspect_ratio": "9:16", "duration": 5}


def test_a_model_with_a_path_of_its_own_is_submitted_and_polled_there():
    model = "wan/v2.1/1.3b/text-to-video"
    provider = AimlApi("legacy")
    assert provider.submit_request({"model": model, "prompt": "p"}).path == catalogue.model(model)["path"]
    assert provider.poll_request("g1", model).path == "/v2/generate/video/alibaba/generation"
    assert provider.poll_request("g1", "google/veo3").path == "/v2/video/generations"
    assert provider.poll_request("g1", "gen3a_turbo").path == "/v2/generate/video/runway/generation"
    assert provider.poll_request("g1").path == "/v2/generate/video/runway/generation"


@pytest.mark.parametrize(
    ("answer", "state", "url"),
    [
        ({"id": "g", "status": "queued", "video": None}, PollState.RUNNING, None),
        ({"id": "g", "status": "generating"}, PollState.RUNNING, None),
        (
            {
                "id": "g",
                "status": "completed",
                "video": {"url": "https://cdn.aimlapi.com/v.mp4"},
                "error": None,
            },
            PollState.COMPLETED,
            "https://cdn.aimlapi.com/v.mp4",
        ),
        (
            {"id": "g", "status": "error", "video": None, "error": {"name": "Err", "message": "no"}},
            PollState.FAILED,
            None,
        ),
    ],
)
def test_universal_poll_answers_read_the_same_for_any_model(answer, state, url):
    generation = AimlApi("universal").read_poll({**answer, "meta": {"usage": {"credits_used": 42}}}, {})
    assert (generation.state, generation.video_url, generation.credits) == (state, url, 42.0)


@pytest.mark.parametrize(
    ("value", "choices", "nearest"),
    [
        (5, (4, 6, 8), 6),  # a tie goes up
        (9, (4, 6, 8), 8),
        (7, (5, 10), 5),
        ("4:3", ("16:9", "9:16"), "16:9"),
        ("1:1", ("16:9", "9:16", "4:3", "3:4"), "3:4"),  # by width/height: 0.75 is nearer than 1.33
        ("1:1", ("3:4", "5:4"), "5:4"),  # a tie goes to the wider
        ("21:9", ("16:9", "adaptive"), "16:9"),  # words have no width/height: never chosen
        ("auto", ("16:9", "9:16"), None),
    ],
)
def test_nearest_value(value, choices, nearest):
    assert nearest_value(value, choices) == nearest
