"""The video models of the AI/ML API as data: `models.json`, built from the public docs.

`scripts/build_catalogue.py` writes `models.json` from a checkout of `aimlapi/api-docs` (see
docs/catalogue.md); this module only reads it. Every function is pure and the file is read once.

    >>> from pipeline import catalogue
    >>> catalogue.field_name("runway/gen4_turbo", "last_image_url")
    'tail_image_url'
    >>> catalogue.allowed("google/veo-3.1-t2v", "duration")["enum"]
    [4, 6, 8]

The returned dicts are the catalogue's own: read them, copy before changing them.
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from pipeline.errors import InputError

__all__ = [
    "COMMON_FIELDS",
    "allowed",
    "closest",
    "field_name",
    "load_catalogue",
    "model",
    "model_ids",
    "request_schema",
]

# vidpipe's names for the request fields most models share; `field_name` maps them to a model's.
COMMON_FIELDS = (
    "prompt",
    "ratio",
    "duration",
    "seed",
    "image_url",
    "last_image_url",
    "resolution",
    "negative_prompt",
    "generate_audio",
    "watermark",
)


@lru_cache(maxsize=1)
def load_catalogue() -> dict[str, Any]:
    """The whole catalogue: `source` (docs commit), `models` by id, `poll`, `doc_issues`, ..."""
    text = resources.files(__name__).joinpath("models.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """Every id and alias, and their case-folded forms, -> the canonical id."""
    names: dict[str, str] = {}
    for model_id, entry in load_catalogue()["models"].items():
        for name in (model_id, *entry["aliases"]):
            names.setdefault(name, model_id)
            names.setdefault(name.casefold(), model_id)
    return names


def model_ids() -> list[str]:
    """The canonical ids of every catalogued model, sorted."""
    return sorted(load_catalogue()["models"])


def model(id_or_alias: str) -> dict[str, Any]:
    """The catalogue entry of a model named by its id or an alias (case-insensitive).

    Raises InputError naming the closest catalogued ids when the name is unknown.
    """
    names = _names()
    model_id = names.get(id_or_alias) or names.get(str(id_or_alias).casefold())
    if model_id is None:
        raise InputError(_unknown_model(id_or_alias))
    return load_catalogue()["models"][model_id]


def request_schema(id_or_alias: str) -> dict[str, Any]:
    """The model's request body as a JSON Schema (Draft 2020-12), for its main path."""
    return model(id_or_alias)["schema"]


def field_name(id_or_alias: str, common_field: str) -> str | None:
    """The model's name for one of vidpipe's COMMON_FIELDS, or None when it has no such field."""
    _check_common(common_field)
    return model(id_or_alias)["fields"].get(common_field)


def allowed(id_or_alias: str, common_field: str) -> dict[str, Any] | None:
    """What the model accepts for a common field (type, enum, minimum, maximum, default, ...).

    None when the model has no such field.
    """
    _check_common(common_field)
    return model(id_or_alias)["allowed"].get(common_field)


def _check_common(common_field: str) -> None:
    if common_field not in COMMON_FIELDS:
        expected = ", ".join(COMMON_FIELDS)
        raise InputError(f"{common_field!r} is not a common request field; expected one of {expected}")


def closest(name: object, count: int = 3) -> list[str]:
    """Up to `count` catalogued ids or aliases most like `name`, most similar first."""
    catalogue = load_catalogue()
    known = [*catalogue["models"], *(a for e in catalogue["models"].values() for a in e["aliases"])]
    folded = {k.casefold(): k for k in known}
    wanted = str(name).casefold()
    # A short name ("veo-3.1") is part of many ids: offer those, most similar first.
    containing = [k for k in folded if wanted and wanted in k]
    if containing:
        similarity = {k: difflib.SequenceMatcher(None, wanted, k).ratio() for k in containing}
        close = sorted(containing, key=lambda k: (-similarity[k], k))[:count]
    else:
        close = difflib.get_close_matches(wanted, list(folded), n=count, cutoff=0.5)
    return [folded[c] for c in close]


def _unknown_model(name: object) -> str:
    catalogue = load_catalogue()
    close = closest(name)
    hint = f"; closest: {', '.join(close)}" if close else ""
    where = f"{len(catalogue['models'])} video models, docs {catalogue['source']['commit'][:12]}"
    return f"model {name!r} is not in the catalogue ({where}){hint}"
