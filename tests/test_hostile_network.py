"""A hostile network, on loopback: servers that echo the key, send terminal escapes, redirect,
compress, drip bytes, or answer one poll badly. Each test is a way vidpipe was once shown to
leak, hang or pay twice (issue 14)."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import struct
from pathlib import Path

import pytest
from aiohttp import web

from pipeline.errors import DownloadError, TransientError
from pipeline.net.download import Downloader
from pipeline.net.http import ApiClient, RetryPolicy
from pipeline.net.pace import API_PACE
from pipeline.net.providers import AimlApi
from pipeline.net.untrusted import Untrusted
from tests.conftest import KEY
from tests.hostile import HostileServer, ScriptedApi, serve, tiny_mp4
from tests.runner_helpers import ledger_statuses, manifest_text, results

FAST = "run: {concurrency: 2, poll_interval: 0.05, poll_max_interval: 0.1, retries: 2}"
# Every run of 12 characters of the key: any of them in an output is a leak.
KEY_PIECES = [KEY[i : i + 12] for i in range(len(KEY) - 11)]
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def leaks(text: str) -> list[str]:
    return [piece for piece in KEY_PIECES if piece in text]


def assert_no_key_anywhere(result, workdir: Path) -> None:
    assert leaks(result.out + result.err) == []
    for path in (workdir / "outputs").rglob("*"):
        if path.is_file():
            assert leaks(path.read_bytes().decode("latin-1")) == [], path


def long_message_with_the_key() -> str:
    """Over 300 characters, the key from character 280: shortening to 300 used to keep 17 of it."""
    return "x" * 279 + f" {KEY} " + "y" * 60


def key_echo(kind: str):
    """A server that leaks the key in one of the ways seen (kind), on a submit or a poll."""
    message = long_message_with_the_key()

    def answer(request: web.Request) -> web.Response:
        if kind == "submit_400":
            return web.json_response({"message": message, "statusCode": 400}, status=400)
        if kind == "redirect":
            return web.Response(status=302, headers={"Location": f"https://elsewhere.example/?k={KEY}"})
        if request.method == "POST":
            generation_id = f"gen-{KEY}" if kind == "generation_id" else "gen-1"
            return web.json_response({"id": generation_id, "status": "queued"})
        if kind == "poll_400":
            return web.json_response({"message": message, "statusCode": 400}, status=400)
        if kind == "error_name":
            return web.json_response({"status": "error", "error": {"name": KEY, "message": "no"}})
        if kind == "poll_message":
            return web.json_response({"status": "error", "error": {"name": "E", "message": message}})
        return web.json_response({"status": "error", "error": "failed"})

    return HostileServer(answer)


@pytest.mark.parametrize(
    "kind", ["submit_400", "poll_400", "poll_message", "error_name", "redirect", "generation_id"]
)
def test_the_key_echoed_whole_or_in_part_reaches_no_file_and_no_screen(write, run_api, workdir, kind):
    with serve(key_echo(kind)) as base_url:
        result = run_api(base_url, write("m.yaml", manifest_text(jobs=1, run=FAST)), "--json")
    assert result.code == 1
    assert_no_key_anywhere(result, workdir)
    row = results(workdir / "outputs" / "t").iloc[0]
    assert "***" in row["error_message"] + row["error_name"] or kind == "generation_id"


def test_a_generation_id_carrying_the_key_is_not_stored_and_not_paid_for_again(write, run_api, workdir):
    with serve(key_echo("generation_id")) as base_url:
        assert run_api(base_url, write("m.yaml", manifest_text(jobs=1, run=FAST))).code == 1
    row = results(workdir / "outputs" / "t").iloc[0]
    assert row["status"] == "uncertain"  # accepted: a generation may exist
    assert "put the API key into the generation id" in row["error_message"]
    assert row["generation_id"] == ""


def test_terminal_escapes_from_the_server_are_shown_as_text(write, cli, workdir, monkeypatch):
    """A poll error that would retitle the terminal and clear the screen is printed inert."""
    monkeypatch.setenv("AIMLAPI_KEY", KEY)
    hostile = "\x1b]0;pwned\x07\x1b[2J\u202egnp.exe\rdone"
    api = ScriptedApi([{"status": "error", "error": {"name": "E\x1b[31m", "message": hostile}}])
    manifest = write("m.yaml", manifest_text(jobs=1, run=FAST))
    with api.running() as base_url:
        result = cli("run", manifest, "--provider", "aimlapi", "--base-url", base_url)
    assert result.code == 1
    assert CONTROL.search(result.out + result.err) is None
    assert "\u202e" not in result.out
    assert "\\x1b]0;pwned\\x07\\x1b[2J\\u202egnp.exe done" in result.out
    for name in ("results.csv", "results.jsonl", "report.html"):
        text = (workdir / "outputs" / "t" / name).read_text(encoding="utf-8")
        assert CONTROL.search(text.replace("\n", "").replace("\t", "")) is None, name


def test_a_one_megabyte_generation_id_is_refused_not_stored(write, run_api, workdir):
    api = ScriptedApi([{"status": "queued"}], ids=iter(["g" * 1_000_000]))
    with api.running() as base_url:
        assert run_api(base_url, write("m.yaml", manifest_text(jobs=1, run=FAST))).code == 1
    out = workdir / "outputs" / "t"
    assert (out / "results.csv").stat().st_size < 10_000
    assert (out / "ledger.sqlite").stat().st_size < 200_000
    row = results(out).iloc[0]
    assert row["status"] == "uncertain" and api.posts == 1 and api.gets == 0
    assert "generation id is 1,000,000 characters long; at most 256 are accepted" in row["error_message"]


def test_long_names_statuses_and_urls_are_capped(write, run_api, workdir):
    api = ScriptedApi([{"status": "s" * 100_000, "error": {"name": "n" * 100_000, "message": "m" * 100_000}}])
    with api.running() as base_url:
        assert run_api(base_url, write("m.yaml", manifest_text(jobs=1, run=FAST))).code == 1
    out = workdir / "outputs" / "t"
    assert (out / "results.csv").stat().st_size < 10_000
    row = results(out).iloc[0]
    assert len(row["error_name"]) <= 80 and len(row["error_message"]) <= 300


# --- downloads ----------------------------------------------------------------------------


class FakeClock:
    """Seconds that pass only when the hostile server says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fetch(url: str, folder: Path, announced: int | None = None, **options) -> None:
    async def go() -> None:
        async with Downloader(**options) as downloader:
            await downloader.fetch(url, folder / "v.mp4", announced)

    asyncio.run(go())


def mp4_of(size: int) -> bytes:
    """A whole MP4 of `size` bytes: the tiny one plus an mdat box filling the rest."""
    head = tiny_mp4()
    return head + struct.pack(">I4s", size - len(head), b"mdat") + b"\0" * (size - len(head) - 8)


def test_a_compressed_video_is_refused_before_it_is_inflated(tmp_path):
    """306 KB of gzip on the wire once became a 314 MB .part file on each of four attempts."""
    bomb = gzip.compress(tiny_mp4() + b"\0" * 50_000_000, compresslevel=9)
    cdn = HostileServer(
        lambda request: web.Response(
            body=bomb, headers={"Content-Encoding": "gzip"}, content_type="video/mp4"
        )
    )
    with serve(cdn) as base_url, pytest.raises(DownloadError, match=r"came compressed \(gzip\)"):
        fetch(base_url + "/v.mp4", tmp_path)
    assert cdn.seen[0]["Accept-Encoding"] == "identity"
    assert list(tmp_path.iterdir()) == []


def test_bytes_past_the_announced_size_stop_the_download_at_once(tmp_path):
    """A chunked body with no end in sight: the poll announced 1,000 bytes, so byte 1,001 stops it."""

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(mp4_of(64 * 1024))
        for _ in range(200):
            await response.write(b"\0" * 64 * 1024)
        return response

    with (
        serve(HostileServer(endless)) as base_url,
        pytest.raises(DownloadError, match=r"passed its announced 1,000 bytes"),
    ):
        fetch(base_url + "/v.mp4", tmp_path, announced=1000)
    assert list(tmp_path.iterdir()) == []


def test_a_drip_fed_download_is_cut_off_by_its_pace(tmp_path):
    """100 bytes a second of a 1 MB video: it would take 3 hours; it ends after about a minute."""
    clock, body, sent = FakeClock(), mp4_of(1_000_000), []

    async def drip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(body))})
        await response.prepare(request)
        for start in range(0, len(body), 100):
            clock.now += 1  # a second per 100 bytes
            sent.append(start)
            await response.write(body[start : start + 100])
        return response

    with (
        serve(HostileServer(drip)) as base_url,
        pytest.raises(DownloadError, match=r"was too slow: [\d,]+ bytes in \d+ s"),
    ):
        fetch(base_url + "/v.mp4", tmp_path, clock=clock)
    assert list(tmp_path.iterdir()) == []


def test_a_download_at_the_pace_passes(tmp_path):
    clock, body = FakeClock(), mp4_of(1_000_000)

    async def steady(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(len(body))})
        await response.prepare(request)
        for start in range(0, len(body), 40_000):
            clock.now += 1  # 40 kB a second: above the 32 kB/s floor
            await response.write(body[start : start + 40_000])
        return response

    with serve(HostileServer(steady)) as base_url:
        fetch(base_url + "/v.mp4", tmp_path, clock=clock)
    assert (tmp_path / "v.mp4").stat().st_size == len(body)


def redirecting_cdn(target: str) -> tuple[HostileServer, dict[str, int]]:
    """A CDN that answers 302 to `target` ({base} is its own URL) and serves a video elsewhere."""
    counts = {"video": 0}
    box: dict[str, str] = {}

    def answer(request: web.Request) -> web.Response:
        if request.path == "/start.mp4":
            base = box["base"]
            location = target.replace("{base}", base).replace("{plain}", base.replace("127.0.0.1", "0.0.0.0"))
            return web.Response(status=302, headers={"Location": location})
        counts["video"] += 1
        return web.Response(body=tiny_mp4(), content_type="video/mp4")

    server = HostileServer(answer)
    server.box = box
    return server, counts


@pytest.mark.parametrize(
    ("target", "refusal"),
    [
        # 0.0.0.0 reaches this machine's listeners, but is not loopback: plain http is refused.
        (
            "{plain}/video.mp4",
            r"refusing the redirect of the video URL to 'http://0\.0\.0\.0:\d+/video\.mp4': expected https",
        ),
        (
            "{base}/video.mp4?token=" + KEY,
            r"refusing the redirect of the video URL to: it carries the API key",
        ),
    ],
)
def test_every_redirect_hop_of_a_download_meets_the_rules_of_the_first(tmp_path, target, refusal):
    cdn, counts = redirecting_cdn(target)
    with serve(cdn) as base_url:
        cdn.box["base"] = base_url
        with pytest.raises(DownloadError, match=refusal) as caught:
            fetch(base_url + "/start.mp4", tmp_path, untrusted=Untrusted(KEY))  # as the run makes it
    assert counts["video"] == 0
    assert leaks(str(caught.value)) == []
    assert list(tmp_path.iterdir()) == []


# --- polls --------------------------------------------------------------------------------


def dripping_api(clock: FakeClock) -> tuple[HostileServer, list[int]]:
    """Answers every poll honestly, one byte per (fake) second."""
    body = json.dumps({"id": "g", "status": "generating", "padding": "p" * 200}).encode()
    polls: list[int] = []

    async def drip(request: web.Request) -> web.StreamResponse:
        polls.append(1)
        response = web.StreamResponse(
            headers={"Content-Length": str(len(body)), "Content-Type": "application/json"}
        )
        await response.prepare(request)
        for index in range(len(body)):
            clock.now += 1
            await response.write(body[index : index + 1])
            await asyncio.sleep(0.002)  # lets the client see each byte as it comes
        return response

    return HostileServer(drip), polls


def poll_once(base_url: str, clock: FakeClock, deadline: float | None = None):
    async def no_wait(seconds: float) -> None:
        clock.now += seconds

    async def go():
        client = ApiClient(
            base_url,
            KEY,
            AimlApi(),
            requests_per_minute=60_000,
            retry=RetryPolicy(),
            sleep=no_wait,
            clock=clock,
        )
        async with client:
            return await client.poll("g", deadline=deadline)

    return asyncio.run(go())


def test_a_poll_answer_dripped_a_byte_a_second_is_cut_off_by_its_pace():
    clock = FakeClock()
    server, polls = dripping_api(clock)
    with (
        serve(server) as base_url,
        pytest.raises(TransientError, match=r"HTTP 200, but the answer came too slow"),
    ):
        poll_once(base_url, clock)
    assert len(polls) == RetryPolicy().attempts  # each attempt cut off, then retried as transient


def test_a_dripped_poll_ends_by_the_jobs_run_timeout_retries_included():
    """With run.timeout 20, a dripped poll once took 122 s."""
    clock = FakeClock()
    server, polls = dripping_api(clock)
    with serve(server) as base_url, pytest.raises(TransientError):
        poll_once(base_url, clock, deadline=20)
    assert len(polls) <= 2  # not the 6 attempts the retry policy allows
    assert clock.now < 20 + 2 * API_PACE.floor_s


def late_but_whole_api(clock: FakeClock, seconds: float) -> HostileServer:
    """Takes `seconds` (fake) before its headers, then sends a whole, honest answer at once."""

    async def late(request: web.Request) -> web.Response:
        clock.now += seconds
        if request.method == "POST":
            return web.json_response({"id": "gen-late", "status": "queued"})
        return web.json_response({"id": "g", "status": "generating"})

    return HostileServer(late)


def test_a_slow_service_whose_answer_arrives_whole_is_not_cut_off():
    """A submit answered after 30 s carries a paid generation's id: it must be used, not called
    too slow (the pace counts from the headers, and a complete body is never refused)."""
    clock = FakeClock()

    async def go(base_url):
        client = ApiClient(
            base_url, KEY, AimlApi(), requests_per_minute=None, retry=RetryPolicy(), clock=clock
        )
        async with client:
            submitted = await client.submit({"model": "gen3a_turbo", "prompt": "p", "duration": 5})
            polled = await client.poll("g")
        return submitted, polled

    with serve(late_but_whole_api(clock, 30.0)) as base_url:
        submitted, polled = asyncio.run(go(base_url))
    assert submitted.generation_id == "gen-late"
    assert polled.state != "lost"


# --- one bad poll answer ------------------------------------------------------------------


def not_found(request: web.Request) -> web.Response:
    return web.json_response({"message": "Generation not found", "statusCode": 404}, status=404)


def not_an_object(request: web.Request) -> web.Response:
    return web.json_response([])


HONEST = [{"status": "generating"}, {"status": "completed", "video": ["{base}/video.mp4"]}]


@pytest.mark.parametrize("bad", [not_found, not_an_object], ids=["404", "empty list"])
def test_one_bad_poll_answer_does_not_make_a_job_uncertain(write, run_api, workdir, bad):
    api = ScriptedApi([bad, *HONEST])
    with api.running() as base_url:
        result = run_api(base_url, write("m.yaml", manifest_text(jobs=1, run=FAST)))
    assert result.code == 0, result.err
    assert ledger_statuses(workdir / "outputs" / "t") == {
        results(workdir / "outputs" / "t").iloc[0]["job_id"]: "completed"
    }
    assert api.posts == 1 and api.downloads == 1


def lost_then_found(write, run_api, *flags):
    """A run whose polls all answer 404 (the job ends uncertain), then a rerun with `flags`
    against a server that knows the generation again."""
    api = ScriptedApi([not_found])
    manifest = write("m.yaml", manifest_text(jobs=1, run=FAST))
    with api.running() as base_url:
        first = run_api(base_url, manifest)
        polls_before = api.gets
        api.polls = list(HONEST)
        second = run_api(base_url, manifest, *flags)
    return api, first, second, polls_before


def test_a_rerun_polls_a_known_generation_id_of_an_uncertain_job(write, run_api, workdir):
    api, first, second, polls_before = lost_then_found(write, run_api)
    assert first.code == 1 and polls_before >= 5  # re-polled for a while before given up
    assert second.code == 0, second.err
    assert api.posts == 1
    assert set(ledger_statuses(workdir / "outputs" / "t").values()) == {"completed"}


def test_retry_uncertain_never_pays_again_for_a_generation_that_still_answers(write, run_api, workdir):
    api, _, second, _ = lost_then_found(write, run_api, "--retry-uncertain")
    assert second.code == 0, second.err
    assert api.posts == 1
    assert set(ledger_statuses(workdir / "outputs" / "t").values()) == {"completed"}


def test_retry_uncertain_resubmits_only_after_the_known_id_is_lost_again(write, run_api, workdir):
    api = ScriptedApi([not_found])
    manifest = write("m.yaml", manifest_text(jobs=1, run=FAST))
    with api.running() as base_url:
        assert run_api(base_url, manifest).code == 1
        api.events.clear()
        run_api(base_url, manifest, "--retry-uncertain")
    first_post = api.events.index("POST")
    assert api.events[:first_post].count("gen-1") >= 5  # the old id, polled again first
    assert api.posts == 2
