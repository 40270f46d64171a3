"""Client request ids: one per submit attempt, sent as `X-Client-Request-Id` and recorded in the
ledger before the POST leaves, so a submit whose answer was lost can be found in the service's
usage logs (settle.py). Pure.

The service keeps 1 to 128 characters of `A-Z a-z 0-9 . _ : -` and silently drops any other
value (the request still runs and is billed, with no correlation back), so every id is made
to fit:

    vp.<folder token>.<job id>.<attempt>

The folder token is drawn once per ledger (its migration): the key's logs hold every request
made with it, and two folders (or a --fresh start) running the same manifest must never claim
each other's rows. A job id with characters outside the alphabet (or a long one) is mapped
and given a digest of the original, so two jobs never share an id; job ids vidpipe makes
(16 hex digits) pass unchanged.
"""

from __future__ import annotations

import hashlib
import re

PREFIX = "vp"
MAX_LENGTH = 128
ALLOWED = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_OUTSIDE = re.compile(r"[^A-Za-z0-9_-]")  # '.' and ':' are kept as separators of ours
_MAX_JOB_PART = 80


def client_request_id(token: str, job_id: str, attempt: int) -> str:
    """The id of submit attempt `attempt` (1, 2, ...) of `job_id` in the folder of `token`."""
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, not {attempt}")
    value = f"{PREFIX}.{_token_part(token)}.{_job_part(job_id)}.{attempt}"
    assert ALLOWED.match(value), value
    return value


def ids_of_job(token: str, job_id: str, attempts: int) -> list[str]:
    """Every id the job's submits so far were sent with (`attempts`: the ledger's `submits`)."""
    return [client_request_id(token, job_id, n) for n in range(1, attempts + 1)]


def _token_part(token: str) -> str:
    cleaned = _OUTSIDE.sub("", token)[:16]
    if not cleaned:
        raise ValueError("the folder's request id token is empty")
    return cleaned


def _job_part(job_id: str) -> str:
    cleaned = _OUTSIDE.sub("_", job_id)
    if cleaned == job_id and 0 < len(job_id) <= _MAX_JOB_PART:
        return job_id
    digest = hashlib.sha256(job_id.encode("utf-8", errors="surrogatepass")).hexdigest()[:12]
    return f"{cleaned[: _MAX_JOB_PART - 14]}-h{digest}"
