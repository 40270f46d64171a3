"""No POST leaves after a stop, even one that comes while the job's intent goes to the disk
(pipeline/net/http.py awaits the submit hook, pipeline/run/steps.py makes the intent durable
there): proven against the sandbox over loopback, which counts what reached it."""

from __future__ import annotations

import asyncio
import random

import pytest

from pipeline.errors import StoppedError
from pipeline.net.http import ApiClient, RetryPolicy
from pipeline.net.providers import AimlApi

REQUEST = {"model": "gen3a_turbo", "prompt": "a lighthouse", "ratio": "16:9", "duration": 5}


class StopWhileRecording:
    """A submit hook whose wait for the disk sees the run stop (a Ctrl-C, a budget, a 401)."""

    def __init__(self) -> None:
        self.client: ApiClient | None = None
        self.calls: list[str] = []

    async def sending(self) -> None:
        self.calls.append("sending")
        await asyncio.sleep(0.01)  # the disk's wait, off the loop
        self.client.stop_submitting()

    def not_taken(self) -> None:
        self.calls.append("not_taken")


def test_a_stop_while_the_intent_goes_to_disk_sends_no_post(sandbox):
    hook = StopWhileRecording()

    async def submit() -> None:
        client = ApiClient(
            sandbox.base_url, "sk-test", AimlApi("legacy"), requests_per_minute=None,
            retry=RetryPolicy(), rng=random.Random(1),
        )  # fmt: skip
        hook.client = client
        async with client:
            await client.submit(REQUEST, client_request_id="job1", hooks=hook)

    with pytest.raises(StoppedError):
        asyncio.run(submit())
    assert hook.calls == ["sending", "not_taken"]
    assert sandbox.stats()["submits"]["accepted"] == 0
