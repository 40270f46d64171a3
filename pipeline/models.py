"""The facts of each video model vidpipe submits: timing, allowed values, field names, paths. Pure.

Every model of the catalogue (pipeline/catalogue/, the service's published request schemas)
has facts: `facts(model)` builds them from its catalogue entry, once. The two Runway models
vidpipe has always sent on the legacy Runway path keep their entries in MODELS (their legacy
path's rules); on the universal path they follow their
catalogue schema like every other model.

Timing: the catalogue says nothing about how long a generation takes. vidpipe's estimate is
TYPICAL_SECONDS per vendor (the id's prefix), else DEFAULT_TYPICAL_SECONDS: a minute, between
the contract's 25 s (gen3a_turbo) and 65 s (gen4_turbo) and the minutes longer clips take.
These are vidpipe's guesses, not published figures, and one per vendor is enough: the value
only places the first polls (cadence.py learns the real time from the first completions) and
plan's time estimate, never a rule or a price.

The Runway entries, in one place: `plan.py` times jobs from them, read/contracts.py
checks the legacy path by them, and the JSON Schema's Runway rules (schemas/manifest.schema.json:
`gen3aRatio`, `modelRules`, the inherited `rowRules`) must say the same:
tests/unit/test_models.py checks every model against the schema, and against the catalogue of
the service's docs (pipeline/catalogue/) where that holds the same fact.

The schema is checked, not generated: its Runway rules are written for editors (a ratio that
a job inherits from `defaults` or `matrix` is flagged at its own line), a shape no per-model
table maps to mechanically; a test that tries every model with every value catches any
disagreement without a generator that would have to know that shape.

Prices are not facts of this module: they come from the service's catalogue, or the shipped
snapshot (catalogue/prices.json, where the figures are explained), through catalogue/pricing.py.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import catalogue

CREDITS_PER_USD = 2_000_000
SEED_MAX = 4_294_967_295
# The reference page says 512 characters, the model pages 1000: vidpipe follows the reference
# page unless run.prompt_limit raises it.
DEFAULT_PROMPT_LIMIT = 512
PROMPT_LIMIT = 1000
PROMPT_LIMITS = (DEFAULT_PROMPT_LIMIT, PROMPT_LIMIT)
DEFAULT_MODEL = "gen3a_turbo"
DEFAULT_RATIO = "16:9"
DEFAULT_DURATION = 5
# vidpipe's field names are the legacy path's; the universal path renamed these two.
UNIVERSAL_NAMES = MappingProxyType({"ratio": "aspect_ratio", "last_image_url": "tail_image_url"})
LEGACY_PATH = "/v2/generate/video/runway/generation"
UNIVERSAL_PATH = "/v2/video/generations"
DEFAULT_TYPICAL_SECONDS = 60.0
# Seconds one generation takes, by the id's vendor prefix: vidpipe's guesses (see above).
TYPICAL_SECONDS = MappingProxyType(
    {
        "google": 60.0,
        "klingai": 120.0,
        "kling-video": 120.0,
        "minimax": 90.0,
        "alibaba": 90.0,
        "bytedance": 60.0,
    }
)


@dataclass(frozen=True)
class ModelFacts:
    model_id: str
    typical_seconds: float  # one generation, start to finish
    ratios: tuple[str, ...]  # () when the model takes no ratio
    durations: tuple[int, ...] = (5, 10)  # () when it takes none, or any from duration_range
    last_frame: bool = False  # takes last_image_url (the clip's final frame)
    prompt_limit: int = PROMPT_LIMIT
    universal_names: Mapping[str, str] = field(default_factory=lambda: UNIVERSAL_NAMES)
    seed: bool = True  # takes a seed
    duration_range: tuple[int, int] | None = None  # (min, max) when any whole number between is taken
    path: str = UNIVERSAL_PATH  # where it is served besides the legacy Runway path

    def field_name(self, request_field: str, endpoint: str) -> str:
        """The name the service takes for one of vidpipe's request fields on `endpoint`."""
        if endpoint == "universal":
            return self.universal_names.get(request_field, request_field)
        return request_field


MODELS: Mapping[str, ModelFacts] = MappingProxyType(
    {
        "gen3a_turbo": ModelFacts(
            "gen3a_turbo",
            typical_seconds=25,
            ratios=("16:9", "9:16"),
            last_frame=True,
        ),
        "runway/gen4_turbo": ModelFacts(
            "runway/gen4_turbo",
            typical_seconds=65,
            ratios=("16:9", "9:16", "4:3", "3:4", "1:1", "21:9"),
        ),
    }
)


@functools.cache
def facts(model: str) -> ModelFacts:
    """The facts of any catalogued model, by id or alias (InputError naming the closest
    catalogued names for any other). The Runway models' are MODELS' (their legacy path)."""
    if model in MODELS:
        return MODELS[model]
    return _from_catalogue(catalogue.model(model))


def _from_catalogue(entry: dict[str, Any]) -> ModelFacts:
    allowed = entry["allowed"]
    duration = allowed.get("duration") or {}
    durations = tuple(int(d) for d in duration.get("enum", ()) if isinstance(d, (int, float)))
    span = None
    if not durations and "minimum" in duration and "maximum" in duration:
        span = (int(duration["minimum"]), int(duration["maximum"]))
    prompt = allowed.get("prompt") or {}
    names = {common: own for common, own in entry["fields"].items() if own != common}
    return ModelFacts(
        entry["id"],
        typical_seconds=TYPICAL_SECONDS.get(entry["id"].split("/")[0], DEFAULT_TYPICAL_SECONDS),
        ratios=tuple(str(r) for r in (allowed.get("ratio") or {}).get("enum", ())),
        durations=durations,
        last_frame="last_image_url" in entry["fields"],
        prompt_limit=int(prompt.get("maxLength", PROMPT_LIMIT)),
        universal_names=MappingProxyType(names),
        seed=bool(entry["seed"]),
        duration_range=span,
        path=entry["path"],
    )


def canonical(model: str) -> str:
    """The catalogue's id for a model id or alias (InputError with the closest names)."""
    return model if model in MODELS else catalogue.model(model)["id"]


def on_legacy_path(model: str, endpoint: str) -> bool:
    """True when `model` is sent on the legacy Runway path: a Runway model, run.endpoint legacy."""
    return endpoint == "legacy" and model in MODELS


def submit_path(model: str, endpoint: str) -> str:
    """Where a model's submits (and polls) go: the legacy Runway path, or the model's own."""
    return LEGACY_PATH if on_legacy_path(model, endpoint) else facts(model).path


def credits_for(model: str, duration: int, resolution: str | None = None) -> int | None:
    """A job's credits from the shipped price snapshot (None: unknown); plan and run ask the
    live catalogue through catalogue.pricing.Prices instead."""
    from .catalogue.pricing import snapshot_book

    return snapshot_book().credits_for(model, duration, resolution)


def all_ratios() -> tuple[str, ...]:
    """Every ratio some model takes, in the order the models list them."""
    return tuple(dict.fromkeys(r for m in MODELS.values() for r in m.ratios))


def all_durations() -> tuple[int, ...]:
    return tuple(dict.fromkeys(d for m in MODELS.values() for d in m.durations))
