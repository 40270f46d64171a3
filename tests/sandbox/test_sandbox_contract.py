"""The sandbox speaks the contract: both endpoints, statuses, ids, shapes, headers, errors."""

from __future__ import annotations

import re
import time

import pytest
from sandbox_helpers import GEN3, video_url

from pipeline.sandbox import SandboxConfig, SandboxServer, body_hash

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.mark.parametrize("endpoint", ["legacy", "universal"])
def test_submit_then_poll_reaches_completed_with_a_playable_url(make_sandbox, endpoint):
    """Both paths: submit answers queued with an id, polling ends completed with a video URL."""
    sandbox = make_sandbox(gen_time=0.05)
    answer = sandbox.submit(GEN3, endpoint)
    assert answer.status_code == 201
    assert answer.json()["status"] == "queued"
    assert UUID.match(answer.json()["id"])
    body = sandbox.wait(answer.json()["id"], endpoint)
    assert body["status"] == "completed"
    assert body["error"] is None
    data = sandbox.download(video_url(body))
    assert data[4:8] == b"ftyp"


def test_statuses_go_queued_generating_completed(make_sandbox):
    """A poll sees queued while the account is busy, then generating, then completed."""
    sandbox = make_sandbox(gen_time=0.3, gen_time_dist="fixed", concurrency=1)
    first = sandbox.submit(GEN3).json()["id"]
    second = sandbox.submit({**GEN3, "seed": 2}).json()["id"]
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = sandbox.poll(second).json()["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "completed":
            break
        time.sleep(0.02)
    assert seen == ["queued", "generating", "completed"]
    assert sandbox.poll(first).json()["status"] == "completed"


def test_legacy_path_answers_a_list_and_universal_an_object_by_default(sandbox):
    """video_shape=auto: a list of URL strings on the legacy path, {url, duration} on the other."""
    legacy = sandbox.generate(GEN3, "legacy")
    assert isinstance(legacy["video"], list) and isinstance(legacy["video"][0], str)
    universal = sandbox.generate({**GEN3, "aspect_ratio": "9:16"}, "universal")
    assert universal["video"]["duration"] == 5
    assert universal["video"]["url"].startswith(sandbox.base_url + "/cdn/")


@pytest.mark.parametrize(
    ("shape", "check"),
    [
        ("list", lambda v: isinstance(v, list) and isinstance(v[0], str)),
        ("object", lambda v: set(v) == {"url", "duration"}),
        ("object_legacy", lambda v: {"url", "content_type", "file_name", "file_size"} <= set(v)),
        ("list_objects", lambda v: isinstance(v, list) and "url" in v[0]),
        ("string", lambda v: isinstance(v, str)),
    ],
)
def test_every_video_shape_can_be_chosen(make_sandbox, shape, check):
    """Each documented form of `video` is produced when asked for, on either path."""
    sandbox = make_sandbox(video_shape=shape)
    for endpoint in ("legacy", "universal"):
        body = sandbox.generate(GEN3, endpoint)
        assert check(body["video"]), body["video"]
        assert sandbox.download(video_url(body))[4:8] == b"ftyp"


@pytest.mark.parametrize(
    ("form", "pattern"),
    [
        ("uuid", UUID),
        ("uuid_model", re.compile(r"^[0-9a-f-]{36}:runway-gen3/turbo/image-to-video$")),
        ("numeric", re.compile(r"^\d+$")),
        ("nanoid", re.compile(r"^[A-Za-z0-9_-]{21}$")),
        ("uuid_nonhex", re.compile(r"^[0-9a-f-]{24}g[0-9a-f]{11}$")),
    ],
)
def test_every_id_form_round_trips(make_sandbox, form, pattern):
    """Ids take each documented form and poll back (URL-encoded) to the same generation."""
    sandbox = make_sandbox(id_form=form)
    gen_id = sandbox.submit(GEN3).json()["id"]
    assert pattern.match(gen_id), gen_id
    body = sandbox.wait(gen_id)
    assert body["id"] == gen_id and body["status"] == "completed"


def test_mixed_ids_cycle_through_the_forms(make_sandbox):
    """id_form=mixed hands out every form in turn, all distinct."""
    sandbox = make_sandbox(id_form="mixed")
    ids = [sandbox.submit({**GEN3, "seed": n}).json()["id"] for n in range(5)]
    assert len(set(ids)) == 5
    assert any(":" in i for i in ids) and any(i.isdigit() for i in ids)


def test_id_key_status_code_and_usage_variants(make_sandbox):
    """generation_id instead of id, 200 instead of 201, tokens_used, meta on the submit."""
    sandbox = make_sandbox(
        id_key="generation_id", submit_status=200, usage_key="tokens_used", usage_on_submit=True
    )
    answer = sandbox.submit(GEN3)
    assert answer.status_code == 200
    data = answer.json()
    assert "id" not in data and data["meta"]["usage"]["tokens_used"] == 0
    body = sandbox.wait(data["generation_id"])
    assert body["meta"]["usage"]["tokens_used"] == 525_000


@pytest.mark.parametrize(("duration", "credits"), [(5, 525_000), (10, 1_050_000)])
def test_completed_carries_credits_in_meta_and_headers(sandbox, duration, credits):
    """meta.usage.credits_used and x-aimlapi-credits-used: 525,000 per 5 s of gen3a_turbo."""
    gen_id = sandbox.submit({**GEN3, "duration": duration}).json()["id"]
    sandbox.wait(gen_id)
    answer = sandbox.poll(gen_id)
    assert answer.json()["meta"]["usage"]["credits_used"] == credits
    assert answer.headers["x-aimlapi-credits-used"] == str(credits)
    assert answer.headers["x-inference-id"] == gen_id
    assert sandbox.stats()["generations"]["credits_used"] == credits


def test_client_request_id_is_echoed_and_inference_id_set(sandbox):
    """X-Client-Request-Id comes back as x-client-request-id; x-inference-id is the id."""
    answer = sandbox.submit(GEN3, headers={"X-Client-Request-Id": "job-7:try.1"})
    assert answer.headers["x-client-request-id"] == "job-7:try.1"
    assert answer.headers["x-inference-id"] == answer.json()["id"]
    bad = sandbox.submit(GEN3, headers={"X-Client-Request-Id": "has spaces"})
    assert "x-client-request-id" not in bad.headers


def test_unknown_generation_id_is_a_nestjs_404(sandbox):
    """An unknown id answers 404 with {message, path, requestId, statusCode, timestamp}."""
    answer = sandbox.poll("no-such-id")
    assert answer.status_code == 404
    body = answer.json()
    assert set(body) == {"message", "path", "requestId", "statusCode", "timestamp"}
    assert body["statusCode"] == 404
    assert sandbox.stats()["polls"]["unknown_id"] == 1


def test_unknown_id_can_answer_200_status_unknown(make_sandbox):
    """unknown_id=unknown: 200 with status 'unknown' (a final status) instead of a 404."""
    sandbox = make_sandbox(unknown_id="unknown")
    answer = sandbox.poll("no-such-id")
    assert answer.status_code == 200 and answer.json()["status"] == "unknown"


def test_nestjs_variants_string_status_code_and_message_list(make_sandbox):
    """statusCode as a string and message as a list, both seen in the docs."""
    sandbox = make_sandbox(status_code_as_string=True, message_as_list=True)
    body = sandbox.poll("nope").json()
    assert body["statusCode"] == "404" and isinstance(body["message"], list)


@pytest.mark.parametrize(
    ("settings", "queued", "running"),
    [
        ({"queued_status": "waiting", "running_status": "processing"}, "waiting", "processing"),
        ({"queued_status": "pending", "running_status": "active"}, "pending", "active"),
    ],
)
def test_alternate_running_status_names(make_sandbox, settings, queued, running):
    """The still-running statuses can be renamed to the other names seen in the wild."""
    sandbox = make_sandbox(gen_time=0.4, gen_time_dist="fixed", concurrency=1, **settings)
    assert sandbox.submit(GEN3).json()["status"] == queued
    second = sandbox.submit({**GEN3, "seed": 9}).json()["id"]
    assert sandbox.poll(second).json()["status"] == queued
    deadline = time.monotonic() + 5
    while sandbox.poll(second).json()["status"] != running:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_pending_video_forms(make_sandbox):
    """Before completion `video` is null by default, or absent, or [] when asked."""
    for form, check in (
        ("null", lambda b: b["video"] is None),
        ("absent", lambda b: "video" not in b),
        ("empty_list", lambda b: b["video"] == []),
    ):
        sandbox = make_sandbox(gen_time=5, pending_video=form)
        gen_id = sandbox.submit(GEN3).json()["id"]
        assert check(sandbox.poll(gen_id).json())


def test_unknown_paths_answer_a_nestjs_404(sandbox):
    """A wrong path gets the NestJS 'Cannot GET' 404, not an HTML page."""
    answer = sandbox.session.get(sandbox.base_url + "/v2/generate/video/runway/generations")
    assert answer.status_code == 404
    assert answer.json()["message"].startswith("Cannot GET")


def test_identical_resubmits_are_counted_by_body(sandbox):
    """Two accepted submits of the same body (either path) count as one identical resubmit."""
    sandbox.submit(GEN3, "legacy")
    sandbox.submit({**GEN3}, "universal")
    sandbox.submit({**GEN3, "seed": 2})
    submits = sandbox.stats()["submits"]
    assert submits["accepted"] == 3
    assert submits["identical_resubmits"] == 1
    assert submits["duplicate_bodies"] == {body_hash(GEN3): 2}
    assert submits["by_endpoint"] == {"legacy": 2, "universal": 1}


def test_stats_reset_route_clears_generations_and_counts(sandbox):
    """POST /_sandbox/reset forgets generations and counts."""
    gen_id = sandbox.submit(GEN3).json()["id"]
    sandbox.session.post(sandbox.base_url + "/_sandbox/reset").raise_for_status()
    assert sandbox.stats()["submits"]["accepted"] == 0
    assert sandbox.poll(gen_id).status_code == 404


def test_server_start_stop_in_process():
    """SandboxServer.start() on port 0 gives a base URL; stats() works without HTTP."""
    import asyncio

    import aiohttp

    async def scenario() -> dict:
        server = SandboxServer(SandboxConfig(gen_time=0))
        base_url = await server.start(host="127.0.0.1", port=0)
        try:
            assert base_url.startswith("http://127.0.0.1:")
            async with (
                aiohttp.ClientSession() as client,
                client.post(
                    base_url + "/v2/video/generations",
                    json={"model": "gen3a_turbo", "duration": 5},
                    headers={"Authorization": "Bearer k"},
                ) as answer,
            ):
                assert answer.status == 201
            return server.stats()
        finally:
            await server.stop()

    assert asyncio.run(scenario())["submits"]["accepted"] == 1
