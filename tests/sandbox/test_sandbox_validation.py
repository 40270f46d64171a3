"""Auth and validation: 401 without a key, 400 by the sandbox's own copy of the contract."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sandbox_helpers import GEN3, decode, video_url

from pipeline.read.schema import model_rules_validator
from pipeline.sandbox.contract import published_models
from pipeline.sandbox.render import FRAME_SIZES


def test_missing_key_is_401_on_submit_and_poll(sandbox):
    """No Authorization header: 401 on both submit and poll, counted as rejected."""
    answer = sandbox.session.post(sandbox.path("legacy"), json=GEN3, timeout=5)
    assert answer.status_code == 401
    assert "API key" in answer.json()["message"]
    poll = sandbox.session.get(sandbox.path("legacy"), params={"generation_id": "x"}, timeout=5)
    assert poll.status_code == 401
    assert sandbox.stats()["submits"]["rejected"] == {"401": 1}


def test_require_key_refuses_any_other_key(make_sandbox):
    """--require-key: only that key works; another Bearer key is 401."""
    sandbox = make_sandbox(require_key="sk-the-one")
    assert sandbox.submit(GEN3).status_code == 401
    good = sandbox.submit(GEN3, headers={"Authorization": "Bearer sk-the-one"})
    assert good.status_code == 201


@pytest.mark.parametrize(
    ("body", "endpoint", "expected"),
    [
        ({"prompt": "x"}, "legacy", "missing required field 'model'"),
        ({**GEN3, "ratio": "4:3"}, "legacy", "ratio: '4:3' is not allowed"),
        ({**GEN3, "aspect_ratio": "4:3"}, "universal", "aspect_ratio: '4:3' is not allowed"),
        ({**GEN3, "duration": 7}, "legacy", "duration: 7 is not allowed; expected 5 or 10"),
        ({**GEN3, "seed": -1}, "legacy", "seed: -1 is not allowed"),
        ({**GEN3, "image_url": "http://x/a.png"}, "legacy", "image_url: 'http://x/a.png'"),
        ({**GEN3, "model": "gen5"}, "legacy", "model: 'gen5' is not allowed"),
        (
            {"model": "runway/gen4_turbo", "tail_image_url": "https://x/a.png"},
            "universal",
            "tail_image_url: 'https://x/a.png' is not allowed; expected no last frame",
        ),
    ],
)
def test_invalid_bodies_get_400_with_the_contract_message(sandbox, body, endpoint, expected):
    """A body the contract refuses gets a NestJS 400 naming the field as sent."""
    answer = sandbox.submit(body, endpoint)
    assert answer.status_code == 400
    error = answer.json()
    assert error["message"].startswith("Body validation error: ")
    assert expected in error["message"]
    assert error["statusCode"] == 400 and error["errors"]
    assert sandbox.stats()["submits"]["rejected"] == {"400": 1}


def test_a_request_the_client_would_never_send_is_refused_with_the_services_400(sandbox):
    """A ratio the contract forbids for gen3a_turbo, posted over loopback directly (vidpipe's own
    rules stop it before any submit): the sandbox refuses it by its own rules, in the shape the
    real service answers (NestJS body, "Body validation error"), and creates no generation."""
    body = {"model": "gen3a_turbo", "prompt": "a red kite", "ratio": "21:9", "duration": 5}
    assert not model_rules_validator().is_valid(body)  # the client would never send it
    answer = sandbox.submit(body)
    assert answer.status_code == 400
    error = answer.json()
    assert error["message"] == (
        "Body validation error: ratio: '21:9' is not allowed; expected '16:9' or '9:16' for gen3a_turbo"
    )
    assert (error["statusCode"], error["path"]) == (400, "/v2/generate/video/runway/generation")
    assert error["requestId"] and error["timestamp"].endswith("Z")
    assert sandbox.stats()["submits"]["accepted"] == 0


def test_the_sandbox_does_not_load_the_clients_rules():
    """Serving a submit needs none of vidpipe's schema, model facts or request formats: the
    stand-in cannot agree with a client mistake by sharing its code."""
    code = (
        "import sys, pipeline.sandbox.server, pipeline.sandbox.thread;"
        "print(' '.join(m for m in sys.modules if m.startswith('pipeline.') and not m.startswith('pipeline.sandbox')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == ["pipeline.errors"]


def test_gen4_accepts_the_extra_ratios(sandbox):
    """runway/gen4_turbo takes 21:9 where gen3a_turbo would not."""
    body = sandbox.generate({"model": "runway/gen4_turbo", "ratio": "21:9", "duration": 5})
    assert body["status"] == "completed"


def test_prompt_limit_is_512_by_default_and_1000_when_set(make_sandbox):
    """513 characters fail at the default limit and pass with prompt_limit=1000."""
    long_prompt = {**GEN3, "prompt": "p" * 513}
    default = make_sandbox()
    answer = default.submit(long_prompt)
    assert answer.status_code == 400
    assert "513 characters; expected at most 512" in answer.json()["message"]
    raised = make_sandbox(prompt_limit=1000)
    assert raised.submit(long_prompt).status_code == 201
    assert raised.submit({**GEN3, "prompt": "p" * 1001}).status_code == 400


def test_unknown_fields_are_ignored_and_counted(sandbox):
    """By default unknown fields (n, response_format, the other path's names) are dropped."""
    answer = sandbox.submit({**GEN3, "n": 1, "response_format": "url", "aspect_ratio": "9:16"})
    assert answer.status_code == 201
    assert sandbox.stats()["unknown_fields"] == {"n": 1, "response_format": 1, "aspect_ratio": 1}


def test_strict_mode_rejects_unknown_fields(make_sandbox):
    """strict=True: an unknown field is a 400 naming it."""
    sandbox = make_sandbox(strict=True)
    answer = sandbox.submit({**GEN3, "n": 1})
    assert answer.status_code == 400
    assert "n: unknown field" in answer.json()["message"]


def test_a_body_that_is_not_json_is_400(sandbox):
    """Garbage instead of JSON: 400, never a 500."""
    answer = sandbox.session.post(
        sandbox.path("legacy"), data=b"{not json", headers={"Authorization": "Bearer k"}, timeout=5
    )
    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["message"]
    listed = sandbox.submit(["model"])
    assert listed.status_code == 400


def test_missing_generation_id_on_poll_is_400(sandbox):
    """GET without ?generation_id= is a 400."""
    answer = sandbox.session.get(sandbox.path("legacy"), headers={"Authorization": "Bearer k"})
    assert answer.status_code == 400


VEO = {"model": "google/veo-3.1-t2v-fast", "prompt": "a red kite", "aspect_ratio": "9:16", "duration": 6}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({**VEO, "ratio": "9:16"}, "ratio: property ratio should not exist"),
        ({**VEO, "watermark": True}, "watermark: property watermark should not exist"),
        ({**VEO, "duration": 5}, "duration: 5 is not allowed; expected 4, 6 or 8"),
        ({"model": "runway/gen4_turbo", "prompt": "p"}, None),  # Runway: the contract as it was
        (
            {"model": "klingai/v2.1-master-text-to-video", "prompt": "p", "seed": 1},
            "property seed should not exist",
        ),
    ],
)
def test_every_published_model_is_checked_by_its_own_request_schema(sandbox, body, expected):
    """Any model but the two Runway ones: its published schema decides, and a field it does not
    declare is the service's whitelist 400 (`property ratio should not exist`)."""
    answer = sandbox.submit(body, "universal")
    if expected is None:
        assert answer.status_code == 201
        return
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("Body validation error: ")
    assert expected in answer.json()["message"]


def test_a_published_model_renders_its_own_ratio_and_duration(sandbox):
    """Veo's 9:16 and 4 s (no Runway model takes 4 s) come out as such; the stats keep the
    names the body used."""
    body = sandbox.generate({**VEO, "aspect_ratio": "9:16", "duration": 4}, "universal")
    frames, _ = decode(sandbox.download(video_url(body)))
    assert frames[0].shape == (320, 180, 3) and len(frames) == 4 * 8
    fields = sandbox.stats()["submits"]["fields_by_model"]
    assert fields == {"google/veo-3.1-t2v-fast": {"model": 1, "prompt": 1, "aspect_ratio": 1, "duration": 1}}


def test_every_ratio_a_published_model_takes_has_a_small_even_frame_size():
    ratios = {
        r for e in published_models().values() for r in (e["allowed"].get("ratio") or {}).get("enum", [])
    }
    numeric = {r for r in ratios if ":" in r}
    assert numeric <= set(FRAME_SIZES)
    for ratio in numeric:
        width, height = FRAME_SIZES[ratio]
        w, h = (int(part) for part in ratio.split(":"))
        assert width % 2 == height % 2 == 0 and max(width, height) <= 420
        assert abs(width / height - w / h) < 0.02, ratio
