"""What the logs' answer means for a maybe-sent submit (pipeline/run/settle.py), and the
sandbox's /v2/logs keeping to the documented rules (pipeline/sandbox/usage.py), on fake clocks."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from multidict import MultiDict

from pipeline.net.logs import LogRow, LogsReader, LogsUnavailable
from pipeline.run.settle import Attempt, Settler, Verdict, decide
from pipeline.sandbox.usage import UsageLog

SENT = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
ATTEMPT = Attempt("job", "vp.t.job.1", SENT, "gen3a_turbo")


def logged(status="succeeded", inference_id="gen-1"):
    return LogRow("vp.t.job.1", inference_id, status, "runway/gen3a_turbo", 0.0, 0.0)


def later(seconds: float) -> datetime:
    return SENT + timedelta(seconds=seconds)


def test_the_verdicts():
    assert decide(ATTEMPT, logged(), later(1), 900).verdict is Verdict.FOUND
    assert decide(ATTEMPT, logged(), later(1), 900).generation_id == "gen-1"
    assert decide(ATTEMPT, logged("failed"), later(1), 900).verdict is Verdict.NOT_ARRIVED
    assert decide(ATTEMPT, None, later(899), 900).verdict is Verdict.WAITING
    assert decide(ATTEMPT, None, later(900), 900).verdict is Verdict.NOT_ARRIVED


def test_the_window_opens_before_the_attempt_left():
    window = ATTEMPT.window(later(30))
    assert window.start < SENT < window.end == later(30)
    assert ATTEMPT.window(later(200 * 86400)).end - window.start == timedelta(days=92)


class FakeReader:
    def __init__(self, answers):
        self.answers = list(answers)  # one per sweep: rows by id, or an exception
        self.calls = 0

    async def find(self, windows, models, wanted):
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else {}
        if isinstance(answer, Exception):
            raise answer
        return {key: value for key, value in answer.items() if key in wanted}


def settle_with(reader, clock_seconds):
    moments = iter(clock_seconds)
    lines = []
    settler = Settler(reader, grace_s=10, clock=lambda: later(next(moments)), say=lines.append)
    settler.interval_s = 0.001

    async def main():
        try:
            return await settler.settle(ATTEMPT)
        finally:
            await settler.close()

    return asyncio.run(main()), lines


def test_a_row_that_appears_late_is_still_found():
    settled, _ = settle_with(FakeReader([{}, {}, {"vp.t.job.1": logged()}]), [1, 2, 3])
    assert settled.verdict is Verdict.FOUND


def test_no_row_past_the_grace_means_it_never_arrived():
    settled, _ = settle_with(FakeReader([{}, {}]), [5, 11])
    assert settled.verdict is Verdict.NOT_ARRIVED


def test_a_job_waiting_for_the_logs_is_explained_once_with_the_grace():
    settled, lines = settle_with(FakeReader([{}, {}, {}, {"vp.t.job.1": logged()}]), [1, 2, 3, 4])
    assert settled.verdict is Verdict.FOUND
    assert len(lines) == 1 and "waits for the usage logs" in lines[0] and "10 s" in lines[0]
    assert "run.settle_grace" in lines[0]


def test_logs_refused_leave_it_unsettled_with_one_line():
    settled, lines = settle_with(FakeReader([LogsUnavailable(404, "no")]), [1])
    assert settled.verdict is Verdict.UNAVAILABLE and len(lines) == 1 and "404" in lines[0]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def sandbox_log(delay=0.0):
    clock, wall = Clock(), [SENT]
    log = UsageLog(delay, clock=clock, wall=lambda: wall[0])
    return log, clock


def ask(log, **params):
    query = MultiDict()
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            query.add(key, item)
    return log.answer(query)


WINDOW = {"start": "2026-12-01T11:59:00Z", "end": "2026-12-01T12:01:00Z"}


def test_sandbox_logs_follow_the_documented_rules():
    log, clock = sandbox_log(delay=5.0)
    log.record("succeeded", "gen3a_turbo", "ours", "gen-1")
    log.record("failed", "gen3a_turbo", None)
    assert ask(log, **WINDOW)[1]["data"] == []  # not yet: the pipeline's lag
    clock.now = 5.0
    status, body = ask(log, **WINDOW)
    assert status == 200 and [r["client_request_id"] for r in body["data"]] == [None, "ours"]  # newest first
    assert ask(log, **WINDOW, model="gen3a_turbo")[1]["pagination"]["total"] == 2
    assert ask(log, **WINDOW, model="runway/gen3a_turbo,other")[1]["data"] == []  # a comma list: nothing
    assert ask(log, **WINDOW, model=["other", "runway/gen3a_turbo"])[1]["pagination"]["total"] == 2
    assert ask(log, **WINDOW, status="succeeded,failed")[0] == 400
    assert ask(log, **WINDOW, period="24h")[0] == 400  # never both
    assert ask(log)[0] == 400
    assert ask(log, start=WINDOW["start"])[0] == 400
    assert ask(log, start=WINDOW["end"], end=WINDOW["start"])[0] == 400
    assert ask(log, start="2026-01-01T00:00:00Z", end="2026-12-01T00:00:00Z")[0] == 400  # over 92 days
    assert ask(log, **WINDOW, limit="0")[0] == 400 and ask(log, **WINDOW, limit="101")[0] == 400
    page = ask(log, **WINDOW, limit="1", offset="1")[1]
    assert page["pagination"] == {"limit": 1, "offset": 1, "total": 2, "has_more": False}
    assert ask(log, period="24h")[0] == 200


def test_sandbox_logs_answer_429_over_200_requests_a_minute():
    log, clock = sandbox_log()
    statuses = [ask(log, period="1h")[0] for _ in range(201)]
    assert statuses.count(200) == 200 and statuses[-1] == 429
    clock.now = 60.0
    assert ask(log, period="1h")[0] == 200


class LogsOf:
    """A Getter serving GET /v2/logs from a sandbox UsageLog."""

    def __init__(self, log):
        self.log, self.queries = log, []

    async def get(self, path, params):
        self.queries.append(params)
        query = MultiDict()
        for key, value in params:
            query.add(key, value)
        status, body = self.log.answer(query)
        assert status == 200, body
        return body, {}


def test_a_row_logged_under_an_alias_by_a_clock_ten_minutes_behind_is_found():
    wall = [SENT - timedelta(minutes=10)]  # the service's clock
    log = UsageLog(0.0, clock=Clock(), wall=lambda: wall[0])
    log.record("succeeded", "runway/gen3a_turbo-alias", "vp.t.job.1", "gen-1")
    log.record("succeeded", "other", "someone-else", "gen-2")
    getter = LogsOf(log)
    settler = Settler(LogsReader(getter), grace_s=900, clock=lambda: later(30), say=print)
    verdicts = asyncio.run(settler.sweep([ATTEMPT]))
    assert verdicts["vp.t.job.1"].verdict is Verdict.FOUND and verdicts["vp.t.job.1"].generation_id == "gen-1"
    assert not any(key == "model" for query in getter.queries for key, _ in query)


def test_an_inference_id_that_fails_the_clients_checks_is_never_stored_or_polled():
    """A succeeded row whose id is too long or holds the key: the job stays uncertain (it was
    taken, so it is not sent again), and the id goes nowhere."""
    from pipeline import services
    from pipeline.net.http import ApiClient, RetryPolicy

    key = "sk-test-0123456789abcdef"
    client = ApiClient(
        "http://127.0.0.1:1", key, services.service("aimlapi").provider("legacy"),
        requests_per_minute=None, retry=RetryPolicy(),
    )  # fmt: skip
    for bad in ("x" * 300, f"gen-{key}"):
        log = UsageLog(0.0, clock=Clock(), wall=lambda: SENT)
        log.record("succeeded", "gen3a_turbo", "vp.t.job.1", bad)
        reader = LogsReader(LogsOf(log), check_id=client.generation_id_problem)
        settled = asyncio.run(Settler(reader, grace_s=900, clock=lambda: later(30)).sweep([ATTEMPT]))[
            "vp.t.job.1"
        ]
        assert settled.verdict is Verdict.UNAVAILABLE and settled.generation_id is None
        assert "taken" in settled.reason and key not in settled.reason and bad not in settled.reason
