"""What every provider produces and reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...states import PollState


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
    """One poll's answer, normalised (`state`: see PollState)."""

    state: PollState
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

    def poll_request(self, generation_id: str, model: str | None = None) -> HttpRequest: ...

    def read_poll(self, body: Any, headers: Mapping[str, str]) -> Generation: ...

    def error_message(self, body: Any, text: str) -> str: ...
