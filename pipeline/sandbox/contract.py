"""What the service accepts in a submit body: the sandbox's own copy of the contract. Pure.

Written from the contract (../shared/api-contract.md, "Submit body" and "Errors"), not
imported from the client: vidpipe's rules live in pipeline.read.schema and pipeline.models, and a
stand-in that checked requests with them would agree with every mistake the client makes.
Here the sandbox keeps its own list of fields, types and allowed values, and refuses what
the service would refuse, in the service's words ("Body validation error" with one problem per
field) whatever the client sends. Field names are the legacy path's; bodies.py translates
the universal path's two renamed fields first.

Every other model is checked against its published request schema: the service's docs, as
data (pipeline/catalogue/models.json, read here as a file, never through the client's code).
A field its schema does not declare is refused as the service's whitelist validator does
(`property ratio should not exist`), and each schema error is one problem.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator


@dataclass(frozen=True)
class ModelContract:
    ratios: tuple[str, ...]
    last_frame: bool  # takes last_image_url


MODELS: Mapping[str, ModelContract] = {
    "gen3a_turbo": ModelContract(ratios=("16:9", "9:16"), last_frame=True),
    "runway/gen4_turbo": ModelContract(
        ratios=("16:9", "9:16", "4:3", "3:4", "1:1", "21:9"), last_frame=False
    ),
}
FIELDS = ("model", "prompt", "ratio", "duration", "seed", "watermark", "image_url", "last_image_url")
DURATIONS = (5, 10)
DEFAULT_RATIO = "16:9"  # when absent, since 2025-08
DEFAULT_DURATION = 5
PROMPT_LIMITS = (512, 1000)  # the reference page's, the model pages'
SEED_MAX = 4_294_967_295
URL_MAX = 2048
DATA_URI_MAX = 5 * 1024 * 1024
CREDITS_PER_SECOND = 105_000  # the docs' 525,000 credits for a 5 s gen3a_turbo clip
USD_PER_CREDIT = 1 / 2_000_000
VALIDATION_ERROR = "Body validation error"  # the 400's message; its problems follow it
RATIOS = tuple(dict.fromkeys(r for m in MODELS.values() for r in m.ratios))

_HTTPS_URL = re.compile(r"https://\S+")
_DATA_URI = re.compile(r"data:image/(png|jpeg|webp);base64,[A-Za-z0-9+/]+={0,2}")
_IMAGE = "an https:// URL (2048 characters at most) or a data:image/(png|jpeg|webp);base64 URI (5 MB at most)"
_SHOWN_MAX = 60


def problems(request: Mapping[str, Any], prompt_limit: int) -> list[tuple[str, str]]:
    """(field, message) for everything the service would refuse in `request` (legacy names);
    the field is "" for the body as a whole. Unknown fields are not looked at here."""
    found: list[tuple[str, str]] = []
    if "model" not in request:
        found.append(("", "missing required field 'model'"))
    for name in FIELDS:
        if name in request:
            message = _field_problem(name, request[name], prompt_limit)
            if message:
                found.append((name, message))
    model = MODELS.get(request.get("model")) if isinstance(request.get("model"), str) else None
    if model is not None:
        found += _model_problems(request, model, str(request["model"]))
    return found


@functools.cache
def published_models() -> dict[str, Any]:
    """The service's published models by id (and alias): the docs' request schemas, as data."""
    # The package's data file, not the pipeline.catalogue module that reads it for the client.
    text = resources.files("pipeline").joinpath("catalogue", "models.json").read_text(encoding="utf-8")
    entries = json.loads(text)["models"]
    return {name: entry for entry in entries.values() for name in (entry["id"], *entry["aliases"])}


def asks_for_audio(body: Any) -> bool:
    """True when the body turns its model's audio on, under the name the model publishes for it
    (`generate_audio`, or `generate_audio_switch` on PixVerse)."""
    if not isinstance(body, dict):
        return False
    entry = published(body.get("model"))
    name = (entry or {}).get("fields", {}).get("generate_audio", "generate_audio")
    return body.get(name) is True


def published(model: Any) -> dict[str, Any] | None:
    """The published entry of a model the sandbox checks by its schema (every one but Runway's two)."""
    if not isinstance(model, str) or model in MODELS:
        return None
    return published_models().get(model)


def schema_problems(body: Mapping[str, Any], entry: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for what the model's published schema refuses in `body` (its own names)."""
    declared = entry["schema"]["properties"]
    found = [(str(key), f"property {key} should not exist") for key in body if key not in declared]
    for error in sorted(_validator(entry["id"]).iter_errors(body), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(part) for part in error.absolute_path)
        if error.validator == "enum":
            message = (
                f"{_shown(error.instance)} is not allowed; expected {_options(tuple(error.validator_value))}"
            )
        else:
            message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
        found.append((where, message))
    return found


@functools.cache
def _validator(model_id: str) -> Draft202012Validator:
    return Draft202012Validator(published_models()[model_id]["schema"])


def _field_problem(name: str, value: Any, prompt_limit: int) -> str | None:
    if name == "model":
        return _one_of(value, tuple(MODELS))
    if name == "prompt":
        if not isinstance(value, str):
            return _refused(value, "a text")
        if not 1 <= len(value) <= prompt_limit:
            bound = "at least 1" if not value else f"at most {prompt_limit}"
            return f"{_shown(value)} has {len(value)} characters; expected {bound}"
        return None
    if name == "ratio":
        return _one_of(value, RATIOS)
    if name == "duration":
        return _one_of(value, DURATIONS) if _is_integer(value) else _refused(value, _options(DURATIONS))
    if name == "seed":
        if not _is_integer(value) or not 0 <= value <= SEED_MAX:
            return _refused(value, f"a whole number from 0 to {SEED_MAX}")
        return None
    if name == "watermark":
        return None if isinstance(value, bool) else _refused(value, "true or false")
    return None if _is_image(value) else _refused(value, _IMAGE)  # image_url, last_image_url


def _model_problems(request: Mapping[str, Any], model: ModelContract, name: str) -> list[tuple[str, str]]:
    found = []
    ratio = request.get("ratio")
    if isinstance(ratio, str) and ratio in RATIOS and ratio not in model.ratios:
        found.append(("ratio", _refused(ratio, f"{_options(model.ratios)} for {name}")))
    if "last_image_url" in request and not model.last_frame:
        found.append(
            ("last_image_url", _refused(request["last_image_url"], f"no last frame: {name} takes none"))
        )
    return found


def _is_integer(value: Any) -> bool:
    # JSON has one number type: 5.0 is the integer 5 to a validator, true is not a number.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_image(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if _HTTPS_URL.fullmatch(value):
        return len(value) <= URL_MAX
    return bool(_DATA_URI.fullmatch(value)) and len(value) <= DATA_URI_MAX


def _one_of(value: Any, allowed: tuple[Any, ...]) -> str | None:
    same_kind = [a for a in allowed if type(a) is type(value) or (_is_integer(value) and isinstance(a, int))]
    return None if value in same_kind else _refused(value, _options(allowed))


def _refused(value: Any, expected: str) -> str:
    return f"{_shown(value)} is not allowed; expected {expected}"


def _options(values: tuple[Any, ...]) -> str:
    shown = [repr(v) if isinstance(v, str) else json.dumps(v) for v in values]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def _shown(value: Any) -> str:
    """The value as the client sent it, cut to one line (a data URI by its head and size)."""
    if isinstance(value, str) and value.startswith("data:"):
        return repr(f"{value.split(',', 1)[0]},... ({len(value):,} characters)")
    text = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "..."
