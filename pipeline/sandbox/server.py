"""SandboxServer: the stand-in for the AI/ML API's Runway video endpoints, on one aiohttp app.

Routes (declared together in `_routes`):

    POST /v2/generate/video/runway/generation         submit (legacy names: ratio, last_image_url)
    GET  /v2/generate/video/runway/generation?generation_id=ID    poll
    POST /v2/video/generations                         submit (aspect_ratio, tail_image_url)
    GET  /v2/video/generations?generation_id=ID        poll
    GET  /cdn/wolf/{file}.mp4?_jwt=TOKEN               download: no Authorization, token expires
    GET  /v1/models           GET  /v1/models/deprecations        (no key: models_api.py)
    GET  /v2/logs?start=..&end=..&model=..             usage logs, one row per request (usage.py)
    GET  /_sandbox/stats      POST /_sandbox/reset      POST /_sandbox/faults (JSON FaultConfig)

Each API request goes: client id echo -> auth -> injected fault, if any -> the work. Polls do
no work beyond reading a Generation and signing a URL; rendering happens in the queue's tasks
and a thread pool (see queue.py and store.py).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from . import answers
from .bodies import LEGACY, UNIVERSAL, body_hash, read_body
from .config import SandboxConfig
from .contract import DEFAULT_DURATION, DEFAULT_RATIO, asks_for_audio, published_models
from .faults import Fault, FaultConfig, FaultPlan
from .flaws import variant_of
from .journal import GenerationJournal
from .models_api import ModelFeeds
from .queue import COMPLETED, Generation, GenerationQueue
from .render import FRAME_SIZES, ClipSpec
from .stats import Stats, poll_summary
from .store import Renderer, VideoStore
from .tokens import Signer, TokenError
from .usage import UsageLog

LEGACY_PATH = "/v2/generate/video/runway/generation"
UNIVERSAL_PATH = "/v2/video/generations"
OWN_PATHS = sorted({e["path"] for e in published_models().values()} - {LEGACY_PATH, UNIVERSAL_PATH})
CDN_PREFIX = "/cdn/wolf"
LOGS_PATH = "/v2/logs"
# A gateway in front answers these without the service seeing the request: no row in the logs.
GATEWAY_KINDS = frozenset({"502", "502_html", "drop_before"})
# Submit faults that take the request (a generation is made) before they strike.
TAKEN_KINDS = frozenset({"slow", "drop_after", "accept_504", "accept_late", "accept_no_id"})
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Two data URIs of 5 MB each fit; anything larger is not a plausible request.
MAX_BODY_BYTES = 16 * 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SandboxServer:
    """The sandbox, in-process. start() it on a port, stop() it when done."""

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self.app = web.Application(client_max_size=MAX_BODY_BYTES)
        self.model_feeds = ModelFeeds(self.config.models, self.config.credits_per_second, self._not_found)
        self._routes()
        self.signer = Signer()
        self.store = VideoStore(self.config.cache_bytes, self.config.spill_dir)
        self._renderer: Renderer | None = None
        self._queue: GenerationQueue | None = None
        self.restored = 0  # generations brought back from config.state_dir's journal at start
        self._faults = FaultPlan(self.config.faults)
        self._stats = Stats()
        self.usage = UsageLog(self.config.logs_delay)
        self._runner: web.AppRunner | None = None
        self.base_url: str | None = None

    def _routes(self) -> None:
        legacy, universal = self._api(LEGACY), self._api(UNIVERSAL)
        self.app.router.add_routes(
            [
                web.post(LEGACY_PATH, legacy[0]),
                web.get(LEGACY_PATH, legacy[1]),
                web.post(UNIVERSAL_PATH, universal[0]),
                web.get(UNIVERSAL_PATH, universal[1]),
                # The two published models served on a path of their own answer as universal.
                *(web.post(path, universal[0]) for path in OWN_PATHS),
                *(web.get(path, universal[1]) for path in OWN_PATHS),
                web.get(CDN_PREFIX + "/{file}.mp4", self._download),
                web.get(LOGS_PATH, self._logs),
                web.get("/_sandbox/stats", self._stats_route),
                web.post("/_sandbox/reset", self._reset_route),
                web.post("/_sandbox/faults", self._faults_route),
                *self.model_feeds.routes(),
                web.route("*", "/{tail:.*}", self._not_found),
            ]
        )

    def _api(self, endpoint: str) -> tuple[Handler, Handler]:
        async def submit(request: web.Request) -> web.StreamResponse:
            return await self._submit(request, endpoint)

        async def poll(request: web.Request) -> web.StreamResponse:
            return await self._poll(request)

        return submit, poll

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0: a free port). Returns the base URL, "http://host:PORT"."""
        self._renderer = Renderer(self.store, self.config.render_workers)
        journal = GenerationJournal(self.config.state_dir) if self.config.state_dir else None
        self._queue = GenerationQueue(self.config, self._renderer, journal)
        if journal is not None:
            self.restored = self._queue.restore(self._spec_maker)
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.base_url = f"http://{host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving, cancel generations, stop the render pool, drop spilled files."""
        if self._queue is not None:
            await self._queue.close()
            if self._queue.journal is not None:
                self._queue.journal.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._renderer is not None:
            await self._renderer.close()
        self.store.clear()

    async def reset(self) -> None:
        """Forget every generation and count, keep rendered clips (a pure cache)."""
        if self._queue is not None:
            await self._queue.close()
        if self._renderer is not None:
            self._queue = GenerationQueue(self.config, self._renderer)
            self._renderer.stats = type(self._renderer.stats)()
        self._stats = Stats()
        self.usage = UsageLog(self.config.logs_delay)
        self._faults = FaultPlan(self._faults.config)

    def set_faults(self, faults: FaultConfig) -> None:
        """Replace the fault settings; scripts and random draws start afresh."""
        self._faults = FaultPlan(faults)

    def stats(self) -> dict[str, Any]:
        """Everything counted so far (the same dict as GET /_sandbox/stats)."""
        out = self._stats.as_dict()
        queue = self._queue
        generations = list(queue.by_id.values()) if queue else []
        out["polls"] = poll_summary(self._stats, [g.polls for g in generations])
        counters = queue.counters if queue else None
        out["generations"] = {
            "created": len(generations),
            "queued": counters.queued if counters else 0,
            "generating": counters.generating if counters else 0,
            "completed": counters.completed if counters else 0,
            "error": counters.errors if counters else 0,
            "in_flight": queue.in_flight if queue else 0,
            "peak_queued": counters.peak_queued if counters else 0,
            "peak_generating": counters.peak_generating if counters else 0,
            "peak_in_flight": counters.peak_in_flight if counters else 0,
            "credits_used": sum(g.credits for g in generations),
            # Billed twice: the same request body completed (and so was charged) more than once.
            "completed_twice": _repeated(g.body_hash for g in generations if g.status == COMPLETED),
        }
        out["model_feeds"] = self.model_feeds.stats()
        out["render"] = {
            **(self._renderer.stats.as_dict() if self._renderer else {}),
            "mode": self.config.render,
            "memory_bytes": self.store.memory_bytes,
            "spilled": self.store.spilled,
        }
        return out

    # --- the API ---------------------------------------------------------------------------

    async def _submit(self, request: web.Request, endpoint: str) -> web.StreamResponse:
        headers = self._echo(request)
        denied = self._auth(request, headers)
        if denied is not None:
            return self._reject_submit(denied)
        client_id = headers.get("x-client-request-id")
        fault = self._draw("submit")
        if (
            fault is not None
            and fault.kind not in ("slow", "drop_after")
            and not fault.kind.startswith("accept_")
        ):
            if fault.kind not in GATEWAY_KINDS and fault.kind not in ("401", "403"):
                self.usage.record("failed", None, client_id)  # the service refused it: billed nothing
            if fault.kind == "drop_before":
                return await self._drop(request)
            return self._reject_submit(self._fault_answer(request, fault, headers))
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.slow_seconds)
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        if isinstance(body, dict) and self.config.models.is_withdrawn(body.get("model")):
            message = f"Model {body['model']} is no longer available"
            error = answers.nest_error(self.config, 404, request.path, message)
            return self._reject_submit(web.json_response(error, status=404, headers=headers))
        submitted = read_body(body, endpoint, self.config.prompt_limit)
        self._stats.unknown_fields.update(submitted.unknown)
        problems = [str(p) for p in submitted.problems]
        if body is None:
            problems = ["the body is not valid JSON"]
        if self.config.strict:
            problems += [f"{name}: unknown field" for name in submitted.unknown]
        if problems:
            message = f"{answers.MESSAGES[400]}: {'; '.join(problems)}"
            error = answers.nest_error(self.config, 400, request.path, message)
            error["errors"] = problems
            self.usage.record(
                "failed", (body or {}).get("model") if isinstance(body, dict) else None, client_id
            )
            return self._reject_submit(web.json_response(error, status=400, headers=headers))

        audio = asks_for_audio(body)
        generation = self._create(endpoint, submitted.request, audio)
        self._stats.body_fields(submitted.request.get("model"), body)
        self.usage.record("succeeded", generation.request.get("model"), client_id, generation.id, generation)
        kind = fault.kind if fault is not None else None
        if kind == "drop_after":
            return await self._drop(request)
        if kind == "accept_504":
            return self._reject_submit(web.Response(status=504, text="Gateway Timeout\n", headers=headers))
        if kind == "accept_late":
            await asyncio.sleep(fault.late_seconds)
        headers["x-inference-id"] = generation.id
        headers["x-aimlapi-credits-used"] = "0"  # charged when the generation completes
        headers["x-aimlapi-usd-spent"] = "0"
        body_out = answers.submit_body(self.config, generation)
        if kind == "accept_no_id":
            body_out = {key: value for key, value in body_out.items() if key not in ("id", "generation_id")}
        return web.json_response(body_out, status=self.config.submit_status, headers=headers)

    def _create(self, endpoint: str, request: dict[str, Any], audio: bool = False) -> Generation:
        assert self._queue is not None, "start() the server first"
        failure = self._draw("generation")
        flaw = self._draw("video")
        digest = body_hash(request)
        spec_for = self._spec_maker(request)
        if flaw is not None or audio:
            plain_spec_for = spec_for

            def spec_for(seed: int) -> ClipSpec:
                return variant_of(plain_spec_for(seed), flaw and flaw.kind, audio)

        generation = self._queue.create(endpoint, digest, request, spec_for, failure and failure.message)
        self._stats.accept(digest, endpoint)
        return generation

    def _spec_maker(self, request: dict[str, Any]) -> Callable[[int], ClipSpec]:
        # A model without a ratio or duration field (or with a word such as "adaptive") gets
        # the Runway defaults' picture: the clip's shape is the sandbox's choice then.
        ratio = request.get("ratio", DEFAULT_RATIO)
        ratio = ratio if ratio in FRAME_SIZES else DEFAULT_RATIO
        duration = request.get("duration", DEFAULT_DURATION)
        duration = int(duration) if str(duration).isdigit() and int(duration) > 0 else DEFAULT_DURATION
        fps = self.config.fps
        if self.config.render == "shared":
            return lambda seed: ClipSpec(ratio=ratio, duration=duration, fps=fps)
        return lambda seed: ClipSpec(
            ratio=ratio,
            duration=duration,
            seed=seed,
            prompt=request.get("prompt", ""),
            model=request["model"],
            watermark=bool(request.get("watermark", False)),
            image_url=request.get("image_url"),
            last_image_url=request.get("last_image_url"),
            fps=fps,
        )

    async def _poll(self, request: web.Request) -> web.StreamResponse:
        self._stats.polls += 1
        headers = self._echo(request)
        denied = self._auth(request, headers)
        if denied is not None:
            return self._reject_poll(denied)
        fault = self._draw("poll")
        if fault is not None:
            if fault.kind == "drop":
                return await self._drop(request)
            if fault.kind == "slow":
                await asyncio.sleep(fault.slow_seconds)
            else:
                return self._reject_poll(self._fault_answer(request, fault, headers))
        generation_id = request.query.get("generation_id")
        if not generation_id:
            message = "generation_id is required as a query parameter"
            error = answers.nest_error(self.config, 400, request.path, message)
            return self._reject_poll(web.json_response(error, status=400, headers=headers))
        assert self._queue is not None
        generation = self._queue.by_id.get(generation_id)
        if generation is None:
            self._stats.polls_unknown_id += 1
            if self.config.unknown_id == "unknown":
                return web.json_response(answers.unknown_body(self.config, generation_id), headers=headers)
            error = answers.nest_error(self.config, 404, request.path_qs)
            return self._reject_poll(web.json_response(error, status=404, headers=headers))
        generation.polls += 1
        self.usage.record(
            "succeeded", generation.request.get("model"), headers.get("x-client-request-id"), generation.id
        )
        headers["x-inference-id"] = generation.id
        url = size = None
        if generation.status == COMPLETED:
            url = self._video_url(request, generation)
            clip_key = await self._queue.clip_of(generation)
            size = len(self.store.get(clip_key) or b"") if clip_key else None
            headers["x-aimlapi-credits-used"] = str(generation.credits)
            headers["x-aimlapi-usd-spent"] = f"{generation.credits * answers.USD_PER_CREDIT:g}"
        body = answers.poll_body(self.config, generation, url, size)
        return web.json_response(body, headers=headers)

    def _video_url(self, request: web.Request, generation: Generation) -> str:
        lifetime = self.config.url_lifetime
        expired = self._draw("download", kinds=("expired",))
        if expired is not None:
            lifetime = -1.0
        token = self.signer.issue(generation.file, lifetime)
        host = self.config.cdn_host or request.host
        return f"{request.scheme}://{host}{CDN_PREFIX}/{generation.file}.mp4?_jwt={token}"

    # --- the CDN ---------------------------------------------------------------------------

    async def _download(self, request: web.Request) -> web.StreamResponse:
        stats = self._stats
        if "Authorization" in request.headers:
            stats.downloads_with_authorization += 1
        file = request.match_info["file"]
        try:
            self.signer.check(request.query.get("_jwt", ""), file)
        except TokenError as problem:
            if problem.expired:
                stats.downloads_expired += 1
            else:
                stats.downloads_bad_token += 1
            return web.Response(status=403, text=f"Forbidden: {problem}\n")
        generation = self._queue.by_file.get(file) if self._queue else None
        clip_key = await self._queue.clip_of(generation) if self._queue and generation else None
        data = self.store.get(clip_key) if clip_key else None
        if data is None:
            return web.Response(status=404, text="Not Found\n")
        fault = self._draw("download", kinds=("truncated", "short", "slow"))
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.slow_seconds)
        headers = {"Content-Type": "video/mp4", "Cache-Control": "private, max-age=86400"}
        if fault is not None and fault.kind == "short":
            stats.downloads_short += 1
            return web.Response(body=data[: len(data) // 2], headers=headers)
        if fault is not None and fault.kind == "truncated":
            stats.downloads_truncated += 1
            response = web.StreamResponse(headers=headers)
            response.content_length = len(data)
            await response.prepare(request)
            await response.write(data[: len(data) // 2])
            return await self._drop(request, response)
        stats.downloads_ok += 1
        stats.download_bytes += len(data)
        return web.Response(body=data, headers=headers)

    # --- usage logs ------------------------------------------------------------------------

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth(request, {})
        if denied is not None:
            return denied
        if self.config.logs_status != 200:  # a key or service without logs
            message = {401: None, 403: "This key may not read these logs", 404: "Cannot GET /v2/logs"}
            error = answers.nest_error(
                self.config, self.config.logs_status, request.path, message[self.config.logs_status]
            )
            return web.json_response(error, status=self.config.logs_status)
        status, body = self.usage.answer(request.query)
        return web.json_response(body, status=status)

    # --- control routes --------------------------------------------------------------------

    async def _stats_route(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats())

    async def _reset_route(self, request: web.Request) -> web.StreamResponse:
        await self.reset()
        return web.json_response({"reset": True})

    async def _faults_route(self, request: web.Request) -> web.StreamResponse:
        try:
            faults = FaultConfig.from_mapping(await request.json())
        except ValueError as problem:
            return web.json_response({"error": str(problem)}, status=400)
        self.set_faults(faults)
        return web.json_response({"faults": faults.to_mapping()})

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        message = f"Cannot {request.method} {request.path}"
        error = answers.nest_error(self.config, 404, request.path, message)
        return web.json_response(error, status=404)

    # --- helpers ---------------------------------------------------------------------------

    def _echo(self, request: web.Request) -> dict[str, str]:
        client_id = request.headers.get("X-Client-Request-Id")
        if client_id is not None and CLIENT_ID_PATTERN.match(client_id):
            self._stats.client_request_ids += 1
            return {"x-client-request-id": client_id}
        return {}

    def _auth(self, request: web.Request, headers: dict[str, str]) -> web.Response | None:
        """None when the key is acceptable, else the 401 answer."""
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        ok = scheme.lower() == "bearer" and bool(key)
        if ok and self.config.require_key is not None:
            ok = _same(key, self.config.require_key)
        if ok:
            return None
        error = answers.nest_error(self.config, 401, request.path)
        return web.json_response(error, status=401, headers=headers)

    def _draw(self, target: str, kinds: tuple[str, ...] | None = None) -> Fault | None:
        fault = self._faults.draw(target, kinds)
        if fault is not None:
            self._stats.faults[fault.name] += 1
        return fault

    def _fault_answer(self, request: web.Request, fault: Fault, headers: dict[str, str]) -> web.Response:
        kind = fault.kind
        if kind == "502":
            return web.Response(status=502, text="Bad Gateway\n", headers=headers)
        if kind == "502_html":
            return web.Response(
                status=502, text=answers.PROXY_502_HTML, content_type="text/html", headers=headers
            )
        status = int(kind[:3])
        if kind == "429_retry_after":
            headers = {**headers, "Retry-After": str(math.ceil(fault.retry_after))}
        error = answers.nest_error(self.config, status, request.path)
        return web.json_response(error, status=status, headers=headers)

    def _reject_submit(self, response: web.Response) -> web.Response:
        self._stats.submits_rejected[str(response.status)] += 1
        return response

    def _reject_poll(self, response: web.Response) -> web.Response:
        self._stats.polls_rejected[str(response.status)] += 1
        return response

    async def _drop(
        self, request: web.Request, response: web.StreamResponse | None = None
    ) -> web.StreamResponse:
        """Close the connection without (the rest of) an answer."""
        # Read the body first, so the client cannot tell "never taken" from "taken, then lost".
        await request.read()
        if request.transport is not None:
            request.transport.close()
        return response if response is not None else web.Response(status=204)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _repeated(hashes: Iterable[str]) -> dict[str, int]:
    counts = Counter(hashes)
    return {body: n for body, n in counts.items() if n > 1}
