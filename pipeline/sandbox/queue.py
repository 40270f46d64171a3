"""The account's generations: ids, states, the concurrency limit, and how long each one takes.

Every generation is an asyncio task: it waits for one of the account's `concurrency` slots
(`queued`), then holds it for its generation time while its clip renders (`generating`), and
ends `completed` (the clip is ready) or `error`. The slot is released at the end, so at most K
generate at once and the rest wait in submit order, like the real account limit. Polls only
read a generation's fields; nothing heavy runs when a client asks.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import SandboxConfig
from .ids import IdMaker
from .journal import GenerationJournal
from .models_api import RUNWAY
from .render import ClipSpec, RenderError
from .store import Renderer

QUEUED, GENERATING, COMPLETED, ERROR = "queued", "generating", "completed", "error"
FINAL = (COMPLETED, ERROR)


@dataclass
class Generation:
    """One generation as the sandbox knows it; `status` is the internal name."""

    id: str
    file: str  # the video's file name on the CDN
    endpoint: str
    body_hash: str
    request: dict[str, Any]
    spec: ClipSpec
    gen_time: float
    fail_message: str | None  # set when a fault makes this generation end in error
    status: str = QUEUED
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    error: str | None = None
    clip_key: str | None = None
    polls: int = 0
    credits: int = 0


@dataclass
class QueueCounters:
    queued: int = 0
    generating: int = 0
    completed: int = 0
    errors: int = 0
    peak_queued: int = 0
    peak_generating: int = 0
    peak_in_flight: int = 0  # queued + generating: what a client's in-flight window should bound


class GenerationQueue:
    """Creates generations and runs them under the account's concurrency limit."""

    def __init__(self, config: SandboxConfig, renderer: Renderer, journal: GenerationJournal | None = None):
        self.config = config
        self.journal = journal
        self.renderer = renderer
        self.by_id: dict[str, Generation] = {}
        self.by_file: dict[str, Generation] = {}
        self.counters = QueueCounters()
        self._slots = asyncio.Semaphore(config.concurrency)
        self._ids = IdMaker(config.id_form, config.seed)
        self._files = IdMaker("uuid", config.seed + 1)
        self._rng = random.Random(config.seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._prices = None  # the price list the sandbox serves (_price_book)

    def draw_seed(self) -> int:
        """A seed for a request that has none (the service picks one at random)."""
        return self._rng.randrange(0, 2**32)

    def draw_gen_time(self) -> float:
        mean = self.config.gen_time
        if mean == 0:
            return 0.0
        if self.config.gen_time_dist == "exponential":
            return self._rng.expovariate(1.0 / mean)
        if self.config.gen_time_dist == "uniform":
            spread = mean * self.config.gen_time_jitter
            return max(0.0, self._rng.uniform(mean - spread, mean + spread))
        return mean

    def create(
        self,
        endpoint: str,
        body_hash: str,
        request: dict[str, Any],
        spec_for: Callable[[int], ClipSpec],
        fail_message: str | None,
    ) -> Generation:
        """Make a generation and start its task; it is queued until a slot frees."""
        seed = request["seed"] if isinstance(request.get("seed"), int) else self.draw_seed()
        generation = Generation(
            id=self._unique_id(),
            file=self._files.next(),
            endpoint=endpoint,
            body_hash=body_hash,
            request=request,
            spec=spec_for(seed),
            gen_time=self.draw_gen_time(),
            fail_message=fail_message,
        )
        if self.journal is not None:
            self.journal.created(_record(generation, seed))
        self._start(generation)
        return generation

    def restore(self, spec_maker: Callable[[dict[str, Any]], Callable[[int], ClipSpec]]) -> int:
        """Bring back the journal's generations: final ones as they ended (a completed clip is
        rendered again when first asked for), others running for the time they had left.
        Ids and file names continue past the restored ones. Returns how many came back."""
        assert self.journal is not None
        records = self.journal.load()
        now = time.time()
        for record in records:
            self._ids.next(), self._files.next()
            generation = Generation(
                id=record["id"],
                file=record["file"],
                endpoint=record["endpoint"],
                body_hash=record["body_hash"],
                request=record["request"],
                spec=spec_maker(record["request"])(record["seed"]),
                gen_time=max(0.0, record["gen_time"] - (now - record["created"])),
                fail_message=record["fail_message"],
                created=record["created"],
            )
            if record.get("status") in FINAL:
                generation.status, generation.error = record["status"], record["error"]
                generation.credits = record["credits"]
                self.by_id[generation.id] = generation
                self.by_file[generation.file] = generation
            else:
                self._start(generation)
        return len(records)

    async def clip_of(self, generation: Generation) -> str | None:
        """The key of a completed generation's clip, rendering it first if it was restored."""
        if generation.status == COMPLETED and generation.clip_key is None:
            generation.clip_key = await self.renderer.render(generation.spec)
        return generation.clip_key

    def _start(self, generation: Generation) -> None:
        self.by_id[generation.id] = generation
        self.by_file[generation.file] = generation
        counters = self.counters
        counters.queued += 1
        counters.peak_queued = max(counters.peak_queued, counters.queued)
        counters.peak_in_flight = max(counters.peak_in_flight, counters.queued + counters.generating)
        task = asyncio.get_running_loop().create_task(self._run(generation))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _unique_id(self) -> str:
        while True:
            new_id = self._ids.next()
            if new_id not in self.by_id:
                return new_id

    async def _run(self, generation: Generation) -> None:
        counters = self.counters
        async with self._slots:
            counters.queued -= 1
            counters.generating += 1
            counters.peak_generating = max(counters.peak_generating, counters.generating)
            generation.status = GENERATING
            generation.started = time.time()
            try:
                await self._generate(generation)
            finally:
                counters.generating -= 1
                generation.finished = time.time()

    async def _generate(self, generation: Generation) -> None:
        render = None
        if generation.fail_message is None:
            render = asyncio.ensure_future(self.renderer.render(generation.spec))
        try:
            await asyncio.sleep(generation.gen_time)
            if render is None:
                self._fail(generation, generation.fail_message or "")
                return
            generation.clip_key = await render
        except RenderError as problem:
            self._fail(generation, f"Invalid input: {problem}")
            return
        except asyncio.CancelledError:
            if render is not None:
                render.cancel()
            raise
        generation.credits = self.charge(generation)
        generation.status = COMPLETED
        self.counters.completed += 1
        self._journal_end(generation)

    def charge(self, generation: Generation) -> int:
        """What a generation costs: its model's price for its duration and resolution in the
        sandbox's own /v1/models price list (what plan reads); the Runway models, and a model
        the list cannot price (variable, or not listed), the contract's credits per second."""
        seconds = int(generation.spec.duration)
        model = generation.request.get("model")
        flat = self.config.credits_per_second * seconds
        if not isinstance(model, str) or model in RUNWAY:
            return flat
        quoted = self._price_book().credits_for(model, seconds, generation.request.get("resolution"))
        return flat if quoted is None else int(quoted)

    def _price_book(self):
        if self._prices is None:  # built at the first completion: the catalogue is read only then
            from ..catalogue.pricing import price_book
            from .models_api import models_answer

            query = {"output_modalities": ["video"], "include": ["pricing"]}
            answer = models_answer(self.config.models, self.config.credits_per_second, query)
            self._prices = price_book(answer, "the sandbox's price list")
        return self._prices

    def _fail(self, generation: Generation, message: str) -> None:
        generation.status = ERROR
        generation.error = message
        self.counters.errors += 1
        self._journal_end(generation)

    def _journal_end(self, generation: Generation) -> None:
        if self.journal is not None:
            self.journal.finished(generation.id, generation.status, generation.error, generation.credits)

    @property
    def in_flight(self) -> int:
        return self.counters.queued + self.counters.generating

    async def close(self) -> None:
        """Cancel every generation still running and wait for them to end (a journal keeps them)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _record(generation: Generation, seed: int) -> dict[str, Any]:
    """What the journal needs to rebuild a generation after a restart."""
    return {
        "id": generation.id,
        "file": generation.file,
        "endpoint": generation.endpoint,
        "body_hash": generation.body_hash,
        "request": generation.request,
        "seed": seed,
        "gen_time": generation.gen_time,
        "fail_message": generation.fail_message,
        "created": generation.created,
    }
