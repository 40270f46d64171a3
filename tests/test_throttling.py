"""429s over loopback: Retry-After values that give no usable wait (a hostile server), and a run
at default settings against a sandbox that throttles (the learned rate, end to end, coarsely:
its timing is proven on a fake clock in tests/unit/test_rate.py)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from aiohttp import web

from pipeline.net.http import ApiClient, RetryPolicy
from pipeline.net.providers import AimlApi
from pipeline.sandbox import FaultConfig, SandboxConfig, running_sandbox
from pipeline.states import PollState
from tests.conftest import KEY
from tests.hostile import HostileServer, serve
from tests.runner_helpers import accepted_twice, manifest_text, results


class RecordingLimiter:
    """A rate.Limiter that never makes anyone wait, and records what it is told."""

    def __init__(self) -> None:
        self.holds: list[float] = []
        self.successes = 0

    async def turn(self) -> float:
        return 0.0

    def hold(self, seconds: float) -> None:
        self.holds.append(seconds)

    def succeeded(self) -> None:
        self.successes += 1


def waits_of_a_poll_throttled_three_times(retry_after: str | None) -> list[float]:
    """Every pause of a poll that the server answers 429 (with `retry_after`) three times, then 200."""
    statuses = iter([429, 429, 429, 200])

    def answer(request: web.Request) -> web.Response:
        if next(statuses) == 429:
            headers = {} if retry_after is None else {"Retry-After": retry_after}
            body = {"message": "Too many requests", "statusCode": 429}
            return web.json_response(body, status=429, headers=headers)
        return web.json_response({"id": "g1", "status": "generating"})

    paused: list[float] = []
    limiter = RecordingLimiter()

    async def pause(seconds: float) -> None:
        paused.append(seconds)

    async def poll(base_url: str):
        client = ApiClient(
            base_url,
            KEY,
            AimlApi("legacy"),
            requests_per_minute=None,
            retry=RetryPolicy(),
            rng=random.Random(5),
            sleep=pause,
            limiter=limiter,
        )
        async with client:
            return await client.poll("g1")

    server = HostileServer(answer)
    with serve(server) as base_url:
        generation = asyncio.run(poll(base_url))
    assert generation.state == PollState.RUNNING and len(server.seen) == 4
    assert limiter.holds == [wait for wait in paused if wait] and limiter.successes == 1
    return paused


@pytest.mark.parametrize(
    "retry_after",
    [
        "0",
        "-1",
        "-0.5",
        "nan",
        "soon",
        format_datetime(datetime.now(timezone.utc) - timedelta(hours=1), usegmt=True),
    ],
)
def test_a_retry_after_with_no_usable_wait_backs_off_as_if_there_were_none(retry_after):
    """`Retry-After: 0` used to mean "retry at once", which turned the backoff into a stream."""
    waits = waits_of_a_poll_throttled_three_times(retry_after)
    assert waits == waits_of_a_poll_throttled_three_times(None)
    assert len([wait for wait in waits if wait > 0]) == 3


def test_a_usable_retry_after_is_waited_out():
    waits = waits_of_a_poll_throttled_three_times("2")
    assert [wait for wait in waits if wait] == [2.0, 2.0, 2.0]


def test_at_default_settings_a_throttling_service_slows_the_run_and_every_job_completes_once(
    write, run_api, workdir
):
    """No requests_per_minute set: a service answering 429 to a third of the submits and polls
    (half of them with Retry-After) is slowed down for, and every job completes, paid once."""
    faults = FaultConfig(
        submit={"429": 0.15, "429_retry_after": 0.15},
        poll={"429": 0.15, "429_retry_after": 0.15},
        retry_after=0.2,
        seed=3,
    )
    run = "run: {concurrency: 4, poll_interval: 0.05, poll_max_interval: 0.2, retries: 6}"
    with running_sandbox(SandboxConfig(gen_time=0.1, faults=faults)) as sandbox:
        result = run_api(sandbox, write("m.yaml", manifest_text(jobs=8, run=run)), "--json")
        stats = sandbox.stats()
    assert result.code == 0, result.err
    assert set(results(workdir / "outputs" / "t")["status"]) == {"completed"}
    assert stats["submits"]["accepted"] == 8 and accepted_twice(stats) == {}
    http = json.loads(result.out)["http"]
    answered_429 = sum(count for name, count in stats["faults"].items() if ".429" in name)
    assert answered_429 > 0 and http["throttled"] == answered_429
