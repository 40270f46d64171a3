"""The sandbox's usage logs: `GET /v2/logs`, one row per request, as the service documents it
(`usage-logs.md` and `logs-v2.json` in aimlapi/api-docs).

    window      `period` (`24h`, `7d`) or `start` + `end` (ISO-8601; no offset means UTC), never
                both; `end` not before `start`; 92 days at most            (else 400)
    filters     `model` and `status` repeated; `model` matches `source/alias` or the bare alias
                exactly (a comma list matches nothing); `status` is succeeded or failed
                (a comma list is a 400)
    pages       `limit` 1-100 (default 50), `offset` 0 or more, newest first,
                `pagination{limit, offset, total, has_more}`                   (else 400)
    rate        over 200 requests in 60 s: 429
    delay       a row shows `delay_s` after its request (the analytics pipeline's lag)

A submit's row costs what its generation was charged once it completed (the charge is recorded
then), 0 before; a failed request costs 0. Rows are kept in memory only.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from multidict import MultiMapping

from .contract import USD_PER_CREDIT
from .queue import COMPLETED, Generation

MAX_WINDOW = timedelta(days=92)
RATE_LIMIT, RATE_PERIOD_S = 200, 60.0
STATUSES = ("succeeded", "failed")
_PERIOD = re.compile(r"^([1-9][0-9]{0,5})([hd])$")


def logged_model(model: Any) -> str:
    """A model as a row names it, `source/alias` (the sandbox's bare names are Runway's)."""
    model = str(model or "")
    return model if "/" in model or not model else f"runway/{model}"


@dataclass
class Row:
    created: datetime
    visible_at: float  # on the log's clock
    status: str
    model: str
    request_id: str
    inference_id: str | None
    client_request_id: str | None
    generation: Generation | None = None  # a submit's: what it was charged

    def as_dict(self) -> dict[str, Any]:
        credits = 0
        if self.generation is not None and self.status == "succeeded" and self.generation.status == COMPLETED:
            credits = int(self.generation.credits)
        return {
            "created": self.created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "status": self.status,
            "origin": "api",
            "model": self.model,
            "cost": {"usd": round(credits * USD_PER_CREDIT, 9), "credits": credits},
            "tokens": {"input": 0, "output": 0, "total": 0},
            "request_id": self.request_id,
            "inference_id": self.inference_id,
            "client_request_id": self.client_request_id,
        }


class UsageLog:
    """Every request the sandbox served, as rows of `GET /v2/logs`."""

    def __init__(
        self,
        delay_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self.delay_s = delay_s
        self._clock, self._wall = clock, wall
        self._rows: list[Row] = []
        self._asked: deque[float] = deque()
        self.requests = 0

    def record(
        self,
        status: str,
        model: Any,
        client_request_id: str | None,
        inference_id: str | None = None,
        generation: Generation | None = None,
    ) -> None:
        self._rows.append(
            Row(
                created=self._wall(),
                visible_at=self._clock() + self.delay_s,
                status=status,
                model=logged_model(model),
                request_id=f"req-{len(self._rows) + 1}",
                inference_id=inference_id,
                client_request_id=client_request_id,
                generation=generation,
            )
        )

    def answer(self, query: MultiMapping[str]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) for one GET /v2/logs."""
        self.requests += 1
        now = self._clock()
        while self._asked and self._asked[0] <= now - RATE_PERIOD_S:
            self._asked.popleft()
        if len(self._asked) >= RATE_LIMIT:
            return 429, {"message": f"Too many requests: at most {RATE_LIMIT} in {RATE_PERIOD_S:g} seconds"}
        self._asked.append(now)
        try:
            start, end = self._window(query)
            statuses = query.getall("status", [])
            for status in statuses:
                if status not in STATUSES:
                    raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
            limit = _whole(query.get("limit", "50"), "limit", 1, 100)
            offset = _whole(query.get("offset", "0"), "offset", 0, None)
        except ValueError as problem:
            return 400, {"message": str(problem), "statusCode": 400}
        models = query.getall("model", [])
        rows = [
            row
            for row in reversed(self._rows)  # newest first
            if row.visible_at <= now
            and start <= row.created <= end
            and (not statuses or row.status in statuses)
            and (not models or any(_matches(row.model, model) for model in models))
        ]
        page = rows[offset : offset + limit]
        return 200, {
            "data": [row.as_dict() for row in page],
            "pagination": {
                "limit": limit,
                "offset": offset,
                "total": len(rows),
                "has_more": offset + len(page) < len(rows),
            },
        }

    def _window(self, query: MultiMapping[str]) -> tuple[datetime, datetime]:
        period, start, end = query.get("period"), query.get("start"), query.get("end")
        if period is not None and (start is not None or end is not None):
            raise ValueError("provide either period or start and end, not both")
        if period is not None:
            match = _PERIOD.match(period)
            if not match:
                raise ValueError(f"period must be a positive number followed by h or d, not {period!r}")
            amount, unit = int(match[1]), match[2]
            span = timedelta(hours=amount) if unit == "h" else timedelta(days=amount)
            if span > MAX_WINDOW:
                raise ValueError("the window must not exceed 92 days")
            now = self._wall()
            return now - span, now
        if start is None or end is None:
            raise ValueError("provide either period or both start and end")
        first, last = _moment(start, "start"), _moment(end, "end")
        if last < first:
            raise ValueError("end must not be earlier than start")
        if last - first > MAX_WINDOW:
            raise ValueError("the window must not exceed 92 days")
        return first, last


def _matches(row_model: str, wanted: str) -> bool:
    return wanted == row_model or wanted == row_model.split("/", 1)[-1]


def _moment(text: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name} is not an ISO-8601 date: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _whole(text: str, name: str, low: int, high: int | None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {text!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise ValueError(f"{name} must be {bound}, not {value}")
    return value
