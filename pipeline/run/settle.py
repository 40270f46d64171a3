"""Settling maybe-paid submits from the service's own records, instead of guessing.

A submit whose answer was lost after it was sent (a read timeout, a dropped connection, a
gateway 502/504 while settling is possible, a 2xx with no readable id) may have made a paid
generation. `probe` asks the logs once before the first submit, so a key that cannot read them
gets its 502/504s retried (http.py's GATEWAY_MAYBE) instead of left uncertain. Its attempt was
recorded with a client request id before it left (request_ids.py), so the service's usage logs
(net/logs.py) say what happened:

    a `succeeded` row        -> found: its inference_id is the generation id; the job is polled,
                                nothing is sent again (an id that fails ApiClient's checks, or
                                none: the job stays `uncertain`)
    a `failed` row           -> refused (billed nothing): the job is submitted again
    no row, grace not over   -> waiting: the logs come from an analytics pipeline, and lag
    no row after the grace   -> never arrived: the job is submitted again
    logs unavailable         -> the job stays `uncertain` (401/403/404: --retry-uncertain)

`decide` is that table, pure. `Settler` looks up every waiting attempt together, one sweep of
merged windows (each attempt's: from well before it left, for clock skew, to now) every
`interval_s`, by client request id alone (never by model: the service may log a model under an
alias), so a thousand uncertain jobs cost a few requests, not a
thousand; a job waits for its verdict without holding a generation slot (the scheduler gives
it back, see scheduler.py). `sweep` is one look, used by `vidpipe reconcile` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum

from ..errors import RequestError, one_line
from ..net.logs import MAX_WINDOW, LogRow, LogsReader, LogsUnavailable, Window
from .plan import format_seconds

# The docs give no figure for the logs' delay; the cost of each mistake decides. Settling too
# early pays for a second generation (525,000 credits and more); settling late only keeps one
# job waiting, without its slot. So the default is generous: 15 minutes.
DEFAULT_GRACE_S = 900.0
# A row's `created` is the service's clock, which may differ from ours: the window opens this
# long before the attempt left (by our clock) and closes at the look's "now" (the rows are
# matched by client request id, so a wide window costs a page or two, never a wrong row).
CLOCK_SKEW = timedelta(minutes=15)


# Sweeps in a row whose look failed (each after its own retries) before settling gives up for
# this run: its jobs stay uncertain, and the next run (or `vidpipe reconcile`) looks again.
FAILED_SWEEPS = 5


class Verdict(str, Enum):
    FOUND = "found"  # the attempt made a generation: poll it
    NOT_ARRIVED = "not_arrived"  # it made none (no row past the grace, or a failed one)
    WAITING = "waiting"  # no row yet, within the grace
    UNAVAILABLE = "unavailable"  # the key cannot read its logs


@dataclass(frozen=True)
class Attempt:
    """One maybe-sent submit attempt, as the ledger recorded it before the POST left."""

    job_id: str
    client_request_id: str
    sent_at: datetime  # UTC
    model: str

    def window(self, now: datetime) -> Window:
        """From CLOCK_SKEW before it left to `now` (at least to when it left), at most 92 days."""
        start = self.sent_at - CLOCK_SKEW
        return Window(start, min(max(now, self.sent_at), start + MAX_WINDOW))


@dataclass(frozen=True)
class Settled:
    verdict: Verdict
    generation_id: str | None = None  # FOUND: the row's inference_id
    reason: str = ""


def decide(attempt: Attempt, row: LogRow | None, now: datetime, grace_s: float) -> Settled:
    """What the logs say of one attempt (the table in the module doc)."""
    if row is not None and row.status == "succeeded" and row.inference_id:
        return Settled(Verdict.FOUND, row.inference_id, "the service's logs show it was taken")
    if row is not None and row.status == "succeeded":  # taken, and paid: never sent again
        why = row.id_problem or "its row has no inference_id"
        return Settled(Verdict.UNAVAILABLE, reason=f"the service's logs show it was taken, but {why}")
    if row is not None:
        return Settled(Verdict.NOT_ARRIVED, reason=f"the service's logs show it {row.status or 'failed'}")
    if (now - attempt.sent_at).total_seconds() >= grace_s:
        return Settled(
            Verdict.NOT_ARRIVED, reason=f"not in the service's logs {grace_s:g} s after it was sent"
        )
    return Settled(Verdict.WAITING)


def parse_when(stamp: str) -> datetime:
    """A ledger timestamp (ISO-8601, UTC) as an aware datetime."""
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def attempt_of(row: dict) -> Attempt | None:
    """The last attempt of a ledger row, when it can be settled (its id and time recorded)."""
    if not row.get("client_request_id") or not row.get("sent_at"):
        return None
    model = json.loads(row["request"]).get("model") if row.get("request") else None
    return Attempt(row["job_id"], row["client_request_id"], parse_when(row["sent_at"]), str(model or ""))


def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


class Settler:
    """Settles attempts in the background, all waiting ones in each sweep."""

    def __init__(
        self,
        reader: LogsReader,
        grace_s: float = DEFAULT_GRACE_S,
        *,
        clock: Callable[[], datetime] = wall_clock,
        say: Callable[[str], None] | None = None,
    ):
        self.reader = reader
        self.grace_s = grace_s
        self.interval_s = min(30.0, max(0.5, grace_s / 5))
        self._clock = clock
        self._say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self._waiting: dict[str, tuple[Attempt, asyncio.Future[Settled]]] = {}
        self._loop_task: asyncio.Task | None = None
        self.unavailable: str | None = None  # why settling cannot be done, once known
        self.stopped = False
        self.counts = {verdict: 0 for verdict in Verdict}
        self._problem_said = False
        self._waiting_said = False
        self._failed_sweeps = 0  # in a row

    def available(self) -> bool:
        """Whether a maybe-sent submit can be settled (the logs were not refused): by this run,
        or by the next one when this one is stopping."""
        return self.unavailable is None

    async def probe(self) -> None:
        """Ask the logs once, before anything is sent, whether this key can read them: if not,
        say so in one line, and a gateway's 502/504 is retried rather than left uncertain."""
        try:
            await self.reader.probe(self._clock())
        except LogsUnavailable as error:
            self._unavailable(error)

    def _unavailable(self, error: LogsUnavailable) -> None:
        self.unavailable = (
            f"settling is unavailable: GET /v2/logs answered {error.status}; "
            "maybe-sent jobs stay uncertain (check the account, then --retry-uncertain resends them)"
        )
        self._say(self.unavailable)
        self._resolve_all(Settled(Verdict.UNAVAILABLE, reason=self.unavailable))

    async def settle(self, attempt: Attempt) -> Settled:
        """The verdict on `attempt`, once there is one (WAITING only when settling stopped)."""
        if self.unavailable is not None:
            return Settled(Verdict.UNAVAILABLE, reason=self.unavailable)
        if self.stopped:
            return Settled(Verdict.WAITING)
        future: asyncio.Future[Settled] = asyncio.get_running_loop().create_future()
        self._waiting[attempt.client_request_id] = (attempt, future)
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.create_task(self._sweeps())
        try:
            return await future
        finally:
            self._waiting.pop(attempt.client_request_id, None)

    def stop(self) -> None:
        """The run is stopping: every waiting attempt gets WAITING (it stays uncertain, and the
        next run settles it)."""
        self.stopped = True
        self._resolve_all(Settled(Verdict.WAITING))

    async def close(self) -> None:
        self.stop()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task

    async def sweep(self, attempts: list[Attempt]) -> dict[str, Settled]:
        """One look at the logs for `attempts`: client_request_id -> verdict. Raises
        LogsUnavailable; a look that failed otherwise leaves them all WAITING."""
        if not attempts:
            return {}
        wanted = {attempt.client_request_id for attempt in attempts}
        looked_at = self._clock()
        try:
            # No `model` filter: only rows whose client_request_id is ours are kept anyway.
            rows = await self.reader.find([attempt.window(looked_at) for attempt in attempts], (), wanted)
        except RequestError as error:
            self._failed_sweeps += 1
            if self._failed_sweeps >= FAILED_SWEEPS:  # a run does not wait on them forever
                raise LogsUnavailable(error.status, str(error)) from None
            if not self._problem_said:
                self._say(f"settling: GET /v2/logs failed ({one_line(str(error))}); trying again later")
                self._problem_said = True
            return {attempt.client_request_id: Settled(Verdict.WAITING) for attempt in attempts}
        self._failed_sweeps = 0
        return {
            attempt.client_request_id: decide(
                attempt, rows.get(attempt.client_request_id), looked_at, self.grace_s
            )
            for attempt in attempts
        }

    async def _sweeps(self) -> None:
        while self._waiting and not self.stopped:
            attempts = [attempt for attempt, future in self._waiting.values() if not future.done()]
            try:
                verdicts = await self.sweep(attempts)
            except LogsUnavailable as error:
                self._unavailable(error)
                return
            for client_id, settled in verdicts.items():
                entry = self._waiting.get(client_id)
                if settled.verdict is not Verdict.WAITING and entry and not entry[1].done():
                    self.counts[settled.verdict] += 1
                    entry[1].set_result(settled)
                elif settled.verdict is Verdict.WAITING:
                    self._say_why_it_waits()
            if self._waiting:
                # Attempts that arrive meanwhile wait for the next sweep: one look serves them all.
                await asyncio.sleep(self.interval_s)

    def _say_why_it_waits(self) -> None:
        """Once a run: a verdict can take the whole grace, so a job that seems stuck is explained."""
        if self._waiting_said:
            return
        self._waiting_said = True
        self._say(
            "settling: a submit that may have been sent waits for the usage logs to show it; found, it is "
            f"polled, else sent again {format_seconds(self.grace_s)} after it left (run.settle_grace)"
        )

    def _resolve_all(self, settled: Settled) -> None:
        for _, future in list(self._waiting.values()):
            if not future.done():
                future.set_result(settled)
