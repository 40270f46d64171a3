"""Fixtures of the sandbox tests: a fresh sandbox in a thread, and a requests session.

Every test talks HTTP to a real server on a free loopback port (running_sandbox), with
gen_time 0 or close to it, so the whole suite stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import requests
from sandbox_helpers import Client

from pipeline.sandbox import SandboxConfig, running_sandbox


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        yield opened


@pytest.fixture
def make_sandbox(session: requests.Session) -> Iterator[Callable[..., Client]]:
    """make_sandbox(**settings) -> Client of a fresh sandbox (gen_time 0 unless given)."""
    with ExitStack() as stack:

        def make(**settings: Any) -> Client:
            settings.setdefault("gen_time", 0.0)
            handle = stack.enter_context(running_sandbox(SandboxConfig(**settings)))
            return Client(handle, session)

        yield make


@pytest.fixture
def sandbox(make_sandbox: Callable[..., Client]) -> Client:
    return make_sandbox()
