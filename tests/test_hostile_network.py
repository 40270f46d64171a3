"""A hostile network, on loopback: servers that echo the key, send terminal escapes, redirect,
compress, drip bytes, or answer one poll badly. Each test is a way vidpipe was once shown to
leak, hang or pay twice (issue 14)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import web

from tests.conftest import KEY
from tests.hostile import HostileServer, ScriptedApi, serve
from tests.runner_helpers import manifest_text, results

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
