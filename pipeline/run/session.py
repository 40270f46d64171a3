"""One scheduler and what it talks through: the API client, the poller, the publisher (downloads
and the store) and the steps.

Built the same way by the local engine (runner.py) and by each shard of the Ray engine
(cluster/shard.py); only the limiter and the shared window differ between them.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ..net.download import Downloader
from ..net.http import ApiClient, Limiter, RetryPolicy
from ..net.logs import LogsReader
from ..net.providers import Provider
from ..read.settings import RunSettings
from ..write.storage import Store
from .media import MediaWorker
from .polling import Poller, PollOptions
from .publishing import Publisher
from .scheduler import Scheduler, SchedulerOptions, SharedWindow
from .settle import Settler
from .steps import Job, Steps


@asynccontextmanager
async def open_scheduler(
    jobs: list[Job],
    ledger: Any,
    video_dir: Path,
    run: RunSettings,
    service: tuple[str, str],
    options: SchedulerOptions,
    *,
    limiter: Limiter | None = None,
    shared: SharedWindow | None = None,
    store: Store | None = None,
    provider: Provider,
    settle_grace: float | None = None,
    request_id_token: str | None = None,
) -> AsyncIterator[Scheduler]:
    """A Scheduler for `jobs`, its HTTP sessions open until the block ends.

    `service` is (base_url, api_key) and `provider` the request format it speaks (from
    services.py); `ledger` is a Ledger or anything with its job methods. With a
    `request_id_token` (the folder's, request_ids.py) every submit attempt gets its own client
    request id; with `settle_grace` too, maybe-sent submits are settled from the service's
    usage logs (settle.py).
    """
    base_url, api_key = service
    rng = random.Random()
    media = MediaWorker.for_jobs(len(jobs))
    async with (
        ApiClient(
            base_url,
            api_key,
            provider,
            requests_per_minute=run.requests_per_minute,
            retry=RetryPolicy(attempts=run.retries + 1),
            rng=rng,
            limiter=limiter,
        ) as client,
        Downloader(untrusted=client.untrusted) as downloader,
    ):
        poll_options = PollOptions(
            poll_first_s=run.poll_interval, poll_cap_s=run.poll_max_interval, timeout_s=run.timeout
        )
        steps = Steps(
            client,
            ledger,
            Poller(client, poll_options, rng),
            Publisher(downloader, video_dir, store, media),
            rng,
            request_id_token,
        )
        settler = None
        if settle_grace is not None and request_id_token:
            settler = Settler(LogsReader(client, check_id=client.generation_id_problem), settle_grace)
            client.settling = settler.available  # a gateway's 502/504 is settled, not resent
            await settler.probe()
        try:
            yield Scheduler(jobs, steps, ledger, options, shared, settler)
        finally:
            try:
                await media.close()
            finally:
                if settler is not None:
                    await settler.close()
