"""The `run`, `output` and `sandbox` sections of a manifest as typed values.

Defaults come from the schema's `default` keywords, so the schema stays their one source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..services import DEFAULT_KEY_ENV
from .schema import default_of

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _defaults(section: str, cls: type) -> dict[str, Any]:
    return {f.name: default_of(section, f.name) for f in fields(cls) if f.name != "extra"}


@dataclass(frozen=True)
class Account:
    """One API key's limits; `key_env` names the environment variable holding the key."""

    key_env: str
    concurrency: int
    requests_per_minute: int | None  # a hard cap; None: learned from the service (rate.py)

    @property
    def name(self) -> str:
        return self.key_env


@dataclass(frozen=True)
class RunSettings:
    concurrency: int
    requests_per_minute: int | None
    retries: int
    poll_interval: float
    poll_max_interval: float
    timeout: float
    budget: int | None
    prompt_limit: int
    endpoint: str
    resubmit_failed: int
    max_failures: int | None
    adapt: str  # "off": a value the job's model does not take is an error; "nearest": see contracts.py
    settle_grace: float = 900.0  # the schema's default is the one used (see _defaults)
    accounts: tuple[dict[str, Any], ...] | None = None  # as written; see account_list

    @classmethod
    def from_section(cls, section: dict[str, Any] | None) -> RunSettings:
        values = {**_defaults("run", cls), **(section or {})}
        values["accounts"] = tuple(values["accounts"] or ()) or None
        return cls(**values)

    def account_list(self) -> tuple[Account, ...]:
        """The accounts to run on: run.accounts (their limits default to run's), or AIMLAPI_KEY alone."""
        return tuple(
            Account(
                item["key_env"],
                item.get("concurrency", self.concurrency),
                item.get("requests_per_minute", self.requests_per_minute),
            )
            for item in self.accounts or ({"key_env": DEFAULT_KEY_ENV},)
        )


@dataclass(frozen=True)
class OutputSettings:
    dir: str | None
    formats: tuple[str, ...]
    filename: str
    dataset: bool
    ledger_dir: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_section(cls, section: dict[str, Any] | None) -> OutputSettings:
        values = {**_defaults("output", cls), **(section or {})}
        values["formats"] = tuple(values["formats"])
        values["storage_options"] = dict(values.get("storage_options") or {})
        return cls(**values)


@dataclass(frozen=True)
class SandboxSettings:
    gen_time: float
    concurrency: int
    faults: dict[str, Any] = field(default_factory=dict)
    models: dict[str, Any] | None = None  # None: the sandbox's own deprecation feed

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


def output_target(settings: Settings, override: Path | str | None = None) -> Path | str:
    """Where a run's outputs go: the flag, else output.dir, else outputs/<name>. A URL
    (s3://bucket/prefix, any fsspec URL) stays a string."""
    chosen = override if override is not None else settings.output.dir
    if is_url(chosen):
        return str(chosen).rstrip("/")
    return Path(chosen or Path("outputs") / settings.name)


def output_folder(
    settings: Settings, override: Path | str | None = None, ledger_dir: Path | str | None = None
) -> Path:
    """The run's local folder, which holds its ledger: the output folder itself, or for a URL
    target the work folder (the flag, else output.ledger_dir, else outputs/<name>)."""
    target = output_target(settings, override)
    if isinstance(target, Path):
        return target
    return Path(ledger_dir or settings.output.ledger_dir or Path("outputs") / settings.name)


def is_url(location: object) -> bool:
    """True for `scheme://...` (s3://, memory://, file://...); False for a plain path."""
    return isinstance(location, str) and bool(_URL.match(location))
