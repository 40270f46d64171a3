"""Security: the key stays with the API host, local files stay local, sizes stay bounded.

A small hostile server (real HTTP on loopback) stands in for a compromised or broken API where
the honest sandbox cannot: redirects to another host, oversized answers.
"""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from PIL import Image

from pipeline.errors import DownloadError, InputError, ManifestError
from pipeline.net.download import Downloader, target_path
from pipeline.read.images import ImageProblem
from pipeline.read.jobs import load_batch
from pipeline.run.runplan import jobs_of
from pipeline.run.steps import Job
from pipeline.sandbox import SandboxConfig, running_sandbox
from tests.conftest import KEY
from tests.hostile import LEGACY, HostileServer, serve
from tests.runner_helpers import manifest_text, results


def test_a_redirect_from_the_api_is_not_followed_and_the_key_goes_nowhere(write, run_api, workdir):
    collector = HostileServer(lambda request: web.json_response({"id": "stolen"}))
    with serve(collector) as elsewhere:
        api = HostileServer(
            lambda request: web.Response(status=307, headers={"Location": elsewhere + LEGACY})
        )
        with serve(api) as base_url:
            result = run_api(base_url, write("m.yaml", manifest_text(jobs=1)))
    assert result.code == 1
    assert collector.seen == []
    assert api.seen and all(h.get("Authorization") == f"Bearer {KEY}" for h in api.seen)
    row = results(workdir / "outputs" / "t").iloc[0]
    assert (
        row["status"] == "failed"
        and "redirected to" in row["error_message"]
        and "not followed" in row["error_message"]
    )


def test_an_oversized_api_answer_is_refused_with_a_message(write, run_api, workdir):
    huge = b'{"id": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    api = HostileServer(lambda request: web.Response(body=huge, content_type="application/json"))
    with serve(api) as base_url:
        result = run_api(base_url, write("m.yaml", manifest_text(jobs=1)))
    assert result.code == 1
    row = results(workdir / "outputs" / "t").iloc[0]
    assert row["status"] == "uncertain"  # a 2xx to a POST: a generation may exist, so no resend
    assert "the answer is larger than 8,388,608 bytes; refusing to read it" in row["error_message"]
    assert len(api.seen) == 1


def test_an_oversized_video_is_refused_and_nothing_is_left_behind(tmp_path):
    async def fetch(url: str) -> None:
        async with Downloader(max_bytes=1000) as downloader:
            await downloader.fetch(url, tmp_path / "v.mp4")

    with running_sandbox(SandboxConfig(gen_time=0)) as sandbox:
        import json
        import urllib.request

        def call(method, query="", body=None):
            request = urllib.request.Request(
                sandbox.base_url + LEGACY + query,
                method=method,
                data=body,
                headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())

        generation = call(
            "POST", body=json.dumps({"model": "gen3a_turbo", "prompt": "kite", "duration": 5}).encode()
        )
        for _ in range(100):
            answer = call("GET", f"?generation_id={generation['id']}")
            if answer["status"] == "completed":
                break
            import time

            time.sleep(0.05)
        with pytest.raises(DownloadError, match=r"at most 1,000 are accepted"):
            asyncio.run(fetch(answer["video"][0]))
    assert list(tmp_path.iterdir()) == []


def test_an_oversized_local_image_is_refused_with_its_size(write, workdir):
    noise = np.random.default_rng(0).integers(0, 255, size=(1400, 1400, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    write("big.png", buffer.getvalue())
    with pytest.raises(ManifestError) as caught:
        load_batch(write("m.yaml", "version: 1\njobs: [{prompt: a, image_url: big.png}]\n"))
    (problem,) = caught.value.problems
    assert "expected at most 3,932,136 (a 5 MB data URI)" in str(problem)


def _job_of(manifest: Path) -> Job:
    batch = load_batch(manifest)
    (job,) = jobs_of(batch.table, batch.images, "{job_id}.mp4", manifest.parent / "videos")
    return job


def test_an_image_swapped_for_an_outside_file_after_validation_is_not_sent(write, workdir):
    """The same bytes behind a link to a file outside the folder: refused at submit time."""
    buffer = io.BytesIO()
    Image.new("RGB", (32, 18)).save(buffer, "PNG")
    write("inside/a.png", buffer.getvalue())
    write("secret.png", buffer.getvalue())
    job = _job_of(write("inside/m.yaml", "version: 1\njobs: [{prompt: a, image_url: a.png}]\n"))
    os.remove(workdir / "inside" / "a.png")
    (workdir / "inside" / "a.png").symlink_to(workdir / "secret.png")
    with pytest.raises(ImageProblem, match="replaced by a link since the manifest was read; not sent"):
        job.submit_body()


def test_an_image_changed_after_validation_is_not_sent_under_the_old_job_id(write, workdir):
    """The job id was made from the picture's bytes: other bytes (here, not even a picture)
    are refused at submit time, and the same bytes are sent as a data URI."""
    buffer = io.BytesIO()
    Image.new("RGB", (32, 18)).save(buffer, "PNG")
    write("a.png", buffer.getvalue())
    job = _job_of(write("m.yaml", "version: 1\njobs: [{prompt: a, image_url: a.png}]\n"))
    assert job.submit_body()["image_url"].startswith("data:image/png;base64,")
    assert job.request["image_url"] == "a.png"  # the ledger keeps the name the manifest wrote
    write("a.png", b"not a picture at all")
    with pytest.raises(ImageProblem, match="changed since the manifest was read"):
        job.submit_body()


@pytest.mark.parametrize("name", ["../x.mp4", "a/b.mp4", "..", "", "x\x00.mp4", "/etc/passwd"])
def test_output_names_cannot_leave_the_output_folder(tmp_path: Path, name):
    with pytest.raises(InputError):
        target_path(tmp_path, name)


@pytest.mark.parametrize(
    "answer",
    [
        lambda request: web.json_response({"status": "queued"}),
        lambda request: web.Response(text="<html>ok</html>", status=200),
        lambda request: web.json_response(["not", "an", "object"], status=201),
    ],
)
def test_an_accepted_submit_without_a_usable_id_is_uncertain_and_sent_once(write, run_api, workdir, answer):
    api = HostileServer(answer)
    with serve(api) as base_url:
        result = run_api(base_url, write("m.yaml", manifest_text(jobs=1)))
    assert result.code == 1
    assert len(api.seen) == 1
    row = results(workdir / "outputs" / "t").iloc[0]
    assert row["status"] == "uncertain"
    assert "accepted" in row["error_message"] or "HTTP 20" in row["error_message"]
