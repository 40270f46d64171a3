"""A small hostile API for tests (real HTTP on loopback): it answers whatever a test scripts."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from threading import Event, Thread

from aiohttp import web

LEGACY = "/v2/generate/video/runway/generation"


class HostileServer:
    """Answers every submit with `answer`; records the headers each request arrived with."""

    def __init__(self, answer):
        self.answer = answer
        self.seen: list[dict[str, str]] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(dict(request.headers))
        return self.answer(request)


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
