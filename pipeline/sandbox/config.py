"""SandboxConfig: every setting of the sandbox, with defaults that make a quick, honest demo.

The response variants exist because the real service has been seen answering in several
forms (see /work/shared/api-contract.md); each setting picks one form so a client can be
tested against all of them. docs/sandbox.md lists every setting with its meaning.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .contract import CREDITS_PER_SECOND, PROMPT_LIMITS
from .faults import FaultConfig, suggest
from .models_api import ModelsConfig

GEN_TIME_DISTRIBUTIONS = ("fixed", "uniform", "exponential")
ID_FORMS = ("uuid", "uuid_model", "numeric", "nanoid", "uuid_nonhex", "mixed")
ID_KEYS = ("id", "generation_id")
VIDEO_SHAPES = ("auto", "list", "object", "object_legacy", "list_objects", "string")
ERROR_SHAPES = ("auto", "object", "string", "detail")
PENDING_VIDEO = ("null", "absent", "empty_list")
QUEUED_STATUSES = ("queued", "waiting", "pending")
RUNNING_STATUSES = ("generating", "processing", "active", "pending", "waiting")
ERROR_STATUSES = ("error", "failed")
USAGE_KEYS = ("credits_used", "tokens_used")
UNKNOWN_ID_ANSWERS = ("404", "unknown")
RENDER_MODES = ("full", "shared")


@dataclass(frozen=True)
class SandboxConfig:
    """How the sandbox behaves. Every field has a default; see docs/sandbox.md."""

    # The queue
    gen_time: float = 3.0  # mean seconds from start of generating to final status
    gen_time_dist: str = "uniform"  # fixed | uniform (mean ± jitter*mean) | exponential
    gen_time_jitter: float = 0.3
    concurrency: int = 8  # account limit: generating at once; the rest stay queued
    seed: int = 0  # ids, seeds of requests without one, generation times

    # Auth and validation
    require_key: str | None = None  # None: any non-empty Bearer key is accepted
    strict: bool = False  # unknown body fields answer 400 (default: ignored, counted)
    prompt_limit: int = 512

    # Response variants
    submit_status: int = 201
    id_key: str = "id"
    id_form: str = "uuid"
    video_shape: str = "auto"  # auto: legacy path -> list of URLs, universal -> object
    error_shape: str = "auto"  # auto: legacy path -> string, universal -> object
    pending_video: str = "null"  # `video` before completion: null, absent or []
    queued_status: str = "queued"
    running_status: str = "generating"
    error_status: str = "error"
    usage_key: str = "credits_used"
    usage_on_submit: bool = False  # the submit answer carries meta.usage (credits 0)
    unknown_id: str = "404"  # 404 (NestJS body) or 200 with status "unknown"
    status_code_as_string: bool = False  # NestJS bodies show statusCode as "429"
    message_as_list: bool = False  # NestJS bodies show message as a list of strings
    credits_per_second: int = CREDITS_PER_SECOND

    # The CDN
    url_lifetime: float = 86_400.0  # seconds a signed video URL stays valid
    cdn_host: str | None = None  # host:port in video URLs; None: the host the client used

    # Rendering
    render: str = "full"  # full: one clip per request; shared: one per (ratio, duration)
    render_workers: int = 2
    fps: int = 8
    cache_bytes: int = 256 * 1024 * 1024  # rendered clips kept in memory; the rest spill
    spill_dir: str | None = None  # where spilled clips go; None: a temporary folder

    # Usage logs (GET /v2/logs)
    logs_delay: float = 0.0  # seconds before a request's row shows (the analytics pipeline's lag)
    logs_status: int = 200  # 401, 403 or 404: the logs are not served (a key without them)

    # Restarts
    state_dir: str | None = None  # keep generations in a journal here: a restart still knows them

    faults: FaultConfig = field(default_factory=FaultConfig)
    # The model feeds: which models are deprecated, superseded, withdrawn; routes on or off
    models: ModelsConfig = field(default_factory=ModelsConfig)

    def __post_init__(self) -> None:
        _one_of("gen_time_dist", self.gen_time_dist, GEN_TIME_DISTRIBUTIONS)
        _one_of("id_form", self.id_form, ID_FORMS)
        _one_of("id_key", self.id_key, ID_KEYS)
        _one_of("video_shape", self.video_shape, VIDEO_SHAPES)
        _one_of("error_shape", self.error_shape, ERROR_SHAPES)
        _one_of("pending_video", self.pending_video, PENDING_VIDEO)
        _one_of("queued_status", self.queued_status, QUEUED_STATUSES)
        _one_of("running_status", self.running_status, RUNNING_STATUSES)
        _one_of("error_status", self.error_status, ERROR_STATUSES)
        _one_of("usage_key", self.usage_key, USAGE_KEYS)
        _one_of("unknown_id", self.unknown_id, UNKNOWN_ID_ANSWERS)
        _one_of("render", self.render, RENDER_MODES)
        _one_of("prompt_limit", self.prompt_limit, PROMPT_LIMITS)
        _one_of("submit_status", self.submit_status, (200, 201))
        if self.gen_time < 0 or self.gen_time_jitter < 0:
            raise ValueError("gen_time and gen_time_jitter must be 0 or more")
        if self.concurrency < 1 or self.render_workers < 1 or self.fps < 1:
            raise ValueError("concurrency, render_workers and fps must be 1 or more")
        if self.url_lifetime <= 0:
            raise ValueError("url_lifetime must be more than 0 seconds")
        _one_of("logs_status", self.logs_status, (200, 401, 403, 404))
        if self.logs_delay < 0:
            raise ValueError("logs_delay must be 0 or more seconds")
        if not isinstance(self.faults, FaultConfig):
            raise ValueError("faults must be a FaultConfig (use FaultConfig.from_mapping)")
        if not isinstance(self.models, ModelsConfig):
            raise ValueError("models must be a ModelsConfig (use ModelsConfig.from_mapping)")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, **overrides: Any) -> SandboxConfig:
        """Build from a mapping such as the manifest's `sandbox:` section.

        Raises ValueError with a one-line message naming the bad key, with a suggestion.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        values: dict[str, Any] = {}
        for key, value in dict(data or {}).items():
            if key not in names:
                raise ValueError(f"sandbox: unknown setting '{key}'{suggest(key, names)}")
            if key == "faults":
                value = FaultConfig.from_mapping(value)
            elif key == "models":
                value = ModelsConfig.from_mapping(value)
            values[key] = value
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> SandboxConfig:
        return dataclasses.replace(self, **changes)


def _one_of(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        shown = ", ".join(str(a) for a in allowed)
        raise ValueError(f"{name}: {value!r} is not allowed{suggest(value, allowed)}; expected {shown}")
