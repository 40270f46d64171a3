"""The `run`, `output` and `sandbox` sections of a manifest as typed values.

Defaults come from the schema's `default` keywords, so the schema stays their one source.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .schema import default_of


def _defaults(section: str, cls: type) -> dict[str, Any]:
    return {f.name: default_of(section, f.name) for f in fields(cls) if f.name != "extra"}


@dataclass(frozen=True)
class RunSettings:
    concurrency: int
    requests_per_minute: int
    retries: int
    poll_interval: float
    poll_max_interval: float
    timeout: float
    budget: int | None
    prompt_limit: int
    endpoint: str
    resubmit_failed: int
    max_failures: int | None

    @classmethod
    def from_section(cls, section: dict[str, Any] | None) -> RunSettings:
        return cls(**{**_defaults("run", cls), **(section or {})})


@dataclass(frozen=True)
class OutputSettings:
    dir: str | None
    formats: tuple[str, ...]
    filename: str
    dataset: bool

    @classmethod
    def from_section(cls, section: dict[str, Any] | None) -> OutputSettings:
        values = {**_defaults("output", cls), **(section or {})}
        values["formats"] = tuple(values["formats"])
        return cls(**values)


@dataclass(frozen=True)
class SandboxSettings:
    gen_time: float
    concurrency: int
    faults: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_section(cls, section: dict[str, Any] | None) -> SandboxSettings:
        values = {**_defaults("sandbox", cls), **(section or {})}
        values["faults"] = dict(values.get("faults") or {})
        return cls(**values)


@dataclass(frozen=True)
class Settings:
    name: str
    provider: str
    run: RunSettings
    output: OutputSettings
    sandbox: SandboxSettings

    def with_overrides(self, **run_overrides: Any) -> Settings:
        """A copy with some run settings replaced (command-line flags win over the manifest)."""
        chosen = {key: value for key, value in run_overrides.items() if value is not None}
        return replace(self, run=replace(self.run, **chosen))


def output_folder(settings: Settings, override: Path | None = None) -> Path:
    """Where a run's outputs go: the flag, else output.dir, else outputs/<name>."""
    return override or Path(settings.output.dir or Path("outputs") / settings.name)
