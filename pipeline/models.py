"""The facts of each video model vidpipe submits: price, timing, allowed values, field names. Pure.

One entry per model, in one place: `plan.py` prices and times jobs from it, `providers/` names
the fields from it, and the JSON Schema's per-model rules (schemas/manifest.schema.json: the
model and ratio enums, `gen3aRatio`, `modelRules`, the inherited `rowRules`) must say the same:
tests/unit/test_models.py checks every model against the schema, and against the catalogue of
the service's docs (pipeline/catalogue/) where that holds the same fact.

The schema is checked, not generated: its per-model rules are written for editors (a ratio that
a job inherits from `defaults` or `matrix` is flagged at its own line), a shape no per-model
table maps to mechanically; a test that tries every model with every value catches any
disagreement without a generator that would have to know that shape.

Prices are not facts of this module: they come from the service's catalogue, or the shipped
snapshot (catalogue/prices.json, where the figures are explained), through catalogue/pricing.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

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


@dataclass(frozen=True)
class ModelFacts:
    model_id: str
    typical_seconds: float  # one generation, start to finish
    ratios: tuple[str, ...]
    durations: tuple[int, ...] = (5, 10)
    last_frame: bool = False  # takes last_image_url (the clip's final frame)
    prompt_limit: int = PROMPT_LIMIT
    universal_names: Mapping[str, str] = field(default_factory=lambda: UNIVERSAL_NAMES)

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


def facts(model: str) -> ModelFacts:
    """The facts of a model vidpipe submits (KeyError for any other: the schema refused it)."""
    return MODELS[model]


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
