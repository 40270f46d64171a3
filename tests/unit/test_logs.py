"""The usage logs' query, pages and rate (pipeline/net/logs.py), on a fake clock and a fake
service: no network, no sleeping."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.errors import AuthError, RejectedError, TransientError
from pipeline.net.logs import (
    MAX_WINDOW,
    LogsRate,
    LogsReader,
    LogsUnavailable,
    Window,
    merge_windows,
    model_groups,
    page_params,
    read_page,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_overlapping_windows_are_merged_and_apart_ones_kept():
    windows = [Window(at(10), at(14)), Window(at(0), at(4)), Window(at(3), at(6)), Window(at(6), at(7))]
    assert merge_windows(windows) == [Window(at(0), at(7)), Window(at(10), at(14))]


def test_no_merged_window_is_longer_than_92_days():
    day = timedelta(days=1)
    windows = [Window(T0 + n * day, T0 + (n + 2) * day) for n in range(0, 200)]
    merged = merge_windows(windows)
    assert all(w.end - w.start <= MAX_WINDOW for w in merged)
    assert merged[0].start == T0 and merged[-1].end == T0 + 201 * day
    assert len(merged) == 3


def test_a_page_query_has_start_end_repeated_models_and_never_a_period():
    params = page_params(Window(at(0), at(5)), ["runway/gen4_turbo", "gen3a_turbo"], 200)
    assert params == [
        ("start", "2026-12-01T12:00:00.000Z"),
        ("end", "2026-12-01T12:05:00.000Z"),
        ("model", "gen3a_turbo"),
        ("model", "runway/gen4_turbo"),
        ("limit", "100"),
        ("offset", "200"),
    ]
    assert all(name != "period" for name, _ in params)
    assert not any("," in value for name, value in params if name == "model")


def test_models_go_50_to_a_query():
    groups = model_groups(f"m{n:03d}" for n in range(120))
    assert [len(g) for g in groups] == [50, 50, 20]
    assert model_groups([]) == [[]]


def row(client_id, inference_id="gen", status="succeeded", credits=525000):
    return {
        "created": "2026-12-01T12:00:01.000Z",
        "status": status,
        "origin": "api",
        "model": "runway/gen3a_turbo",
        "cost": {"usd": credits / 2e6, "credits": credits},
        "tokens": {"input": 0, "output": 0, "total": 0},
        "request_id": "req",
        "inference_id": inference_id,
        "client_request_id": client_id,
    }


def test_a_page_keeps_only_the_wanted_rows():
    body = {
        "data": [row("ours", "g1"), row("someone-elses", "g2"), row(None, "g3")],
        "pagination": {"has_more": True},
    }
    page = read_page(body, {"ours"})
    assert [r.inference_id for r in page.rows] == ["g1"] and page.has_more and page.size == 3
    with pytest.raises(RejectedError):
        read_page({"rows": []}, {"ours"})


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_limiter_never_lets_more_than_its_limit_into_any_window():
    rate, clock, sent = LogsRate(limit=180, period_s=60.0), FakeClock(), []
    for _ in range(1000):
        wait = rate.wait(clock.now)
        clock.now += wait + 0.01
        rate.taken(clock.now)
        sent.append(clock.now)
    for index, moment in enumerate(sent):
        in_window = [t for t in sent[index:] if t < moment + 60.0]
        assert len(in_window) <= 180
    assert sent[-1] >= 60.0 * (1000 // 180)  # it did wait


def test_a_429_holds_every_request_for_the_wait():
    rate = LogsRate()
    rate.hold(10.0, 60.0)
    assert rate.wait(10.0) == 60.0 and rate.wait(70.0) == 0.0


class FakeService:
    """A paged log of `total` rows, ours among them, and scripted failures."""

    def __init__(self, total: int, ours: dict[int, str], failures=()):
        self.total, self.ours, self.failures = total, ours, list(failures)
        self.queries: list[list[tuple[str, str]]] = []

    async def get(self, path, params):
        self.queries.append(params)
        if self.failures:
            raise self.failures.pop(0)
        query = dict(params)
        offset, limit = int(query["offset"]), int(query["limit"])
        data = [
            row(self.ours.get(n, f"other-{n}"), f"gen-{n}")
            for n in range(offset, min(self.total, offset + limit))
        ]
        return {"data": data, "pagination": {"has_more": offset + limit < self.total}}, {}


def find(service, wanted, clock=None):
    clock = clock or FakeClock()
    reader = LogsReader(service, LogsRate(limit=3, period_s=60.0), clock=clock, sleep=clock.sleep)
    found = asyncio.run(reader.find([Window(at(0), at(3))], ["gen3a_turbo"], wanted))
    return found, clock


def test_pages_are_read_by_offset_while_has_more_and_paced():
    service = FakeService(total=450, ours={5: "a", 420: "b"})
    found, clock = find(service, {"a", "b", "never"})
    assert {k: v.inference_id for k, v in found.items()} == {"a": "gen-5", "b": "gen-420"}
    assert [dict(q)["offset"] for q in service.queries] == ["0", "100", "200", "300", "400"]
    assert clock.now >= 60.0  # five pages at three a minute


def test_401_403_404_say_the_logs_are_unavailable():
    for error in (AuthError("no"), RejectedError("nope", status=404)):
        with pytest.raises(LogsUnavailable):
            find(FakeService(1, {}, [error]), {"a"})


def test_a_429_waits_then_goes_on():
    service = FakeService(1, {0: "a"}, [TransientError("slow down", status=429, retry_after_s=30.0)])
    found, clock = find(service, {"a"})
    assert "a" in found and clock.now >= 30.0
