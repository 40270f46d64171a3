"""Every error vidpipe raises on purpose, one tree, grouped by what the caller may do next.

VidpipeError                  base: str(error) is one line written for a user
├── InputError                the manifest, a flag or a file is wrong (exit 2)
│   └── ManifestError         many problems at once, one line each
├── AbortError                the whole run must stop now (exit 3)
│   ├── AuthError             401: the API key is missing or refused
│   ├── CreditsError          403: the account is out of credits (or forbidden)
│   ├── BudgetError           the planned or spent credits pass the budget
│   └── EnvironmentRefusedError   the machine refused (folder read-only, disk full, ledger
│       │                         locked, or missing beside results): exit 4
│       └── LedgerDamagedError    the ledger is not a readable vidpipe ledger
├── RequestError              one HTTP exchange failed; the class says if a resend is safe
│   ├── NotSentError          the request never reached the server: resend freely
│   ├── MaybeSentError        sent, then timed out or lost: a paid POST becomes `uncertain`
│   ├── TransientError        429/5xx answer: not accepted, retry later (maybe after retry_after_s)
│   └── RejectedError         4xx answer: the job fails with the API's message, never retried
│       └── GenerationLostError   404 on a poll: the generation id is unknown to the service
├── DownloadError             the video could not be fetched or is not a whole MP4
│   └── ExpiredUrlError       the CDN refused the signed URL (401/403/404): poll for a fresh one
└── StoreError                the output store (output.dir as a URL) refused an upload or a listing
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED_JOBS = 1
EXIT_INPUT = 2
EXIT_ABORTED = 3
EXIT_ENVIRONMENT = 4
EXIT_INTERRUPTED = 130


class VidpipeError(Exception):
    """Base of every error vidpipe means to show a user."""

    exit_code = EXIT_ABORTED


class InputError(VidpipeError):
    """The input is wrong: a manifest, a flag, a file."""

    exit_code = EXIT_INPUT


def one_line(text: str) -> str:
    """`text` with line breaks and other unprintable characters shown as escapes: one line, always."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the input, located as precisely as we know it."""

    where: str  # "manifests/a.yaml:12" or "prompts.csv:7"
    field: str  # "jobs[1].ratio", "" for the whole file
    message: str

    def __str__(self) -> str:
        if self.field:
            return one_line(f"{self.where}: {self.field}: {self.message}")
        return one_line(f"{self.where}: {self.message}")


class ManifestError(InputError):
    """Every problem found in a manifest, reported together."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems), key=_problem_order)
        count = len(self.problems)
        head = str(self.problems[0]) if self.problems else "invalid manifest"
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(head + more)


def _problem_order(problem: Problem) -> tuple:
    file, _, line = problem.where.rpartition(":")
    if line.isdigit():
        return (file, int(line), problem.field, problem.message)
    return (problem.where, 0, problem.field, problem.message)


class AbortError(VidpipeError):
    """The run must stop: continuing would waste money or cannot succeed."""

    exit_code = EXIT_ABORTED


class AuthError(AbortError):
    """The API refused the key (401)."""


class CreditsError(AbortError):
    """The API says the account has no credits left, or forbids the request (403)."""


class EndpointError(AbortError):
    """The API does not know the submit path: every job would fail the same way."""


class BudgetError(AbortError):
    """Going on would spend more credits than the budget allows."""


class EnvironmentRefusedError(AbortError):
    """The local machine refused what the run needs (a folder not writable, a full disk, a ledger
    locked by another process, damaged, or missing beside results): not a bug of vidpipe, and
    not the service's doing. Raised mid-run it stops the run like any abort."""

    exit_code = EXIT_ENVIRONMENT


class LedgerDamagedError(EnvironmentRefusedError):
    """The ledger file is there but is not a readable vidpipe ledger (garbage, cut short)."""


def refused(path: object, error: OSError, advice: str) -> EnvironmentRefusedError:
    """An OSError on `path`, as the one line a user reads: the path, what the system said, what to do."""
    reason = error.strerror or type(error).__name__
    return EnvironmentRefusedError(one_line(f"{path}: {reason}; {advice}"))


class RequestError(VidpipeError):
    """One HTTP exchange with the API failed."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class NotSentError(RequestError):
    """The connection failed before the request was sent: resending cannot pay twice."""


class StoppedError(NotSentError):
    """Submitting was stopped (abort, Ctrl-C) before this POST was sent (again)."""


class MaybeSentError(RequestError):
    """The request was sent and its answer was lost: the server may have acted on it."""


class TransientError(RequestError):
    """The server answered that it did not take the request now (429, 5xx)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after_s: float | None = None):
        super().__init__(message, status=status)
        self.retry_after_s = retry_after_s


class RejectedError(RequestError):
    """The server refused the request for good (4xx); resending the same request cannot help."""


class GenerationLostError(RejectedError):
    """The service does not know this generation id (404 on a poll)."""


class DownloadError(VidpipeError):
    """The video could not be downloaded whole."""


class ExpiredUrlError(DownloadError):
    """The signed video URL was refused; a fresh poll gives a new one."""


class StoreError(VidpipeError):
    """The object store named by output.dir failed an operation (upload, listing, download)."""
