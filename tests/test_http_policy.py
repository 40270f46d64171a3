"""Retry waits, Retry-After, error classes, the lost-id streak: fake clocks, no I/O (the rate: tests/unit/test_rate.py)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import aiohttp
import pytest

from pipeline import errors
from pipeline.net.http import RetryPolicy, parse_retry_after


def test_retry_waits_are_jittered_capped_and_honour_retry_after():
    policy = RetryPolicy(base_s=0.5, cap_s=4, max_wait_s=60)
    rng = random.Random(1)
    waits = [policy.wait(attempt, None, rng) for attempt in range(1, 10) for _ in range(50)]
    assert min(waits) >= 0 and max(waits) <= 4
    assert policy.wait(3, 7.5, rng) == 7.5
    assert policy.wait(3, 500, rng) == 60
    assert 0 < policy.wait(3, 0.0, random.Random(2)) == policy.wait(3, None, random.Random(2))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0.5", 0.5), ("soon", None), ("", None)]
    + [(unusable, None) for unusable in ("0", "0.0", "-2", "-0.5", "nan", "inf", "-inf", "1e999")],
)
def test_retry_after_seconds_and_values_that_give_no_usable_wait(value, expected):
    assert parse_retry_after({"Retry-After": value}) == expected


def test_retry_after_as_an_http_date():
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    assert parse_retry_after({"Retry-After": format_datetime(when, usegmt=True)}) == pytest.approx(30, abs=2)
    past = datetime.now(timezone.utc) - timedelta(seconds=30)
    assert parse_retry_after({"Retry-After": format_datetime(past, usegmt=True)}) is None
    assert parse_retry_after({}) is None


def test_error_classes_say_whether_a_resend_is_safe():
    assert issubclass(errors.NotSentError, errors.RequestError)
    assert issubclass(errors.GenerationLostError, errors.RejectedError)
    assert issubclass(errors.AuthError, errors.AbortError) and errors.AuthError.exit_code == 3
    assert errors.ManifestError([]).exit_code == 2


def test_every_aiohttp_client_error_is_caught_by_the_translation():
    """http._send catches ClientError and TimeoutError; connect failures are a subset of them."""
    assert issubclass(aiohttp.ClientConnectorError, aiohttp.ClientError)
    assert issubclass(aiohttp.ConnectionTimeoutError, TimeoutError)
    exported = [getattr(aiohttp, name) for name in aiohttp.client_exceptions.__all__]
    for kind in exported:
        # WebSocket errors cannot come out of a plain request, which is all vidpipe sends.
        if isinstance(kind, type) and issubclass(kind, BaseException) and not kind.__name__.startswith("WS"):
            assert issubclass(kind, (aiohttp.ClientError, TimeoutError)), kind


def test_a_generation_id_is_given_up_only_after_a_long_streak_of_bad_answers():
    """Five bad answers in a row spanning a minute (four poll_max_intervals of 15 s): not one 404."""
    from pipeline.run.polling import BadAnswers

    streak = BadAnswers(span_s=60)
    assert [streak.bad("404", now) for now in (0, 1, 3, 7)] == [None] * 4
    assert streak.bad("404", 15) is None  # five answers, but within 15 s
    lost = streak.bad("404", 60)
    assert lost is not None and lost.message == "404 (6 bad answers in a row over 60 s)"

    streak = BadAnswers(span_s=60)
    for now in (0, 20, 40):
        streak.bad("404", now)
    streak.answered()  # an honest answer in between: the count starts again
    assert [streak.bad("404", now) for now in (61, 62, 63, 64)] == [None] * 4
    assert streak.bad("404", 121) is not None  # five since the honest answer, over 60 s
