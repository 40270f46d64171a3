"""`vidpipe reconcile OUTPUT_DIR`: settle a folder's maybe-sent submits now, from the service's
usage logs, and (`--billing`) compare what the ledger knows with what the logs say was billed.

Settling here is one look (settle.py's `sweep`), recorded in the ledger for the next run:
found -> `submitted` with its generation id (the next run polls it), never arrived -> `pending`
(the next run submits it), too early to tell -> left `uncertain`.

Exit codes: 0 nothing is left to settle (and, with --billing, no difference), or the folder ran
on the embedded sandbox (free, its logs gone with it: nothing to settle); 1 some jobs are
still uncertain (not in the logs yet, within the grace period, or with no client request id
recorded) or the billing differs; 3 the service refused (the key, or its logs: 401/403/404);
2 bad input (no ledger here, no key, or a recorded --base-url that is neither this machine nor
the service's, so the key is not sent there without --base-url).

Only rows whose client_request_id is one this folder sent are read; no other row is shown.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import services
from ..errors import AbortError, InputError
from ..net.download import is_loopback_host
from ..net.http import ApiClient, RetryPolicy
from ..net.logs import LogRow, LogsReader, LogsUnavailable, Window
from ..net.untrusted import printable
from ..states import JobState
from .ledger import LEDGER_FILE, Ledger, RunLock
from .request_ids import ids_of_job
from .settle import CLOCK_SKEW, DEFAULT_GRACE_S, Settled, Settler, Verdict, attempt_of, parse_when


@dataclass
class Reconciled:
    lines: list[str] = field(default_factory=list)
    waiting: int = 0
    differences: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.waiting or self.differences else 0


def reconcile(
    folder: Path,
    *,
    billing: bool = False,
    base_url: str | None = None,
    grace_s: float = DEFAULT_GRACE_S,
) -> Reconciled:
    if not (folder / LEDGER_FILE).is_file():
        raise InputError(f"{folder}: no ledger here ({LEDGER_FILE}); give the output folder of a run")
    with RunLock(folder), Ledger(folder / LEDGER_FILE) as ledger:
        runs = ledger.runs()
        service = services.service(runs[-1]["provider"] if runs else "aimlapi")
        if runs and all(_embedded(run) for run in runs):
            return Reconciled(
                [
                    f"{folder} ran on the embedded {service.name} (free; its logs ended with its run): "
                    "nothing to settle or bill-check (a rerun sends any uncertain job again)"
                ]
            )
        env_url = os.environ.get(service.base_url_env or "")
        recorded = _recorded_base_url(runs)
        if not base_url and recorded and not _may_get_the_key(recorded, service, env_url):
            # A folder from someone else, or an old test URL: the key is not sent there unasked.
            raise InputError(
                f"{folder}: its run used --base-url {printable(recorded)[:80]}, which is neither this "
                f"machine nor {service.base_url}; pass --base-url to say where its logs are "
                f"({service.key_env or 'the key'} is sent there)"
            )
        url = base_url or recorded or env_url or service.base_url
        if not url:  # the last run was on the embedded sandbox, earlier ones elsewhere
            raise InputError(f"{folder}: its last run used the embedded {service.name}; pass --base-url")
        key = os.environ.get(service.key_env, "").strip() if service.key_env else "sandbox"
        if not key:
            raise InputError(f"{service.key_env} is not set: the usage logs need the key the run used")
        return asyncio.run(_reconcile(ledger, service, url.rstrip("/"), key, billing, grace_s))


async def _reconcile(ledger, service, base_url, key, billing, grace_s) -> Reconciled:
    out = Reconciled()
    async with ApiClient(
        base_url, key, service.provider("legacy"), requests_per_minute=None, retry=RetryPolicy()
    ) as client:
        settler = Settler(
            LogsReader(client, check_id=client.generation_id_problem), grace_s, say=out.lines.append
        )
        try:
            await _settle(ledger, settler, out)
            if billing:
                await _billing(ledger, settler.reader, out)
        except LogsUnavailable as error:
            raise AbortError(
                f"settling is unavailable: GET /v2/logs answered {error.status}; uncertain jobs stay "
                "uncertain (check the account, then vidpipe run ... --retry-uncertain resends them)"
            ) from None
    return out


async def _settle(ledger: Ledger, settler: Settler, out: Reconciled) -> None:
    rows = [row for row in ledger.rows_by_id().values() if row["status"] == JobState.UNCERTAIN]
    attempts = {row["job_id"]: attempt_of(row) for row in rows}
    settleable = [attempt for attempt in attempts.values() if attempt is not None]
    verdicts = await settler.sweep(settleable)
    counts = {verdict: 0 for verdict in Verdict}
    for job_id, attempt in sorted(attempts.items()):
        settled = verdicts.get(attempt.client_request_id) if attempt else None
        out.lines.append(f"  {job_id}  {_describe(settled, attempt, settler.grace_s)}")
        if settled is None or settled.verdict in (Verdict.WAITING, Verdict.UNAVAILABLE):
            out.waiting += 1
            counts[Verdict.WAITING] += 1
        elif settled.verdict is Verdict.FOUND:
            ledger.mark_settled_found(job_id, settled.generation_id)
            counts[Verdict.FOUND] += 1
        else:
            ledger.mark_settled_not_arrived(job_id)
            counts[Verdict.NOT_ARRIVED] += 1
    head = (
        f"{len(rows)} uncertain job(s): {counts[Verdict.FOUND]} found in the service's logs (polled by the "
        f"next run), {counts[Verdict.NOT_ARRIVED]} never arrived (submitted by the next run), "
        f"{counts[Verdict.WAITING]} still uncertain"
    )
    out.lines.insert(0, head)


def _describe(settled: Settled | None, attempt, grace_s: float) -> str:
    if attempt is None:
        return "no client request id recorded (sent by an older vidpipe): only --retry-uncertain resends it"
    if settled.verdict is Verdict.FOUND:
        return f"found: generation {settled.generation_id}; the next run polls it"
    if settled.verdict is Verdict.NOT_ARRIVED:
        return f"never arrived ({settled.reason}); the next run submits it"
    if settled.verdict is Verdict.UNAVAILABLE:
        return f"still uncertain: {settled.reason}"
    until = attempt.sent_at + timedelta(seconds=grace_s)
    return f"not in the logs yet; reconcile again after {until:%Y-%m-%d %H:%M:%S} UTC (the grace period)"


async def _billing(ledger: Ledger, reader: LogsReader, out: Reconciled) -> None:
    """Every generation billed that the ledger does not know, every one the ledger knows that the
    logs do not show, and every cost that differs."""
    token = ledger.request_id_token()
    jobs = ledger.rows_by_id()
    job_of = {
        client_id: job_id
        for job_id, row in jobs.items()
        for client_id in ids_of_job(token, job_id, row["submits"])
    }
    runs = ledger.runs()
    start = parse_when(runs[0]["started_at"]) - CLOCK_SKEW if runs else datetime.now(timezone.utc)
    windows = _windows(start, datetime.now(timezone.utc) + CLOCK_SKEW)
    found = await reader.find(windows, (), set(job_of))  # by our ids alone: a model may log as an alias
    by_generation: dict[str, LogRow] = {row.inference_id: row for row in found.values() if row.inference_id}
    differences = []
    for row in found.values():
        job_id = job_of[row.client_request_id]
        known = jobs[job_id]["generation_id"]
        if row.status == "succeeded" and row.inference_id != known and (row.credits or 0) > 0:
            differences.append(
                f"  {job_id}  billed {row.credits:,.0f} credits for generation "
                f"{row.inference_id or '(id not shown: ' + str(row.id_problem) + ')'} "
                f"({row.client_request_id}), which the ledger does not know"
            )
    for job_id, row in sorted(jobs.items()):
        generation_id = row["generation_id"]
        if not generation_id or not row["client_request_id"]:
            continue
        logged = by_generation.get(generation_id)
        if logged is None:
            differences.append(f"  {job_id}  generation {generation_id} is in the ledger, not in the logs")
        elif _differs(row["credits"], logged.credits):
            ledger_credits = "none" if row["credits"] is None else f"{row['credits']:,.0f}"
            differences.append(
                f"  {job_id}  generation {generation_id}: the ledger records {ledger_credits} credits, "
                f"the logs {logged.credits or 0:,.0f}"
            )
    out.differences = len(differences)
    billed = sum(row.credits or 0 for row in found.values())
    recorded = sum(row["credits"] or 0 for row in jobs.values())
    out.lines.append(
        f"billing: the logs show {billed:,.0f} credits for this folder's submits, the ledger records "
        f"{recorded:,.0f}; {len(differences)} difference(s)"
    )
    out.lines += differences


def _differs(recorded: float | None, logged: float | None) -> bool:
    return abs((recorded or 0) - (logged or 0)) >= 1


def _windows(start: datetime, end: datetime) -> list[Window]:
    """Windows of at most 92 days from start to end."""
    windows, step = [], timedelta(days=92)
    while start < end:
        windows.append(Window(start, min(end, start + step)))
        start += step
    return windows


def _embedded(run: dict[str, Any]) -> bool:
    """The run was on a service vidpipe started for it (the sandbox), whose logs died with it."""
    try:
        return services.service(run["provider"] or "aimlapi").embedded
    except InputError:  # a provider this vidpipe does not know
        return False


def _may_get_the_key(url: str, service, env_url: str | None) -> bool:
    """A recorded base URL the key may be sent to unasked: this machine, or the service's own
    (as vidpipe knows it, or as AIMLAPI_BASE_URL names it)."""
    if is_loopback_host(urlsplit(url).hostname):
        return True
    return url.rstrip("/") in {(known or "").rstrip("/") for known in (service.base_url, env_url) if known}


def _recorded_base_url(runs: list[dict[str, Any]]) -> str | None:
    for run in reversed(runs):
        args = json.loads(run["command"])["args"] if run.get("command") else []
        if "--base-url" in args[:-1]:
            return args[args.index("--base-url") + 1]
    return None
