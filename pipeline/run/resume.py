"""The exact command that resumes a run's output folder with the same service.

A stopped run, `vidpipe status` and the `--retry-uncertain` hint all print it. It repeats every
flag that chose the folder, the ledger, the service, the engine or how much may be spent, so
following it never resumes a different folder or pays for jobs the first command left out.
It leaves out the flags that only change what is shown, and `--fresh` (which would set the
ledger aside again) and `--retry-uncertain` (a decision the user makes on its own).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..read.manifest import display_path

# RunRequest attribute -> the flag that sets it, in the order `run --help` lists them.
RESUMING_FLAGS = (
    ("provider", "--provider"),
    ("base_url", "--base-url"),
    ("endpoint", "--endpoint"),
    ("out", "--out"),
    ("ledger_dir", "--ledger-dir"),
    ("concurrency", "--concurrency"),
    ("budget", "--budget"),
    ("limit", "--limit"),
    ("max_failures", "--max-failures"),
    ("engine", "--engine"),
    ("ray_address", "--ray-address"),
    ("shards", "--shards"),
)
DEFAULT_ENGINE = "local"


@dataclass(frozen=True)
class ResumeCommand:
    """`vidpipe run` arguments and the folder they were given in (paths in them are relative to it)."""

    args: tuple[str, ...]
    cwd: str

    def shown(self, *extra: str, cwd: str | None = None) -> str:
        """The command, shell-quoted; prefixed with `cd` when run from another folder."""
        line = shlex.join(["vidpipe", "run", *self.args, *extra])
        here = os.path.realpath(cwd if cwd is not None else os.getcwd())
        if os.path.realpath(self.cwd) == here:
            return line
        return f"cd {shlex.quote(self.cwd)} && {line}"

    def as_record(self) -> dict[str, Any]:
        return {"args": list(self.args), "cwd": self.cwd}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> ResumeCommand:
        return cls(tuple(str(arg) for arg in record["args"]), str(record["cwd"]))


def resume_command(request: Any, base_url: str | None) -> ResumeCommand:
    """The command for `request` (a RunRequest); `base_url` is the one the run used, recorded
    when it did not come from the flag (say from $AIMLAPI_BASE_URL), so a new shell reaches the
    same service."""
    args: list[str] = [display_path(request.manifest)]
    chosen = {name: getattr(request, name) for name, _flag in RESUMING_FLAGS}
    if base_url and chosen["base_url"] is None:
        chosen["base_url"] = base_url
    if chosen["engine"] == DEFAULT_ENGINE:
        chosen["engine"] = None
    for name, flag in RESUMING_FLAGS:
        value = chosen[name]
        if value is not None:
            args += [flag, _text(value)]
    return ResumeCommand(tuple(args), os.getcwd())


def legacy_command(manifest: str, cwd: str | None = None) -> ResumeCommand:
    """For a ledger written before commands were recorded: the manifest alone."""
    return ResumeCommand((manifest,), cwd or os.getcwd())


def _text(value: object) -> str:
    return display_path(value) if isinstance(value, Path) else str(value)
