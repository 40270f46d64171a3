"""Faults on demand: every class, scripted and random, reproducible with a seed."""

from __future__ import annotations

import time

import pytest
import requests
from sandbox_helpers import GEN3, video_url

from pipeline.sandbox import FaultConfig, ScriptedFault


def script(*steps: ScriptedFault, **settings) -> FaultConfig:
    return FaultConfig(script=steps, **settings)


def test_scripted_429_with_retry_after_then_success(sandbox):
    """ "The next 2 submits answer 429 with Retry-After 1", then submits work again."""
    sandbox.handle.set_faults(script(ScriptedFault("submit", "429_retry_after", times=2)))
    for _ in range(2):
        answer = sandbox.submit(GEN3)
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "1"
        assert answer.json()["statusCode"] == 429
    assert sandbox.submit(GEN3).status_code == 201
    stats = sandbox.stats()
    assert stats["faults"] == {"submit.429_retry_after": 2}
    assert stats["submits"]["accepted"] == 1
    assert stats["generations"]["created"] == 1


def test_429_without_retry_after(sandbox):
    """The plain 429 carries no Retry-After header."""
    sandbox.handle.set_faults(script(ScriptedFault("submit", "429")))
    answer = sandbox.submit(GEN3)
    assert answer.status_code == 429 and "Retry-After" not in answer.headers


@pytest.mark.parametrize(
    ("kind", "status", "content_type"),
    [
        ("500", 500, "application/json"),
        ("502", 502, "text/plain"),
        ("502_html", 502, "text/html"),
        ("503", 503, "application/json"),
        ("401", 401, "application/json"),
        ("403", 403, "application/json"),
    ],
)
@pytest.mark.parametrize("target", ["submit", "poll"])
def test_http_faults_on_submit_and_poll(sandbox, target, kind, status, content_type):
    """Each HTTP fault answers its status and body type, and creates no generation."""
    gen_id = sandbox.submit(GEN3).json()["id"] if target == "poll" else None
    sandbox.handle.set_faults(script(ScriptedFault(target, kind)))
    answer = sandbox.submit(GEN3) if target == "submit" else sandbox.poll(gen_id)
    assert answer.status_code == status
    assert answer.headers["Content-Type"].startswith(content_type)
    if kind == "403":
        assert "run out of credits" in answer.json()["message"]
    if kind == "502_html":
        assert "<html>" in answer.text
    stats = sandbox.stats()
    assert stats["faults"] == {f"{target}.{kind}": 1}
    assert stats["generations"]["created"] == (1 if target == "poll" else 0)


def test_drop_before_creates_nothing(sandbox):
    """drop_before: the connection closes and no generation exists (safe to resend)."""
    sandbox.handle.set_faults(script(ScriptedFault("submit", "drop_before")))
    with pytest.raises(requests.ConnectionError):
        sandbox.submit(GEN3)
    stats = sandbox.stats()
    assert stats["generations"]["created"] == 0 and stats["submits"]["accepted"] == 0


def test_drop_after_creates_a_generation_the_client_never_hears_of(sandbox):
    """drop_after: the client gets no answer, yet a generation exists and completes."""
    sandbox.handle.set_faults(script(ScriptedFault("submit", "drop_after")))
    with pytest.raises(requests.ConnectionError):
        sandbox.submit(GEN3)
    deadline = time.monotonic() + 10
    while sandbox.stats()["generations"]["completed"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    stats = sandbox.stats()
    assert stats["submits"]["accepted"] == 1
    assert stats["faults"] == {"submit.drop_after": 1}
    # The resubmit the runner must avoid shows up as a duplicate body.
    sandbox.submit(GEN3)
    assert sandbox.stats()["submits"]["identical_resubmits"] == 1


def test_dropped_poll(sandbox):
    """A dropped poll closes the connection; the next poll works."""
    gen_id = sandbox.submit(GEN3).json()["id"]
    sandbox.handle.set_faults(script(ScriptedFault("poll", "drop")))
    with pytest.raises(requests.ConnectionError):
        # requests retries nothing by default; a dropped answer surfaces as ConnectionError.
        sandbox.poll(gen_id)
    assert sandbox.poll(gen_id).status_code == 200


def test_slow_answers_are_delayed(sandbox):
    """A slow fault delays the answer by slow_seconds and then answers normally."""
    sandbox.handle.set_faults(script(ScriptedFault("submit", "slow"), slow_seconds=0.4))
    started = time.monotonic()
    answer = sandbox.submit(GEN3)
    assert answer.status_code == 201
    assert time.monotonic() - started >= 0.4


@pytest.mark.parametrize(
    ("shape", "endpoint", "extract"),
    [
        ("auto", "legacy", lambda e: e),
        ("auto", "universal", lambda e: e["message"]),
        ("detail", "legacy", lambda e: e["detail"][0]["msg"]),
    ],
)
def test_generation_ends_in_error_with_a_message(make_sandbox, shape, endpoint, extract):
    """A generation fault ends in `error`, its message in the chosen error shape, no credits."""
    sandbox = make_sandbox(error_shape=shape)
    sandbox.handle.set_faults(script(ScriptedFault("generation", "error", message="NSFW input")))
    body = sandbox.generate(GEN3, endpoint)
    assert body["status"] == "error"
    assert extract(body["error"]) == "NSFW input"
    assert "video" not in body or not body["video"]
    assert sandbox.stats()["generations"]["credits_used"] == 0


def test_error_status_can_be_failed(make_sandbox):
    """error_status=failed renames the final error status."""
    sandbox = make_sandbox(error_status="failed")
    sandbox.handle.set_faults(script(ScriptedFault("generation", "error")))
    assert sandbox.generate(GEN3)["status"] == "failed"


def test_truncated_download_closes_mid_body(sandbox):
    """truncated: full Content-Length announced, half the bytes, then the connection closes."""
    body = sandbox.generate(GEN3)
    sandbox.handle.set_faults(script(ScriptedFault("download", "truncated")))
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        sandbox.session.get(video_url(body), timeout=5).content  # noqa: B018
    assert sandbox.stats()["downloads"]["truncated"] == 1
    assert len(sandbox.download(video_url(body))) > 1000


def test_short_download_has_consistent_headers(sandbox):
    """short: fewer bytes, Content-Length agrees; only checking the MP4 catches it."""
    body = sandbox.generate(GEN3)
    full = sandbox.download(video_url(body))
    sandbox.handle.set_faults(script(ScriptedFault("download", "short")))
    answer = sandbox.session.get(video_url(body), timeout=5)
    assert answer.status_code == 200
    assert int(answer.headers["Content-Length"]) == len(answer.content) < len(full)
    assert sandbox.stats()["downloads"]["short"] == 1


def test_expired_url_is_403_and_a_new_poll_gives_a_fresh_one(sandbox):
    """expired: the URL from this poll is already expired (403); the next poll's URL works."""
    gen_id = sandbox.submit(GEN3).json()["id"]
    sandbox.wait(gen_id)
    sandbox.handle.set_faults(script(ScriptedFault("download", "expired")))
    stale = video_url(sandbox.poll(gen_id).json())
    assert sandbox.session.get(stale, timeout=5).status_code == 403
    fresh = video_url(sandbox.poll(gen_id).json())
    assert sandbox.session.get(fresh, timeout=5).status_code == 200
    downloads = sandbox.stats()["downloads"]
    assert downloads["expired"] == 1 and downloads["ok"] == 1


def test_skip_delays_a_scripted_fault(sandbox):
    """skip=2: two submits pass, the third gets the fault."""
    sandbox.handle.set_faults(script(ScriptedFault("submit", "503", skip=2)))
    codes = [sandbox.submit({**GEN3, "seed": n}).status_code for n in range(4)]
    assert codes == [201, 201, 503, 201]


def outcomes(make_sandbox, seed: int) -> list[int]:
    sandbox = make_sandbox()
    sandbox.handle.set_faults(FaultConfig(submit={"429": 0.3, "500": 0.2}, seed=seed))
    return [sandbox.submit({**GEN3, "seed": n}).status_code for n in range(30)]


def test_random_faults_are_reproducible_with_a_seed(make_sandbox):
    """Same fault seed, same sequence of answers; another seed, another sequence."""
    first = outcomes(make_sandbox, 7)
    assert first == outcomes(make_sandbox, 7)
    assert first != outcomes(make_sandbox, 8)
    assert {429, 500, 201} == set(first)


def test_faults_route_replaces_the_config(sandbox):
    """POST /_sandbox/faults takes the YAML/JSON form; a bad key is a 400 with a suggestion."""
    url = sandbox.base_url + "/_sandbox/faults"
    answer = sandbox.session.post(url, json={"script": [{"on": "submit", "fault": "503"}]})
    assert answer.status_code == 200
    assert sandbox.submit(GEN3).status_code == 503
    bad = sandbox.session.post(url, json={"sumbit": {"429": 0.1}})
    assert bad.status_code == 400
    assert "did you mean 'submit'" in bad.json()["error"]


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        ({"sumbit": {"429": 0.1}}, ["unknown key 'sumbit'", "did you mean 'submit'"]),
        ({"submit": {"492": 0.1}}, ["unknown submit fault '492'", "did you mean '429'"]),
        ({"poll": {"drop_after": 0.1}}, ["unknown poll fault 'drop_after'", "did you mean 'drop'"]),
        ({"submit": {"429": 1.5}}, ["faults.submit.429", "probability"]),
        ({"submit": {"429": 0.7, "500": 0.7}}, ["add up to 1.4"]),
        ({"script": [{"on": "submit", "fault": "429", "tmes": 2}]}, ["'tmes'", "did you mean 'times'"]),
        ({"seed": 1.5}, ["faults.seed", "whole number"]),
    ],
)
def test_from_mapping_names_the_bad_key(mapping, words):
    """FaultConfig.from_mapping raises a one-line ValueError naming the key, with a suggestion."""
    with pytest.raises(ValueError) as caught:
        FaultConfig.from_mapping(mapping)
    message = str(caught.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_from_mapping_accepts_yaml_int_keys_and_round_trips():
    """YAML turns `429:` into an int key; it is accepted, and to_mapping inverts from_mapping."""
    faults = FaultConfig.from_mapping(
        {"submit": {429: 0.1, "drop_after": 0.05}, "script": [{"on": "poll", "fault": "503", "times": 2}]}
    )
    assert faults.submit == {"429": 0.1, "drop_after": 0.05}
    assert FaultConfig.from_mapping(faults.to_mapping()) == faults
