"""The service's usage logs (`GET /v2/logs`): one row per request, found by our client request ids.

What the service documents, and what this module keeps to:
- a window is `start` + `end` (ISO-8601 UTC, at most 92 days), never together with `period`
  (a 400);
- `model` is repeated once per model (up to 50), never a comma list (which matches nothing);
- `limit` 1-100 and `offset`, newest first, paged while `pagination.has_more`;
- over 200 requests in 60 s the answer is 429: `LogsRate` keeps us under that, on its own clock;
- rows come from an analytics pipeline and may appear late: a missing row is not an answer
  until the caller's grace period has passed (run/settle.py decides that);
- 401, 403 or 404: this key cannot read its logs (`LogsUnavailable`); so too an answer that is
  not the documented page, or a query the service refuses (a 400): a server that is not the
  service, or a service whose logs differ, settles nothing rather than something wrong.

Key safety: the logs hold every request made with the key. Only rows whose `client_request_id`
is one the caller asked for leave `LogsReader`; the others are dropped as each page is read,
never stored or shown.

Pure parts (windows, parameters, pages, the limiter) are separate from the one async reader.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from ..errors import AuthError, CreditsError, RejectedError, RequestError, TransientError

LOGS_PATH = "/v2/logs"
PAGE_LIMIT = 100  # the most the service gives in one page
MAX_MODELS = 50  # `model` values one request may carry
MAX_WINDOW = timedelta(days=92)
RATE_LIMIT = 200  # requests per RATE_PERIOD_S, the service's documented limit
RATE_PERIOD_S = 60.0
RATE_MARGIN = 20  # left for anything else reading this key's logs (a dashboard, a second run)
THROTTLED_WAIT_S = 60.0  # a 429 says "the minute is spent": wait it out
TRIES = 5  # per page, before the caller is told (it looks again at its next sweep)
RETRY_WAIT_S = 2.0
MAX_PAGES = 1000  # 100,000 rows in one window: beyond that, something is wrong


class LogsUnavailable(Exception):
    """The key cannot read its usage logs (401, 403 or 404): settling is not possible."""

    def __init__(self, status: int | None, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, order=True)
class Window:
    """A span of request times, both ends included (UTC)."""

    start: datetime
    end: datetime


def merge_windows(windows: Iterable[Window]) -> list[Window]:
    """The fewest windows covering `windows` (overlapping or touching ones joined), each at most
    92 days long, in time order."""
    merged: list[Window] = []
    for window in sorted(windows):
        if merged and window.start <= merged[-1].end and window.end - merged[-1].start <= MAX_WINDOW:
            merged[-1] = Window(merged[-1].start, max(merged[-1].end, window.end))
        else:
            merged.append(_at_most_92_days(window))
    return merged


def _at_most_92_days(window: Window) -> Window:
    return Window(max(window.start, window.end - MAX_WINDOW), window.end)


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a `Z`, as the service's examples write it."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def page_params(window: Window, models: Collection[str], offset: int) -> list[tuple[str, str]]:
    """The query of one page: start and end (never period), each model repeated, limit, offset."""
    if len(models) > MAX_MODELS:
        raise ValueError(f"at most {MAX_MODELS} models per request, not {len(models)}")
    params = [("start", iso(window.start)), ("end", iso(window.end))]
    params += [("model", model) for model in sorted(models)]
    params += [("limit", str(PAGE_LIMIT)), ("offset", str(offset))]
    return params


def model_groups(models: Iterable[str]) -> list[list[str]]:
    """Models in groups of at most MAX_MODELS (one query each)."""
    ordered = sorted(set(models))
    return [ordered[i : i + MAX_MODELS] for i in range(0, len(ordered), MAX_MODELS)] or [[]]


@dataclass(frozen=True)
class LogRow:
    """The parts of one of our rows that vidpipe uses."""

    client_request_id: str
    inference_id: str | None
    status: str  # succeeded / failed (a failed request cost nothing)
    model: str
    credits: float | None
    usd: float | None
    id_problem: str | None = None  # why its inference_id was dropped (it cannot be stored)


@dataclass(frozen=True)
class Page:
    rows: list[LogRow]  # only the wanted ones
    has_more: bool
    size: int  # rows on the page, wanted or not (the next offset moves by it)


def read_page(body: Any, wanted: Collection[str]) -> Page:
    """One page, keeping only rows whose client_request_id is in `wanted`. A page of another
    shape is a RejectedError (nothing of it is kept)."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise RejectedError("GET /v2/logs answered without a `data` list")
    pagination = body.get("pagination") if isinstance(body.get("pagination"), dict) else {}
    rows = []
    for item in body["data"]:
        if not isinstance(item, dict) or item.get("client_request_id") not in wanted:
            continue
        cost = item.get("cost") if isinstance(item.get("cost"), dict) else {}
        inference_id = item.get("inference_id")
        rows.append(
            LogRow(
                client_request_id=item["client_request_id"],
                inference_id=str(inference_id)
                if isinstance(inference_id, (str, int)) and inference_id
                else None,
                status=str(item.get("status") or ""),
                model=str(item.get("model") or ""),
                credits=_number(cost.get("credits")),
                usd=_number(cost.get("usd")),
            )
        )
    return Page(rows, bool(pagination.get("has_more")), len(body["data"]))


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


class LogsRate:
    """At most `limit` requests in any `period_s` (a sliding window of request times), on the
    clock the caller passes: `wait(now)` is how long the next request must wait, `taken(now)`
    records one that left. No polling loop, no sleeping of its own."""

    def __init__(self, limit: int = RATE_LIMIT - RATE_MARGIN, period_s: float = RATE_PERIOD_S):
        self.limit, self.period_s = limit, period_s
        self._sent: deque[float] = deque()
        self._held_until = 0.0

    def wait(self, now: float) -> float:
        while self._sent and self._sent[0] <= now - self.period_s:
            self._sent.popleft()
        wait = self._held_until - now
        if len(self._sent) >= self.limit:
            wait = max(wait, self._sent[0] + self.period_s - now)
        return max(0.0, wait)

    def taken(self, now: float) -> None:
        self._sent.append(now)

    def hold(self, now: float, seconds: float) -> None:
        """The service said 429: nothing leaves for `seconds`."""
        self._held_until = max(self._held_until, now + seconds)


class Getter(Protocol):
    async def get(self, path: str, params: list[tuple[str, str]]) -> tuple[Any, Mapping[str, str]]: ...


class LogsReader:
    """Finds rows by client request id in the key's usage logs, within the endpoint's rate."""

    def __init__(
        self,
        client: Getter,
        rate: LogsRate | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        check_id: Callable[[str], str | None] | None = None,
    ):
        self._client = client
        # Why an inference_id cannot be stored and polled (ApiClient.generation_id_problem).
        self._check_id = check_id
        self.rate = rate or LogsRate()
        self._clock = clock
        self._sleep = sleep
        self.requests = 0

    async def find(
        self, windows: Iterable[Window], models: Iterable[str], wanted: Collection[str]
    ) -> dict[str, LogRow]:
        """client_request_id -> its row, for the wanted ids seen in `windows` (merged first).
        Raises LogsUnavailable on 401/403/404."""
        found: dict[str, LogRow] = {}
        groups = model_groups(models)
        for window in merge_windows(windows):
            for group in groups:
                async for row in self._rows(window, group, wanted):
                    problem = (
                        self._check_id(row.inference_id) if self._check_id and row.inference_id else None
                    )
                    if problem:
                        row = replace(row, inference_id=None, id_problem=problem)
                    # Newest first: a second row of one id (never expected) keeps the first seen.
                    found.setdefault(row.client_request_id, row)
        return found

    async def probe(self, now: datetime) -> None:
        """One page of one row of the last minute, nothing of it kept: raises LogsUnavailable
        when this key cannot read its logs (a transient failure says nothing, and passes)."""
        params = [
            (k, "1" if k == "limit" else v)
            for k, v in page_params(Window(now - timedelta(minutes=1), now), (), 0)
        ]
        try:
            read_page(await self._get(params), ())
        except RejectedError as error:
            raise LogsUnavailable(200, str(error)) from None
        except RequestError:
            pass

    async def _rows(self, window: Window, models: list[str], wanted: Collection[str]):
        offset = 0
        for _ in range(MAX_PAGES):
            try:
                page = read_page(await self._get(page_params(window, models, offset)), wanted)
            except RejectedError as error:  # not the documented page: these are not its logs
                raise LogsUnavailable(200, str(error)) from None
            for row in page.rows:
                yield row
            if not page.has_more or page.size == 0:
                return
            offset += page.size

    async def _get(self, params: list[tuple[str, str]]) -> Any:
        """One page, waiting its turn; a transient failure is tried again (GETs are safe to
        repeat), a few times, then raised (the caller looks again later)."""
        failures = 0
        while True:
            wait = self.rate.wait(self._clock())
            if wait > 0:
                await self._sleep(wait)
                continue
            self.rate.taken(self._clock())
            self.requests += 1
            try:
                body, _ = await self._client.get(LOGS_PATH, params)
                return body
            except (AuthError, CreditsError) as error:
                raise LogsUnavailable(401 if isinstance(error, AuthError) else 403, str(error)) from None
            except RejectedError as error:  # 404, or a query it refuses (400): no settling here
                raise LogsUnavailable(error.status, str(error)) from None
            except TransientError as error:
                if error.status is not None and 200 <= error.status < 300:  # a 2xx that is no page
                    raise LogsUnavailable(error.status, str(error)) from None
                failures += 1
                if failures >= TRIES:
                    raise
                if error.status == 429:
                    self.rate.hold(self._clock(), error.retry_after_s or THROTTLED_WAIT_S)
                else:
                    await self._sleep(RETRY_WAIT_S * failures)
            except RequestError:  # not sent, or the answer lost: a GET is safe to repeat
                failures += 1
                if failures >= TRIES:
                    raise
                await self._sleep(RETRY_WAIT_S * failures)
