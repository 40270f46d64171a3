"""What every provider produces and reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

RUNNING, COMPLETED, FAILED, LOST = "running", "completed", "failed", "lost"


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # joined to the provider's base URL
    params: Mapping[str, str] = field(default_factory=dict)
    json: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Submitted:
    generation_id: str
    status: str


@dataclass(frozen=True)
class Generation:
    """One poll's answer, normalised.

    `state`: running; completed (billed; `video_url` may still be missing); failed (the service
    says it ended in error: not billed, safe to submit again); lost (the service no longer
    knows the id: it may have run and been billed, so the job must not be resent silently).
    """

    state: str
    status: str  # as the service said it
    video_url: str | None = None
    error_name: str | None = None
    error_message: str | None = None
    credits: float | None = None
    video_bytes: int | None = None


class Provider(Protocol):
    name: str

    def submit_request(self, request: Mapping[str, Any]) -> HttpRequest: ...

    def read_submit(self, body: Any, headers: Mapping[str, str]) -> Submitted: ...

    def poll_request(self, generation_id: str) -> HttpRequest: ...

    def read_poll(self, body: Any, headers: Mapping[str, str]) -> Generation: ...

    def error_message(self, body: Any, text: str) -> str: ...
