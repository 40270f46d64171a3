"""A restarted shard's scheduler (`hold_back`): jobs its dead attempt left uncertain or failed
are not submitted again in the run, even with --retry-uncertain. Real scheduler, real ledger,
the sandbox over loopback."""

from __future__ import annotations

import asyncio

from pipeline import services
from pipeline.read.settings import RunSettings
from pipeline.run.ledger import Ledger
from pipeline.run.scheduler import SchedulerOptions
from pipeline.run.session import open_scheduler
from pipeline.run.steps import Job

REQUEST = {"model": "gen3a_turbo", "ratio": "16:9", "duration": 5}


def test_held_back_jobs_stay_as_they_are_while_the_others_run(sandbox, tmp_path):
    jobs = [
        Job(f"job{n}", {**REQUEST, "prompt": "a heron", "seed": n}, f"job{n}.mp4", 525_000) for n in range(4)
    ]
    run = RunSettings.from_section({"poll_interval": 0.05, "poll_max_interval": 0.2})
    (tmp_path / "videos").mkdir()
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.sync_jobs((job.job_id, n, job.request, {}) for n, job in enumerate(jobs))
        ledger.mark_uncertain("job0", "the dead attempt's submit was in the air")  # held back
        ledger.mark_uncertain("job1", "uncertain from an earlier run")  # --retry-uncertain sends it
        ledger.mark_failed("job2", "error", "failed under the dead attempt")  # held back
        options = SchedulerOptions(concurrency=2, retry_uncertain=True, hold_back=frozenset({"job0", "job2"}))

        async def go():
            service = (sandbox.base_url, "sk-hold-back-test")
            async with open_scheduler(
                jobs,
                ledger,
                tmp_path / "videos",
                run,
                service,
                options,
                provider=services.service("sandbox").provider(run.endpoint),
            ) as scheduler:
                return await scheduler.run()

        tally = asyncio.run(go())
        statuses = {job_id: row["status"] for job_id, row in ledger.rows_by_id().items()}

    assert statuses == {"job0": "uncertain", "job1": "completed", "job2": "failed", "job3": "completed"}
    assert sandbox.stats()["submits"]["accepted"] == 2
    assert (tally.completed, tally.failed, tally.uncertain) == (2, 1, 1)
