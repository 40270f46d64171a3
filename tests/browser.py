"""A tiny headless Chromium driver for tests, over the Chrome DevTools Protocol (CDP).

Only what the report tests need: open a page, evaluate JavaScript, press keys, move and
click the mouse, keep downloads, collect console errors and uncaught exceptions, take a PNG screenshot. It speaks CDP over one websocket with aiohttp (a
dependency already), so the tests need no Selenium, Playwright or driver binaries; the browser
is Debian's `chromium` package.

    async with Chromium.launch() as browser:
        page = await browser.new_page()
        await page.goto(Path("report.html").resolve().as_uri())
        count = await page.evaluate("document.querySelectorAll('video').length")
        await page.screenshot(tmp_path / "report.png")
        assert page.errors == []

The browser gets its own user-data folder and process group; both are removed on exit, however
the block ends.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = Path("/usr/bin/chromium")
START_TIMEOUT_S = 30.0
COMMAND_TIMEOUT_S = 30.0

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
    "--remote-debugging-port=0",
)


def chromium_missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed (Debian: apt-get install -y chromium)"
    return None


class BrowserError(RuntimeError):
    """The browser did not start, or a CDP command failed."""


class Page:
    """One tab, attached through a flat CDP session; `errors` collects what the console shows."""

    def __init__(self, browser: Chromium, session_id: str):
        self._browser = browser
        self.session_id = session_id
        self.errors: list[str] = []
        self._loaded = asyncio.Event()

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._browser.send(method, params, session_id=self.session_id)

    async def goto(self, url: str, timeout_s: float = COMMAND_TIMEOUT_S) -> None:
        """Navigate (from the blank tab) and wait for the new page's load event."""
        self._loaded.clear()
        answer = await self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise BrowserError(f"cannot open {url}: {answer['errorText']}")
        await asyncio.wait_for(self._loaded_off_blank(), timeout_s)

    async def _loaded_off_blank(self) -> None:
        # A late load event of the tab's about:blank must not count as the new page's.
        while True:
            await self._loaded.wait()
            if await self.evaluate("document.readyState === 'complete' && location.href !== 'about:blank'"):
                return
            self._loaded.clear()

    async def evaluate(self, expression: str, timeout_s: float = COMMAND_TIMEOUT_S) -> Any:
        """The JSON value of `expression`; a Promise is awaited. A thrown exception raises."""
        answer = await self._browser.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session_id=self.session_id,
            timeout_s=timeout_s,
        )
        if "exceptionDetails" in answer:
            raise BrowserError(f"evaluate failed: {_describe_exception(answer['exceptionDetails'])}")
        return answer["result"].get("value")

    async def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """Write a PNG of the viewport (or the whole page) to `path`."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = await self.send("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            params |= {
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            }
        answer = await self.send("Page.captureScreenshot", params)
        path.write_bytes(base64.b64decode(answer["data"]))
        return path

    async def press(self, key: str) -> None:
        """Type one key as a keyboard does: keydown (with its text, for a character), then keyup.
        `key` is a character or a key name (Escape)."""
        text = {"text": key} if len(key) == 1 else {}
        await self.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": key, **text})
        await self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key})

    async def hover(self, selector: str) -> tuple[float, float]:
        """Move the mouse over the middle of the first element `selector` finds; where it is."""
        x, y = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        await self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        return x, y

    async def click(self, selector: str) -> None:
        """Click the middle of the first element `selector` finds, as a mouse does."""
        x, y = await self.hover(selector)
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}
            )

    def on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.loadEventFired":
            self._loaded.set()
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"])
            self.errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            self.errors.append(f"exception: {_describe_exception(params['exceptionDetails'])}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.errors.append(
                f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip()
            )


class Chromium:
    """A headless Chromium process and one CDP websocket to it."""

    def __init__(self, process: subprocess.Popen, profile: Path, http: aiohttp.ClientSession, socket):
        self._process = process
        self._profile = profile
        self._http = http
        self._socket = socket
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._pages: dict[str, Page] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(cls, width: int = 1280, height: int = 900) -> AsyncIterator[Chromium]:
        """Start the browser; stop it and delete its profile when the block ends."""
        reason = chromium_missing_reason()
        if reason:
            raise BrowserError(reason)
        profile = Path(tempfile.mkdtemp(prefix="vidpipe-chromium-"))
        process = None
        try:
            with open(profile / "stderr.log", "wb") as log:
                process = subprocess.Popen(
                    [str(CHROMIUM), *FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,  # its own process group: renderers go with it
                )
            url = await _devtools_url(profile, process)
            async with aiohttp.ClientSession() as http:
                socket = await http.ws_connect(
                    url, max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=5)
                )
                browser = cls(process, profile, http, socket)
                try:
                    yield browser
                finally:
                    await browser._close()
        finally:
            if process is not None:
                _stop(process)
            shutil.rmtree(profile, ignore_errors=True)

    async def new_page(self) -> Page:
        """A new tab with the Page, Runtime and Log domains on."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"])
        self._pages[page.session_id] = page
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        return page

    async def allow_downloads(self, folder: Path) -> None:
        """Save what pages download into `folder` (headless Chromium refuses downloads otherwise)."""
        await self.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})

    async def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session_id: str | None = None,
        timeout_s: float = COMMAND_TIMEOUT_S,
    ) -> dict[str, Any]:
        """Send one CDP command and return its result; a CDP error raises BrowserError."""
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        answer = asyncio.get_running_loop().create_future()
        self._waiting[message["id"]] = answer
        try:
            await self._socket.send_str(json.dumps(message))
            reply = await asyncio.wait_for(answer, timeout_s)
        finally:
            self._waiting.pop(message["id"], None)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    async def _read(self) -> None:
        async for frame in self._socket:
            if frame.type != aiohttp.WSMsgType.TEXT:
                break
            message = json.loads(frame.data)
            if "id" in message:
                waiting = self._waiting.get(message["id"])
                if waiting is not None and not waiting.done():
                    waiting.set_result(message)
            elif message.get("sessionId") in self._pages:
                self._pages[message["sessionId"]].on_event(message["method"], message.get("params", {}))
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(BrowserError("the browser closed the connection"))

    async def _close(self) -> None:
        with contextlib.suppress(BrowserError, asyncio.TimeoutError, aiohttp.ClientError):
            await self.send("Browser.close", timeout_s=5)
        await self._socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def _devtools_url(profile: Path, process: subprocess.Popen) -> str:
    """The browser websocket URL, from the DevToolsActivePort file Chromium writes at start."""
    marker = profile / "DevToolsActivePort"
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    while asyncio.get_running_loop().time() < deadline:
        if process.poll() is not None:
            log = (profile / "stderr.log").read_text(errors="replace")[-2000:]
            raise BrowserError(f"chromium exited with code {process.returncode}:\n{log}")
        lines = marker.read_text().split() if marker.is_file() else []
        if len(lines) == 2:
            port, path = lines
            return f"ws://127.0.0.1:{port}{path}"
        await asyncio.sleep(0.05)
    raise BrowserError(f"chromium did not open its DevTools port within {START_TIMEOUT_S:.0f} s")


def _stop(process: subprocess.Popen) -> None:
    """End the browser's whole process group (renderers, GPU and zygote helpers too), now.

    SIGKILL, not SIGTERM: a polite shutdown takes Chromium about two seconds, and its profile
    is a throwaway folder deleted right after.
    """
    for _ in range(250):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            break
        if process.poll() is not None:
            time.sleep(0.02)  # the helpers, reparented, are still going
    process.wait(5)


def _describe_exception(details: dict[str, Any]) -> str:
    exception = details.get("exception") or {}
    where = f"{details.get('url', '')}:{details.get('lineNumber', '')}"
    return f"{exception.get('description') or details.get('text')} at {where}"
