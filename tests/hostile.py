"""A small hostile API for tests (real HTTP on loopback): it answers whatever a test scripts."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from threading import Event, Thread
from typing import Any

from aiohttp import web

LEGACY = "/v2/generate/video/runway/generation"


def tiny_mp4() -> bytes:
    """The smallest file the downloader accepts as a whole MP4: an ftyp box and a moov box."""
    ftyp = struct.pack(">I4s", 16, b"ftyp") + b"isom" + struct.pack(">I", 512)
    return ftyp + struct.pack(">I4s", 8, b"moov")


class ScriptedApi:
    """An API on loopback: each submit gets the next id of `ids` (or `gen-N`), each poll the next
    answer of `polls` (the last one repeats). An answer is a JSON body, or a function of the
    request returning an aiohttp response. The video it hands out is served at /video.mp4 by
    `video` (by default a whole tiny MP4); `{base}` in a poll body becomes the server's URL."""

    def __init__(
        self,
        polls: list[Any],
        ids: Iterator[Any] | None = None,
        video: Callable[[web.Request], Any] | None = None,
    ):
        self.polls, self.ids, self.video = list(polls), ids, video
        self.posts = self.gets = self.downloads = 0
        self.events: list[str] = []  # "POST", or the generation id of each poll
        self.base = ""
        self.server = HostileServer(self.answer)

    def answer(self, request: web.Request):
        if request.path == "/video.mp4":
            self.downloads += 1
            return self.video(request) if self.video else web.Response(body=tiny_mp4())
        self.events.append("POST" if request.method == "POST" else request.query.get("generation_id", ""))
        if request.method == "POST":
            self.posts += 1
            generation_id = next(self.ids) if self.ids else f"gen-{self.posts}"
            return web.json_response({"id": generation_id, "status": "queued"})
        self.gets += 1
        answer = self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]
        if callable(answer):
            return answer(request)
        return web.json_response(_with_base(answer, self.base))

    @contextmanager
    def running(self):
        with serve(self.server) as base_url:
            self.base = base_url
            yield base_url


def _with_base(value: Any, base: str) -> Any:
    if isinstance(value, str):
        return value.replace("{base}", base)
    if isinstance(value, dict):
        return {k: _with_base(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_base(v, base) for v in value]
    return value


class HostileServer:
    """Answers every submit with `answer`; records the headers each request arrived with. It has
    no usage logs (GET /v2/logs answers 404), so maybe-sent submits stay uncertain there."""

    def __init__(self, answer):
        self.answer = answer
        self.seen: list[dict[str, str]] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/v2/logs":  # an API without usage logs: nothing is settled here
            return web.json_response({"message": "Cannot GET /v2/logs"}, status=404)
        self.seen.append(dict(request.headers))
        answer = self.answer(request)
        return await answer if asyncio.iscoroutine(answer) else answer


def serve(server: HostileServer):
    """Run `server` on a loopback port in a background thread; yields its base URL."""

    @contextmanager
    def running():
        ready, stop, box = Event(), None, {}

        async def main():
            nonlocal stop
            stop = asyncio.Event()
            runner = web.AppRunner(server.app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            box["url"] = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
            box["loop"] = asyncio.get_running_loop()
            ready.set()
            await stop.wait()
            await runner.cleanup()

        thread = Thread(target=asyncio.run, args=(main(),), daemon=True)
        thread.start()
        ready.wait(10)
        try:
            yield box["url"]
        finally:
            box["loop"].call_soon_threadsafe(stop.set)
            thread.join(10)

    return running()
