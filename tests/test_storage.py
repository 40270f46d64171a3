"""output.dir as a URL: videos, posters, tables, report and dataset go to an object store.

Most tests run against moto's S3 server on loopback (tests/s3_server.py); the Store logic
itself is checked on fsspec's in-memory filesystem.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import uuid
from pathlib import Path

import pytest

pytest.importorskip("fsspec")
pytest.importorskip("s3fs")
pytest.importorskip("moto")

from pipeline.errors import InputError, StoreError
from pipeline.write.storage import FsspecStore, LocalStore, open_store
from tests.runner_helpers import manifest_text, sha256_of
from tests.s3_server import BUCKET, serve_s3

URL = f"s3://{BUCKET}/runs/a"


def ledger_rows(work: Path) -> list[dict]:
    with sqlite3.connect(work / "ledger.sqlite") as db:
        db.row_factory = sqlite3.Row
        return [
            dict(row)
            for row in db.execute("SELECT job_id, status, path, bytes, sha256, error_message FROM jobs")
        ]


def out(url: str) -> str:
    return f"output: {{dir: {json.dumps(url)}}}"


@pytest.fixture
def s3(monkeypatch, tmp_path_factory):
    """moto's S3 server on loopback with one bucket, and the AWS environment pointing at it."""
    yield from serve_s3(monkeypatch, tmp_path_factory)


@pytest.fixture
def memory_url():
    """A fresh folder in fsspec's in-memory filesystem (shared by the whole process)."""
    import fsspec

    url = f"memory://vidpipe-{uuid.uuid4().hex[:12]}"
    yield url
    memory = fsspec.filesystem("memory")
    if memory.exists(url):
        memory.rm(url, recursive=True)


# --- a run against S3 -----------------------------------------------------------------------


def test_a_run_puts_videos_tables_and_report_in_the_bucket(write, run_api, sandbox, s3, workdir):
    result = run_api(sandbox, write("m.yaml", manifest_text(jobs=3, extra=out(URL))), "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["out_dir"] == URL
    assert summary["tables"] == [f"{URL}/results.csv", f"{URL}/results.jsonl"]
    assert summary["report"] == f"{URL}/report.html"

    work = workdir / "outputs" / "t"
    rows = ledger_rows(work)
    assert [row["status"] for row in rows] == ["completed"] * 3
    keys = s3.keys("runs/a/")
    for row in rows:
        key = f"runs/a/{row['path']}"
        assert keys[key] == row["bytes"] and s3.sha256(key) == row["sha256"]
        assert f"runs/a/posters/{Path(row['path']).stem}.jpg" in keys
    assert {"runs/a/results.csv", "runs/a/results.jsonl", "runs/a/report.html"} <= set(keys)
    assert len(keys) == 3 + 3 + 3  # videos, posters, tables and report: no probe left behind
    assert s3.read("runs/a/results.csv") == (work / "results.csv").read_bytes()
    page = s3.read("runs/a/report.html").decode()
    assert page.count('data-src="videos/') == 3 and page.count('src="posters/') == 3
    # The work folder keeps the ledger, the tables and the posters, not the videos.
    assert (work / "ledger.sqlite").is_file()
    assert not list(work.rglob("*.mp4")) and not list(work.rglob("*.part"))


def test_a_rerun_pays_and_fetches_nothing_and_refetches_a_deleted_video(write, run_api, sandbox, s3):
    manifest = write("m.yaml", manifest_text(jobs=3, extra=out(URL)))
    assert run_api(sandbox, manifest).code == 0
    first = {key: s3.sha256(key) for key in s3.keys("runs/a/videos/")}

    again = run_api(sandbox, manifest, "--json")
    assert again.code == 0, again.err
    assert json.loads(again.out)["already_done"] == 3
    stats = sandbox.stats()
    assert stats["submits"]["accepted"] == 3 and stats["downloads"]["ok"] == 3

    gone = sorted(first)[1]
    s3.client.delete_object(Bucket=BUCKET, Key=gone)
    third = run_api(sandbox, manifest, "--json")
    assert third.code == 0, third.err
    assert json.loads(third.out)["already_done"] == 2
    stats = sandbox.stats()
    assert stats["submits"]["accepted"] == 3  # polled again for its video URL, never resubmitted
    assert stats["downloads"]["ok"] == 4
    assert {key: s3.sha256(key) for key in s3.keys("runs/a/videos/")} == first


def test_a_bucket_that_does_not_exist_stops_the_run_before_any_submit(write, run_api, sandbox, s3):
    manifest = write("m.yaml", manifest_text(jobs=2, extra=out("s3://no-such-bucket/x")))
    result = run_api(sandbox, manifest)
    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("error: output.dir s3://no-such-bucket/x: cannot write there: ")
    assert "bucket does not exist" in result.err_lines[0] and result.err_lines[0].endswith("nothing was sent")
    assert sandbox.stats()["submits"]["accepted"] == 0


def test_status_export_and_report_take_the_url(write, run_api, cli, sandbox, s3, workdir):
    url = f"s3://{BUCKET}/nightly"
    assert run_api(sandbox, write("m.yaml", manifest_text(jobs=2)), "--out", url).code == 0

    status = cli("status", url)
    assert status.code == 0, status.err
    assert status.out.splitlines()[:2] == [
        "outputs/t: 2 jobs: 2 completed",
        f"Outputs published to {url}; the ledger is here",
    ]
    assert json.loads(cli("status", url, "--json").out)["store"] == url

    exported = cli("export", url, "--to", "ds")
    assert exported.out == "Exported 2 videos to ds/ with metadata.jsonl\n", exported.err
    records = [json.loads(line) for line in (workdir / "ds" / "metadata.jsonl").read_text().splitlines()]
    assert [sha256_of(workdir / "ds" / r["file_name"]) for r in records] == [r["sha256"] for r in records]

    to_bucket = cli("export", url, "--to", f"s3://{BUCKET}/datasets/v1")
    assert to_bucket.out == f"Exported 2 videos to s3://{BUCKET}/datasets/v1/ with metadata.jsonl\n"
    dataset = s3.keys("datasets/v1/")
    assert {f"datasets/v1/{r['file_name']}": r["bytes"] for r in records}.items() <= dataset.items()
    assert s3.read("datasets/v1/metadata.jsonl") == (workdir / "ds" / "metadata.jsonl").read_bytes()

    # Posters gone from the bucket and the work folder: the report makes them from the videos.
    for key in s3.keys("nightly/posters/"):
        s3.client.delete_object(Bucket=BUCKET, Key=key)
    for poster in (workdir / "outputs" / "t" / "posters").glob("*.jpg"):
        poster.unlink()
    report = cli("report", url, "--rows", "seed")
    assert report.out == f"Report: {url}/report.html\n", report.err
    assert len(s3.keys("nightly/posters/")) == 2
    assert not list((workdir / "outputs" / "t").rglob("*.mp4"))

    unknown = cli("status", f"s3://{BUCKET}/elsewhere")
    assert unknown.code == 2
    assert unknown.err_lines == [
        f"error: s3://{BUCKET}/elsewhere: no work folder under outputs/ publishes there; "
        "name the folder that holds the run's ledger.sqlite with --ledger-dir DIR"
    ]


# --- an upload that fails ---------------------------------------------------------------------


def test_a_failed_upload_leaves_the_job_generated_and_a_rerun_fetches_it(
    write, run_api, sandbox, workdir, memory_url, monkeypatch
):
    text = manifest_text(jobs=2, extra=f"output: {{dir: {json.dumps(memory_url)}, ledger_dir: work}}")
    manifest = write("m.yaml", text)
    publish = FsspecStore.publish

    def refuse_videos(self, local, relative, *, keep=True):
        if relative.endswith(".mp4"):
            raise StoreError(f"cannot upload {local.name} to {self.join(relative)}: Access Denied")
        return publish(self, local, relative, keep=keep)

    monkeypatch.setattr(FsspecStore, "publish", refuse_videos)
    assert run_api(sandbox, manifest).code == 1
    rows = ledger_rows(workdir / "work")
    assert [row["status"] for row in rows] == ["generated", "generated"]
    assert all(": Access Denied" in row["error_message"] for row in rows)

    monkeypatch.setattr(FsspecStore, "publish", publish)
    assert run_api(sandbox, manifest).code == 0
    assert sandbox.stats()["submits"]["accepted"] == 2
    rows = ledger_rows(workdir / "work")
    stored = FsspecStore(memory_url).sizes("videos")
    assert stored == {row["path"]: row["bytes"] for row in rows}
    assert not list((workdir / "work").rglob("*.mp4"))


# --- the Store itself -------------------------------------------------------------------------


def test_fsspec_store_publishes_lists_fetches_and_travels(tmp_path, memory_url):
    store = open_store(memory_url)
    assert isinstance(store, FsspecStore) and store.remote
    store.check_writable()
    assert store.sizes() == {}  # the probe is gone
    video, poster = tmp_path / "a.mp4", tmp_path / "a.jpg"
    video.write_bytes(b"v" * 1000)
    poster.write_bytes(b"p" * 10)
    store.publish(video, "videos/a.mp4", keep=False)
    store.publish(poster, "posters/a.jpg")
    assert not video.exists() and poster.exists()  # a video's local copy goes, a poster's stays
    assert store.sizes() == {"videos/a.mp4": 1000, "posters/a.jpg": 10}
    assert store.sizes("videos") == {"videos/a.mp4": 1000}
    assert store.read_bytes("posters/a.jpg") == b"p" * 10 and store.read_bytes("nothing") is None

    copy = pickle.loads(pickle.dumps(store))  # as a Ray worker receives it: no filesystem inside
    assert copy.url == memory_url and copy._fs is None
    copy.fetch("videos/a.mp4", tmp_path / "back" / "a.mp4")
    assert (tmp_path / "back" / "a.mp4").read_bytes() == b"v" * 1000
    dataset = store.child("dataset")
    assert store.copy_to("videos/a.mp4", dataset, "a.mp4")
    assert dataset.sizes() == {"a.mp4": 1000}
    store.remove("posters/a.jpg")
    store.remove("posters/a.jpg")  # already gone: fine
    assert set(store.sizes()) == {"videos/a.mp4", "dataset/a.mp4"}


def test_store_urls_and_local_folders(tmp_path):
    assert FsspecStore("s3://bucket/prefix/").describe() == "s3://bucket/prefix"
    with pytest.raises(InputError, match="nosuchscheme"):
        FsspecStore("nosuchscheme://bucket/x").check_writable()
    local = open_store(tmp_path / "out")
    assert isinstance(local, LocalStore) and not local.remote
    video = tmp_path / "out" / "videos" / "a.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"v" * 5)
    local.publish(video, "videos/a.mp4", keep=False)  # already in place: nothing moves
    assert video.read_bytes() == b"v" * 5
    assert local.sizes() == {"videos/a.mp4": 5}


@pytest.mark.parametrize(
    ("url", "options", "named"),
    [
        ("s3://me:hunter22@bucket/x", {}, "output.dir s3://***@bucket/x: credentials in the URL"),
        ("s3://bucket/x", {"secret": "hunter22"}, "output.storage_options.secret: looks like a credential"),
        (
            "s3://bucket/x",
            {"client_kwargs": {"aws_secret_access_key": "hunter22"}},
            "output.storage_options.client_kwargs.aws_secret_access_key: looks like a credential",
        ),
    ],
)
def test_credentials_in_the_url_or_options_are_refused_without_being_shown(url, options, named):
    with pytest.raises(InputError) as caught:
        FsspecStore(url, options)
    assert str(caught.value).startswith(named) and "hunter22" not in str(caught.value)


def test_options_that_are_not_credentials_are_kept():
    options = {"endpoint_url": "https://minio.local", "s3_additional_kwargs": {"SSEKMSKeyId": "alias/x"}}
    assert FsspecStore("s3://bucket/x", options).storage_options == options
