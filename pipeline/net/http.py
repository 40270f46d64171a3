"""Talking HTTP to the API: the aiohttp session, error translation and retries (the rate: rate.py).

Every aiohttp exception is translated here, once, into the error tree of errors.py, by what a
resend would risk:

    ClientConnectorError, ConnectionTimeoutError    -> NotSentError    (never reached the server)
    any other ClientError, read timeout              -> MaybeSentError  (sent; outcome unknown)
    2xx                                              -> the JSON body
    401 -> AuthError; 403 -> CreditsError            (stop the run)
    502, 504 to a paid POST, when it can be settled  -> MaybeSentError  (a gateway's "maybe processed")
    429, 5xx                                         -> TransientError  (not accepted; retry later)
    other 4xx                                        -> RejectedError   (404 on a poll: GenerationLostError)

Retries: GETs retry on every transient class; a POST is a paid action and retries only when the
server said it did not take it (TransientError) or the request never left (NotSentError). A
POST that may have been sent raises MaybeSentError to the scheduler, which marks the job
`uncertain` instead of paying for it twice.

Everything the server sends (bodies, error pages, Location headers, aiohttp's reasons) passes
through `Untrusted` (untrusted.py) before it is parsed further, stored or shown: no API key in
it, and nothing a terminal would act on. Every body is read at a bounded pace (pace.py), and a
poll's whole exchange, retries included, can be given a deadline (the job's run.timeout).

Paid POSTs go over a connection of their own (never a pooled one): a pooled connection the
server has silently closed fails only after the request is written, which would make a request
that never arrived look `uncertain`.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar

import aiohttp

from ..aio import sleep_unless
from ..errors import (
    AuthError,
    CreditsError,
    EndpointError,
    GenerationLostError,
    MaybeSentError,
    NotSentError,
    RejectedError,
    RequestError,
    StoppedError,
    TransientError,
    VidpipeError,
)
from .pace import API_PACE, Pace
from .providers.base import Generation, HttpRequest, Provider, Submitted
from .rate import Limiter, RequestRate
from .untrusted import Untrusted

T = TypeVar("T")
USER_AGENT = "vidpipe/0.1"
MAX_ERROR_BODY = 64 * 1024
MAX_JSON_BODY = 8 * 1024 * 1024
# Ids seen are UUIDs, nanoids and `<uuid>:<model path>` (under 100 characters): a longer one is
# not stored (it would be copied into every table and every poll).
MAX_GENERATION_ID = 256
# A gateway's 502 or 504 may come after the service took the request: for a paid POST it is the
# classic "maybe processed", settled from the usage logs (run/settle.py), never resent blindly,
# when settling is possible (ApiClient.settling). Where it is not (the Ray engine, a key whose
# logs answer 401/403/404), the contract's paid-POST rule holds: a POST answered with a 5xx was
# not accepted and may be retried; so 502 and 504 are transient there as every other 5xx (the
# contract's 504 "Generation timeout" is an answer, not a lost connection). Marking them
# uncertain instead would stop every job a flaky gateway touches, with nothing to settle it.
GATEWAY_MAYBE = frozenset({502, 504})


class SubmitHooks(Protocol):
    """What the scheduler learns about each attempt of a paid POST, as it happens."""

    # The request is about to leave (awaited before it does); returns the attempt's client
    # request id, sent as X-Client-Request-Id (None: the one given to submit, if any).
    async def sending(self) -> str | None: ...

    def not_taken(self) -> None: ...  # the service said no (or the connection was refused)


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed per phase of one API request, so no call waits forever."""

    connect: float = 15.0
    read: float = 60.0
    total: float = 120.0

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.total, sock_connect=self.connect, sock_read=self.read)


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter: wait = uniform(0, min(cap, base * 2**attempt)).

    A server's Retry-After, when it gives a wait (more than 0 s), replaces the computed one
    (capped at `max_wait_s`); `attempt` counts the failures in a row, 429s included.
    Retries stop after `attempts` tries or `max_elapsed_s` seconds, whichever comes first.
    """

    attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0
    max_elapsed_s: float = 300.0
    max_wait_s: float = 120.0

    def wait(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
        if retry_after_s is not None and retry_after_s > 0:  # 0 or less says nothing usable
            return min(retry_after_s, self.max_wait_s)
        return rng.uniform(0, min(self.cap_s, self.base_s * 2**attempt))


@dataclass
class Counters:
    requests: int = 0
    submits: int = 0
    polls: int = 0
    retries: int = 0
    throttled: int = 0


class ApiClient:
    """One run's connection to the API: auth, limits, retries and error translation."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        provider: Provider,
        *,
        requests_per_minute: float | None,
        retry: RetryPolicy,
        timeouts: Timeouts = Timeouts(),
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        limiter: Limiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        pace: Pace = API_PACE,
    ):
        self.base_url = base_url.rstrip("/")
        self.provider = provider
        self.retry = retry
        self.timeouts = timeouts
        self.limiter = limiter or RequestRate(requests_per_minute)
        self.counters = Counters()
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._clock = clock
        self.pace = pace
        # What servers send, cleaned of the key and of terminal escapes (untrusted.py).
        self.untrusted = Untrusted(api_key)
        # The key goes in per-request headers of this client only: the CDN session never sees it.
        self._auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._submits_stopped = asyncio.Event()
        # Whether a maybe-sent submit can be settled from the usage logs now (set by whoever
        # settles: session.py); until then a gateway's 502/504 is transient (GATEWAY_MAYBE).
        self.settling: Callable[[], bool] = lambda: False
        self._session: aiohttp.ClientSession | None = None
        self._submit_session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        timeout = self.timeouts.client_timeout()
        headers = {"User-Agent": USER_AGENT}
        self._session = aiohttp.ClientSession(
            timeout=timeout, headers=headers, connector=aiohttp.TCPConnector(limit=100)
        )
        self._submit_session = aiohttp.ClientSession(
            timeout=timeout, headers=headers, connector=aiohttp.TCPConnector(force_close=True, limit=100)
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for session in (self._session, self._submit_session):
            if session is not None:
                await session.close()

    def stop_submitting(self) -> None:
        """No POST leaves from now on; a submit waiting for its turn or a retry gives up at once."""
        self._submits_stopped.set()

    async def submit(
        self,
        request: Mapping[str, Any],
        client_request_id: str | None = None,
        hooks: SubmitHooks | None = None,
    ) -> Submitted:
        """POST one generation.

        `hooks.sending()` is awaited just before each attempt leaves (after any wait), so the caller
        can record its intent at the last moment, and make it durable; `hooks.not_taken()` runs
        when the service answered that it did not take the attempt. Raises StoppedError when
        submitting was stopped before a POST left, MaybeSentError when a generation may exist
        without our knowing its id.
        """
        http_request = self.provider.submit_request(request)
        headers = {"X-Client-Request-Id": client_request_id} if client_request_id else {}
        body, response_headers = await self._with_retries(
            lambda: self._send(http_request, paid=True, extra_headers=headers, hooks=hooks), paid=True
        )
        self.counters.submits += 1
        try:
            submitted = self.provider.read_submit(body, response_headers)
            self._check_generation_id(submitted.generation_id)
        except RejectedError as error:
            # The service took the POST (2xx) but we cannot tell which generation it made.
            raise MaybeSentError(f"the submit was accepted, but {error}") from None
        return submitted

    def _check_generation_id(self, generation_id: str) -> None:
        """Refuse an id that cannot be stored as it is: too long, or hiding the key."""
        problem = self.generation_id_problem(generation_id)
        if problem:
            raise RejectedError(problem)

    def generation_id_problem(self, generation_id: str) -> str | None:
        """Why `generation_id` (from a submit's answer or the usage logs) cannot be stored and
        polled as it is (too long, hiding the key, not printable on one line), or None."""
        if len(generation_id) > MAX_GENERATION_ID:
            return (
                f"its generation id is {len(generation_id):,} characters long; "
                f"at most {MAX_GENERATION_ID} are accepted, so it was not stored"
            )
        if self.untrusted.carries_key(generation_id):
            return "the service put the API key into the generation id; it was not stored"
        if not generation_id.isprintable():
            return "its generation id holds unprintable characters; it was not stored"
        return None

    async def get(self, path: str, params: list[tuple[str, str]]) -> tuple[Any, Mapping[str, str]]:
        """One GET of a service endpoint (the usage logs), not retried: its caller paces and
        retries it. Raises what `_send` does (401 AuthError, 404 RejectedError, 429 TransientError)."""
        return await self._send(HttpRequest("GET", path, params=params), paid=False)

    async def poll(
        self, generation_id: str, deadline: float | None = None, model: str | None = None
    ) -> Generation:
        """One poll (on the path `model`'s jobs are sent on), retried while transient. `deadline`
        (on this client's clock) ends the whole exchange, retries included, with a TransientError:
        a slow server cannot hold a job past its run.timeout."""
        http_request = self.provider.poll_request(generation_id, model)
        try:
            body, headers = await self._with_retries(
                lambda: self._send(http_request, paid=False, deadline=deadline), paid=False, deadline=deadline
            )
        except RejectedError as error:
            if error.status == 404:
                raise GenerationLostError(
                    f"the service does not know generation {generation_id} (404): {error}", status=404
                ) from None
            raise
        self.counters.polls += 1
        generation = self.provider.read_poll(body, headers)
        if generation.video_url and self.untrusted.carries_key(generation.video_url):
            raise RejectedError("the service put the API key into the video URL; refusing to use it")
        return generation

    async def _with_retries(
        self, send: Callable[[], Awaitable[T]], *, paid: bool, deadline: float | None = None
    ) -> T:
        """Retry transient failures. 429s are limited by time only (they mean "later", however
        often); other failures also by attempts. The backoff grows with every failure in a row,
        429s included. A paid POST that may have arrived is not retried. No retry starts that
        would end past `deadline`."""
        started = self._clock()
        attempt = failures = 0
        while True:
            try:
                answer = await send()
            except StoppedError:
                raise
            except (TransientError, NotSentError, MaybeSentError) as error:
                if paid and isinstance(error, MaybeSentError):
                    raise
                throttled = isinstance(error, TransientError) and error.status == 429
                failures += 1
                if not throttled:
                    attempt += 1
                retry_after = error.retry_after_s if isinstance(error, TransientError) else None
                wait = self.retry.wait(failures, retry_after, self._rng)
                now = self._clock()
                out_of_time = now - started + wait > self.retry.max_elapsed_s
                past_deadline = deadline is not None and now + wait >= deadline
                if attempt >= self.retry.attempts or out_of_time or past_deadline:
                    raise
                if throttled:
                    self.counters.throttled += 1
                    self.limiter.hold(wait)  # everyone slows down, not just this request
                self.counters.retries += 1
                await self._wait(wait, paid)
            else:
                self.limiter.succeeded()
                return answer

    async def _wait(self, seconds: float, paid: bool) -> None:
        """Sleep; a paid request's sleep ends early (with StoppedError) when submitting stops."""
        if not paid:
            await self._sleep(seconds)
            return
        if await sleep_unless(self._submits_stopped, seconds):
            raise StoppedError("submitting stopped; the job was not sent again")

    async def _send(
        self,
        request: HttpRequest,
        *,
        paid: bool,
        extra_headers: Mapping[str, str] | None = None,
        hooks: SubmitHooks | None = None,
        deadline: float | None = None,
    ) -> tuple[Any, Mapping[str, str]]:
        session = self._submit_session if paid else self._session
        assert session is not None, "use ApiClient inside 'async with'"
        await self._wait(await self.limiter.turn(), paid)
        headers = {**self._auth, **(extra_headers or {})}
        if hooks:
            client_request_id = await hooks.sending()
            if client_request_id:
                headers["X-Client-Request-Id"] = client_request_id
            if paid and self._submits_stopped.is_set():  # stopped while the intent went to disk
                hooks.not_taken()
                raise StoppedError("submitting stopped; the job was not sent")
        self.counters.requests += 1
        url = self.base_url + request.path
        try:
            # Redirects are not followed: the API never sends one, and following it could carry
            # the key to another host.
            async with session.request(
                request.method,
                url,
                params=request.params or None,
                json=request.json,
                headers=headers,
                allow_redirects=False,
            ) as response:
                # The body's pace counts from its headers: waiting for them is bounded by the
                # read timeout, and a slow service (a submit answered after 30 s) is no fault.
                started = self._clock()
                if 200 <= response.status < 300:
                    try:
                        body = await self._read_json(response, started, deadline)
                    except BadAnswer as problem:
                        if paid and response.headers.get("x-inference-id"):
                            return None, response.headers  # the header names the generation
                        # A 2xx to a paid POST means it was taken: a generation may exist.
                        error_type = MaybeSentError if paid else TransientError
                        raise error_type(
                            f"HTTP {response.status}, but {problem}", status=response.status
                        ) from None
                    return body, response.headers
                maybe_taken = paid and response.status in GATEWAY_MAYBE and self.settling()
                if hooks and not maybe_taken:
                    hooks.not_taken()
                text = await self._read_text(response, started, deadline)
                if 300 <= response.status < 400:
                    target = self.untrusted.text(response.headers.get("Location", "?"))
                    raise RejectedError(
                        f"HTTP {response.status}: the API redirected to {target[:80]}; not followed",
                        status=response.status,
                    )
                raise self._status_error(response.status, response.headers, text, paid)
        except RequestError:
            raise
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            if hooks:
                hooks.not_taken()
            raise NotSentError(f"cannot connect to {self.base_url}: {self._reason(error)}") from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise MaybeSentError(
                f"the connection to {self.base_url} failed after the request was sent: {self._reason(error)}"
            ) from None

    def _reason(self, error: BaseException) -> str:
        """aiohttp's account of a failure; it may quote what the server sent (a bad status line)."""
        lines = str(error).splitlines()
        return self.untrusted.text(lines[0] if lines else type(error).__name__)[:200]

    async def _read_json(
        self, response: aiohttp.ClientResponse, started: float, deadline: float | None
    ) -> Any:
        """A 2xx answer's JSON, every string in it cleaned."""
        raw = await self._read_body(response, MAX_JSON_BODY, started, deadline)
        if raw is None:
            raise BadAnswer(f"the answer is larger than {MAX_JSON_BODY:,} bytes; refusing to read it")
        text = raw.decode("utf-8", errors="replace")
        body = _json_or_none(text)
        if body is None and text.strip():
            raise BadAnswer(f"the answer is not JSON: {self.untrusted.text(text)[:80]!r}")
        return self.untrusted.tree(body)

    async def _read_text(
        self, response: aiohttp.ClientResponse, started: float, deadline: float | None
    ) -> str:
        """The start of an error answer (enough for its message); a slow one is cut short."""
        try:
            raw = await self._read_body(response, MAX_ERROR_BODY, started, deadline, keep_start=True)
        except BadAnswer:
            raw = b""
        return (raw or b"").decode("utf-8", errors="replace")

    async def _read_body(
        self,
        response: aiohttp.ClientResponse,
        limit: int,
        started: float,
        deadline: float | None,
        *,
        keep_start: bool = False,
    ) -> bytes | None:
        """The body, at the client's pace and by `deadline`; None when it is longer than `limit`
        bytes (or its first `limit` bytes, with `keep_start`). Reading stops at the first byte
        past the limit, and raises BadAnswer when the body comes too slowly or too late."""
        if response.content_length is not None and response.content_length > limit and not keep_start:
            return None
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > limit:
                return b"".join(chunks)[:limit] if keep_start else None
            chunks.append(chunk)
            if response.content.at_eof():
                break  # whole: however long it took, a complete answer is used (a paid id above all)
            now = self._clock()
            slow = self.pace.problem(size, now - started)
            if slow:
                raise BadAnswer(f"the answer came {slow}")
            if deadline is not None and now > deadline and not response.content.at_eof():
                raise BadAnswer("the answer was still arriving at the job's run.timeout")
        return b"".join(chunks)

    def _status_error(self, status: int, headers: Mapping[str, str], text: str, paid: bool) -> VidpipeError:
        body = self.untrusted.tree(_json_or_none(text))
        message = self.provider.error_message(body, self.untrusted.text(text))
        described = f"HTTP {status}: {message}"
        if status == 401:
            return AuthError(f"the API refused the key (HTTP 401, check AIMLAPI_KEY): {message}")
        if status == 403:
            return CreditsError(f"the API refused the request (HTTP 403, usually no credits left): {message}")
        if status == 404 and paid:
            return EndpointError(
                f"the API answered 404 to a submit at {self.base_url}: "
                f"check --base-url and --endpoint ({message})"
            )
        if paid and status in GATEWAY_MAYBE and self.settling():
            return MaybeSentError(f"{described} (a gateway may have passed the submit on)", status=status)
        if status == 429 or status >= 500:
            return TransientError(described, status=status, retry_after_s=parse_retry_after(headers))
        return RejectedError(described, status=status)


class BadAnswer(Exception):
    """A 2xx answer whose body cannot be used."""


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (a number, or an HTTP date); None when it gives no usable
    wait: absent, garbage, not finite, zero, negative, or a date already past. Retrying at once
    on `Retry-After: 0` would turn the backoff into a stream of requests."""
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value)
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return None
    return seconds


def _seconds_until(http_date: str) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT; a date without a zone means GMT too
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp() - time.time()
