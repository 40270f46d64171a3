"""Faults on demand: which request gets which failure, reproducibly.

A fault belongs to a *target*, the place where it happens:

    submit       POST of a generation: 401, 403, 429, 429_retry_after, 500, 502, 502_html, 503,
                 drop_before (connection closed, no generation made),
                 drop_after (generation made and running, connection closed: the "uncertain
                 paid POST"), slow (answer after `slow_seconds`), and three more that take
                the submit (a generation is made and billed) and then: accept_504 (answer a
                gateway's 504), accept_late (answer after `late_seconds`, past a client's
                timeout), accept_no_id (a 2xx whose body has no id: only x-inference-id)
    poll         GET ?generation_id=: 401, 403, 429, 429_retry_after, 500, 502, 502_html, 503,
                 drop, slow
    download     the CDN: truncated (full Content-Length announced, connection closed halfway),
                 short (fewer bytes, consistent headers), expired (the URL handed out by a poll
                 is already expired), slow
    generation   error (the generation ends in `error` with `error_message`)
    video        black, frozen, short, wrong_size, undecodable, no_audio (the generation
                 completes with a clip broken that way: flaws.py; for the client's checks)

Two ways to ask for them, both in one `FaultConfig`:
- probabilities per target and kind (`submit={"429": 0.1}`), drawn from a random generator
  seeded by `seed`, one generator per target, so the n-th request of a target gets the same
  answer in every run with the same seed;
- a script, consumed before any probability: `ScriptedFault("submit", "429_retry_after",
  times=2)` makes the next two submits answer 429 with a Retry-After header.
"""

from __future__ import annotations

import difflib
import random
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

HTTP_KINDS = ("401", "403", "429", "429_retry_after", "500", "502", "502_html", "503")
KINDS: dict[str, tuple[str, ...]] = {
    "submit": (*HTTP_KINDS, "drop_before", "drop_after", "slow", "accept_504", "accept_late", "accept_no_id"),
    "poll": (*HTTP_KINDS, "drop", "slow"),
    "download": ("truncated", "short", "expired", "slow"),
    "generation": ("error",),
    "video": ("black", "frozen", "short", "wrong_size", "undecodable", "no_audio"),
}
TARGETS = tuple(KINDS)
DEFAULT_ERROR_MESSAGE = "Generation failed: the model could not produce a video for this request"


def suggest(word: str, options: Any) -> str:
    """' (did you mean 'x'?)' when `word` looks like one of `options`, else ''."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_kind(target: str, kind: str, where: str) -> None:
    if target not in KINDS:
        raise ValueError(
            f"{where}: unknown fault target '{target}'{suggest(target, TARGETS)}; "
            f"expected one of {', '.join(TARGETS)}"
        )
    if kind not in KINDS[target]:
        raise ValueError(
            f"{where}: unknown {target} fault '{kind}'{suggest(kind, KINDS[target])}; "
            f"expected one of {', '.join(KINDS[target])}"
        )


@dataclass(frozen=True)
class ScriptedFault:
    """`times` requests on `target`, after `skip` unharmed ones, answer with fault `kind`."""

    target: str
    kind: str
    times: int = 1
    skip: int = 0
    retry_after: float | None = None  # overrides FaultConfig.retry_after for this step
    message: str | None = None  # overrides FaultConfig.error_message (generation errors)

    def __post_init__(self) -> None:
        _check_kind(self.target, self.kind, "script")
        if self.times < 1 or self.skip < 0:
            raise ValueError("script: times must be 1 or more and skip 0 or more")


@dataclass(frozen=True)
class Fault:
    """One fault chosen for one request."""

    target: str
    kind: str
    retry_after: float
    message: str
    slow_seconds: float
    late_seconds: float = 90.0

    @property
    def name(self) -> str:
        return f"{self.target}.{self.kind}"


_SCRIPT_KEYS = {f.name for f in fields(ScriptedFault)} | {"on", "fault"}


@dataclass(frozen=True)
class FaultConfig:
    """Which faults to inject. The default injects none."""

    submit: Mapping[str, float] = field(default_factory=dict)
    poll: Mapping[str, float] = field(default_factory=dict)
    download: Mapping[str, float] = field(default_factory=dict)
    generation: Mapping[str, float] = field(default_factory=dict)
    video: Mapping[str, float] = field(default_factory=dict)
    script: tuple[ScriptedFault, ...] = ()
    seed: int = 0
    retry_after: float = 1.0  # seconds sent in Retry-After (rounded up to whole seconds)
    slow_seconds: float = 2.0  # delay of a `slow` answer
    late_seconds: float = 90.0  # delay of an `accept_late` answer: past a client's 60 s read timeout
    error_message: str = DEFAULT_ERROR_MESSAGE

    def __post_init__(self) -> None:
        for target in TARGETS:
            table = {str(k): float(v) for k, v in dict(getattr(self, target)).items()}
            for kind, chance in table.items():
                _check_kind(target, kind, f"faults.{target}")
                if not 0.0 <= chance <= 1.0:
                    raise ValueError(
                        f"faults.{target}.{kind}: {chance} is not allowed; expected a probability from 0 to 1"
                    )
            if sum(table.values()) > 1.0 + 1e-9:
                raise ValueError(
                    f"faults.{target}: the probabilities add up to {sum(table.values()):g}; "
                    "expected 1 at most"
                )
            object.__setattr__(self, target, table)
        object.__setattr__(self, "script", tuple(self.script))
        if self.retry_after < 0 or self.slow_seconds < 0 or self.late_seconds < 0:
            raise ValueError("faults: retry_after, slow_seconds and late_seconds must be 0 or more")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> FaultConfig:
        """Build from a YAML/JSON mapping (the manifest's `sandbox.faults`, `--faults FILE`).

        Raises ValueError with a one-line message naming the bad key, with a suggestion.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError("faults: expected a mapping of target: {fault: probability}")
        allowed = [f.name for f in fields(cls)]
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in allowed:
                raise ValueError(
                    f"faults: unknown key '{key}'{suggest(key, allowed)}; "
                    f"expected one of {', '.join(allowed)}"
                )
            if key in TARGETS:
                if not isinstance(value, Mapping):
                    raise ValueError(f"faults.{key}: expected a mapping of fault: probability")
                values[key] = _probabilities(key, value)
            elif key == "script":
                values[key] = tuple(_scripted(i, step) for i, step in enumerate(value or []))
            elif key == "error_message":
                values[key] = str(value)
            else:
                values[key] = _number(f"faults.{key}", value, whole=key == "seed")
        return cls(**values)

    def to_mapping(self) -> dict[str, Any]:
        """The inverse of from_mapping (JSON-ready)."""
        out: dict[str, Any] = {t: dict(getattr(self, t)) for t in TARGETS if getattr(self, t)}
        out["script"] = [{k: v for k, v in vars(step).items() if v is not None} for step in self.script]
        out.update(
            seed=self.seed,
            retry_after=self.retry_after,
            slow_seconds=self.slow_seconds,
            late_seconds=self.late_seconds,
            error_message=self.error_message,
        )
        return out


def _probabilities(target: str, table: Mapping[Any, Any]) -> dict[str, float]:
    out = {}
    for kind, chance in table.items():
        _check_kind(target, str(kind), f"faults.{target}")
        out[str(kind)] = _number(f"faults.{target}.{kind}", chance)
    return out


def _number(where: str, value: Any, whole: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: {value!r} is not allowed; expected a number")
    if whole and not isinstance(value, int):
        raise ValueError(f"{where}: {value!r} is not allowed; expected a whole number")
    return value


def _scripted(index: int, step: Any) -> ScriptedFault:
    where = f"faults.script[{index}]"
    if not isinstance(step, Mapping):
        raise ValueError(f"{where}: expected a mapping like {{on: submit, fault: 429}}")
    # YAML 1.1 reads a bare `on:` key as the boolean true.
    step = {("on" if key is True else key): value for key, value in step.items()}
    for key in step:
        if key not in _SCRIPT_KEYS:
            raise ValueError(
                f"{where}: unknown key '{key}'{suggest(key, sorted(_SCRIPT_KEYS))}; "
                "expected on, fault, times, skip, retry_after, message"
            )
    target = str(step.get("on", step.get("target", "")))
    kind = str(step.get("fault", step.get("kind", "")))
    _check_kind(target, kind, where)
    return ScriptedFault(
        target=target,
        kind=kind,
        times=int(step.get("times", 1)),
        skip=int(step.get("skip", 0)),
        retry_after=step.get("retry_after"),
        message=step.get("message"),
    )


class FaultPlan:
    """Draws the fault, if any, for each request of a target; owns the random generators."""

    def __init__(self, config: FaultConfig):
        self.config = config
        self._script = {t: deque() for t in TARGETS}
        for step in config.script:
            self._script[step.target].append([step, step.skip, step.times])
        # One generator per target: the answer to the n-th poll does not depend on how many
        # submits came before it.
        self._rng = {t: random.Random(config.seed * 1_000_003 + zlib.crc32(t.encode())) for t in TARGETS}
        self._tables = {t: list(getattr(config, t).items()) for t in TARGETS}

    def draw(self, target: str, kinds: tuple[str, ...] | None = None) -> Fault | None:
        """The fault for the next request on `target`, or None.

        `kinds` limits the draw to some kinds of the target: the download target is drawn
        once when a URL is handed out ("expired") and once when it is fetched (the rest).
        """
        queue = self._script[target]
        if queue and (kinds is None or queue[0][0].kind in kinds):
            entry = queue[0]
            step, skip, _ = entry
            if skip > 0:
                entry[1] -= 1
                return None
            entry[2] -= 1
            if entry[2] == 0:
                queue.popleft()
            return self._fault(target, step.kind, step.retry_after, step.message)
        table = self._tables[target]
        if kinds is not None:
            table = [(kind, chance) for kind, chance in table if kind in kinds]
        if not table:
            return None
        roll = self._rng[target].random()
        for kind, chance in table:
            if roll < chance:
                return self._fault(target, kind)
            roll -= chance
        return None

    def _fault(
        self, target: str, kind: str, retry_after: float | None = None, message: str | None = None
    ) -> Fault:
        cfg = self.config
        return Fault(
            target=target,
            kind=kind,
            retry_after=cfg.retry_after if retry_after is None else retry_after,
            message=message or cfg.error_message,
            slow_seconds=cfg.slow_seconds,
            late_seconds=cfg.late_seconds,
        )
