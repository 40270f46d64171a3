"""Each job against its own model's published request schema, once per distinct combination. Pure.

The catalogue (pipeline/catalogue/) holds every model's request schema as the service publishes
it. On the expanded table, in this order (load_batch calls `fit_models`):

1. model names: an alias becomes the catalogue's id (the table records it); an unknown name is
   an error naming the closest catalogued names;
2. `per_model`: a model's values fill the fields its jobs do not set themselves (a job's own
   value wins; per_model wins over the matrix and defaults);
3. model defaults: a ratio or duration nobody wrote (the schema's Runway defaults) becomes the
   model's own published default, or none at all for a model without that field;
4. `run.adapt: nearest`: a duration or ratio the model does not take becomes the nearest one it
   takes (asked_duration / asked_ratio keep what was asked);
5. the check: each distinct combination is built into the body its model would get and
   checked against the model's schema: an undeclared field (a seed on a model without seeds,
   an extra another model declares), a missing required one, a value it does not take. The
   Runway models on the legacy path keep their legacy rules (models.py, checks.py) instead.

A 100,000-row sweep has a handful of distinct combinations: the schema is run on those only.
Problems are reported where the value is written (origins.py), once per place.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator

from .. import catalogue, models
from ..errors import InputError, Problem
from .expand import ID_MODEL, JobColumns, rows_at
from .origins import Origins
from .salvage import INVALID, is_invalid
from .schema import REQUEST_FIELDS, field_path, shorten

ADAPTED_FIELDS = ("duration", "ratio")
IMAGE_PLACEHOLDER = "https://example.invalid/image.png"
SEED_HINT = "repeats, not seeds, give it several samples (repeat: N in a job)"


def fit_models(
    table: JobColumns,
    data: Mapping[str, Any],
    origins: Origins,
    endpoint: str,
    adapt: str,
    renames: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Steps 1-5 above, on `table` in place; every problem found. `renames` sends a superseded
    model's jobs (and its per_model entry) to its replacement, checked as that model."""
    renames = renames or {}
    problems = _resolve_models(table, origins, renames)
    per_model, found = _per_model(data, origins, table["model"], renames)
    problems += found
    _apply_per_model(table, per_model, origins)
    _model_defaults(table, origins, endpoint)
    table["asked_duration"] = [None] * len(table["model"])
    table["asked_ratio"] = [None] * len(table["model"])
    if adapt == "nearest":
        problems += _adapt(table, endpoint, origins)
    problems += _check(table, endpoint, origins)
    return problems


# --- 1. model names --------------------------------------------------------------------------


def _resolve_models(table: JobColumns, origins: Origins, renames: Mapping[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    holders: dict[Any, list[int]] = {}
    for index, name in enumerate(table["model"]):
        holders.setdefault(name, []).append(index)
    for name, indices in holders.items():
        if not isinstance(name, str):
            continue
        try:
            model_id = models.canonical(name)
        except InputError:
            problems += origins.problems(rows_at(table, indices), "model", unknown_model(name))
            model_id = INVALID
        replacement = renames.get(model_id, model_id)
        if replacement != model_id:
            # The feed names a superseded model's replacement, and may start to between two runs:
            # its jobs keep the ids (and chosen seeds) of the model they were written for, so a
            # rerun finds them done instead of paying for them again.
            ids_of = table.setdefault(ID_MODEL, [None] * len(table["model"]))
            for index in indices:
                ids_of[index] = model_id
        if replacement != name:
            for index in indices:
                table["model"][index] = replacement
    return problems


def unknown_model(name: str) -> str:
    close = catalogue.closest(name)
    hint = f"; closest: {', '.join(close)}" if close else ""
    count = len(catalogue.load_catalogue()["models"])
    return (
        f"{shorten(name)} is not a catalogued model ({count} video models: `vidpipe models` lists them){hint}"
    )


# --- 2. per_model ----------------------------------------------------------------------------


def _per_model(
    data: Mapping[str, Any],
    origins: Origins,
    used: Iterable[Any] = (),
    renames: Mapping[str, str] | None = None,
) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """per_model by canonical id (unknown names, and catalogued ones no job uses, reported at
    their key); origins learns where each model's entry is written."""
    section = data.get("per_model")
    if not isinstance(section, dict):
        return {}, []
    out: dict[str, dict[str, Any]] = {}
    problems = []
    used = list(used)
    # Only when every job's model is known: a refused name may be the one per_model meant.
    jobs_use = set(used) if used and all(isinstance(m, str) for m in used) else None
    for name, values in section.items():
        if not isinstance(values, dict):
            continue
        try:
            model_id = models.canonical(str(name))
            model_id = (renames or {}).get(model_id, model_id)
        except InputError:
            where = origins.document.where(("per_model", name))
            problems.append(Problem(where, field_path(("per_model", name)), unknown_model(str(name))))
            continue
        if jobs_use is not None and model_id not in jobs_use:
            where = origins.document.where(("per_model", name))
            message = f"{shorten(str(name))} is used by no job (the jobs use: {', '.join(sorted(jobs_use))})"
            problems.append(Problem(where, field_path(("per_model", name)), message))
            continue
        # A refused value (INVALID) is applied too: the rows holding it skip the checks that
        # need it, rather than report the matrix or defaults value it would hide.
        out[model_id] = dict(values)
        origins.per_model_keys[model_id] = name
    return out, problems


def _apply_per_model(table: JobColumns, per_model: dict[str, dict[str, Any]], origins: Origins) -> None:
    """Fill each row's fields from its model's per_model entry where the job sets none itself;
    bit i of `pm` marks REQUEST_FIELDS[i] as taken from there. Extras merge: job, per_model,
    defaults, the first that has a name wins."""
    count = len(table["model"])
    table["pm"] = [0] * count
    by_model: dict[Any, list[int]] = {}
    for index, model_id in enumerate(table["model"]):
        by_model.setdefault(model_id, []).append(index)
    defaults = origins.default_extras
    for model_id, indices in by_model.items():
        entry = per_model.get(model_id) if isinstance(model_id, str) else None
        extras = {**defaults, **{k: v for k, v in (entry or {}).items() if k not in REQUEST_FIELDS}}
        if extras or any(table["extra"][index] for index in indices):
            merged: dict[int, dict[str, Any] | None] = {}
            for index in indices:
                own_extra = table["extra"][index]
                if id(own_extra) not in merged:
                    merged[id(own_extra)] = {**extras, **(own_extra or {})} or None
                table["extra"][index] = merged[id(own_extra)]
        fields = [(bit, name) for bit, name in enumerate(REQUEST_FIELDS) if entry and name in entry]
        for bit, name in fields:
            column, value, mask = table[name], entry[name], 1 << bit
            for index in indices:
                if not table["own"][index] & mask:
                    column[index] = value
                    table["pm"][index] |= mask


# --- 3. the model's own defaults ----------------------------------------------------------


def _model_defaults(table: JobColumns, origins: Origins, endpoint: str) -> None:
    """A ratio or duration no one wrote is the model's published default (none when it has no
    such field); the Runway models on the legacy path keep vidpipe's 16:9 and 5 s."""
    unwritten = [name for name in ADAPTED_FIELDS if origins.fallbacks[name] is None]
    if not unwritten:
        return
    own_defaults: dict[Any, bool] = {}
    for model_id in set(table["model"]):
        own_defaults[model_id] = (
            isinstance(model_id, str)
            and not is_invalid(model_id)
            and not models.on_legacy_path(model_id, endpoint)
        )
    if not any(own_defaults.values()):
        return
    for name in unwritten:
        bit = 1 << REQUEST_FIELDS.index(name)
        column = table[name]
        for index, (model_id, own, pm) in enumerate(
            zip(table["model"], table["own"], table["pm"], strict=True)
        ):
            if own_defaults[model_id] and not (own | pm) & bit:
                column[index] = model_default(model_id, name)


@functools.cache
def model_default(model_id: str, name: str) -> Any:
    """The model's published default for a common field, else the first value it allows, else
    None (the field is not sent)."""
    allowed = catalogue.allowed(model_id, name)
    if allowed is None:
        return None
    if "default" in allowed and _takes(allowed, allowed["default"]):
        return allowed["default"]
    if allowed.get("enum"):
        return allowed["enum"][0]
    return allowed.get("minimum")


def _takes(allowed: Mapping[str, Any], value: Any) -> bool:
    if "enum" in allowed:
        return value in allowed["enum"]
    return all(
        (bound not in allowed) or (value >= allowed[bound] if bound == "minimum" else value <= allowed[bound])
        for bound in ("minimum", "maximum")
    )


# --- 4. adapt: nearest -------------------------------------------------------------------


def _adapt(table: JobColumns, endpoint: str, origins: Origins) -> list[Problem]:
    """Replace each duration and ratio its model does not take by the nearest it takes."""
    problems: list[Problem] = []
    for name in ADAPTED_FIELDS:
        combos: dict[tuple[Any, Any], list[int]] = {}
        for index, (model_id, value) in enumerate(zip(table["model"], table[name], strict=True)):
            if isinstance(model_id, str) and not is_invalid(model_id) and value is not None:
                combos.setdefault((model_id, value), []).append(index)
        for (model_id, value), indices in combos.items():
            choices = allowed_values(model_id, name, endpoint)
            if choices is None or value in choices or is_invalid(value):
                continue
            nearest = nearest_value(value, choices)
            if nearest is None:
                message = (
                    f"{shorten(value)} is not allowed; {model_id} takes {_options(choices)} (no nearest one)"
                )
                problems += origins.problems(rows_at(table, indices), name, message)
                continue
            for index in indices:
                table[name][index] = nearest
                table[f"asked_{name}"][index] = value
    return problems


def allowed_values(model_id: str, name: str, endpoint: str) -> tuple[Any, ...] | None:
    """The durations or ratios a model takes; None when any value (or none) goes."""
    facts = models.facts(model_id)
    if name == "ratio":
        return facts.ratios or None
    if facts.durations:
        return facts.durations
    if facts.duration_range:
        low, high = facts.duration_range
        return tuple(range(low, high + 1))
    return None


def nearest_value(value: Any, choices: Iterable[Any]) -> Any:
    """The choice nearest `value`: numbers by difference, ratios by width/height; ties go to the
    larger. None when `value` (or every choice) is not of a kind that has a distance."""
    measure = _ratio_number if isinstance(value, str) else _number
    target = measure(value)
    if target is None:
        return None
    scored = [(abs(measure(c) - target), -measure(c), c) for c in choices if measure(c) is not None]
    return min(scored, key=lambda s: (s[0], s[1]))[2] if scored else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _ratio_number(value: Any) -> float | None:
    width, colon, height = str(value).partition(":")
    if not colon or not width.isdigit() or not height.isdigit() or int(height) == 0:
        return None
    return int(width) / int(height)


# --- 5. the check ------------------------------------------------------------------------


def _check(table: JobColumns, endpoint: str, origins: Origins) -> list[Problem]:
    combos: dict[tuple[Any, ...], list[int]] = {}
    shapes = [_shapes(name, table[name]) for name in REQUEST_FIELDS]
    for index, key in enumerate(zip(*shapes, map(id, table["extra"]), strict=True)):
        combos.setdefault(key, []).append(index)
    problems: list[Problem] = []
    for indices in combos.values():
        model_id = table["model"][indices[0]]
        if not isinstance(model_id, str) or is_invalid(model_id):
            continue
        if models.on_legacy_path(model_id, endpoint):
            problems += _legacy_problems(table, indices, origins)
        else:
            problems += _schema_problems(table, indices, origins)
    return problems


def _shapes(name: str, column: list[Any]) -> list[Any]:
    """What of each value decides whether a model takes it: images and seeds only by being
    there, prompts by length; the rest by value (1 and True kept apart)."""
    if name in ("image_url", "last_image_url", "seed"):
        return [value if value is None or is_invalid(value) else True for value in column]
    if name == "prompt":
        return [len(value) if isinstance(value, str) else value for value in column]
    return [(type(value), value) for value in column]


def _legacy_problems(table: JobColumns, indices: list[int], origins: Origins) -> list[Problem]:
    """The legacy Runway path takes vidpipe's fields only, with the Runway rules of models.py:
    its ratios, 5 or 10 s, a last frame on gen3a_turbo only."""
    first = indices[0]
    model_id = table["model"][first]
    facts = models.facts(model_id)
    rows = _Rows(table, indices)
    problems = []
    ratio, duration, last = (table[name][first] for name in ("ratio", "duration", "last_image_url"))
    # A refused value (INVALID) was reported already: a guess would report it again.
    if _given(ratio) and ratio not in facts.ratios:
        # A ratio no Runway model takes is refused as it always was: by the legacy path's list.
        known = models.all_ratios()
        message = f"{shorten(ratio)} is not allowed; expected {_options(facts.ratios)} for {model_id}"
        if ratio not in known:
            message = f"{shorten(ratio)} is not allowed; expected {_options(known)}"
        problems += origins.problems(rows, "ratio", message)
    if _given(duration) and duration not in facts.durations:
        message = f"{shorten(duration)} is not allowed; expected {_options(facts.durations)}"
        problems += origins.problems(rows, "duration", message)
    if _given(last) and not facts.last_frame:
        message = f"expected no last frame: {model_id} takes only image_url"
        problems += [
            Problem(where, path, f"{shorten(row['last_image_url'])} is not allowed; {message}")
            for row in rows
            for where, path in [origins.locate(row, "last_image_url", row["last_image_url"])]
        ]
    for name in table["extra"][first] or {}:
        message = f"{model_id} takes no {name} on the legacy Runway path (run.endpoint: universal sends it)"
        problems += _extra_problems(table, indices, origins, name, message)
    return list(dict.fromkeys(problems))


def _schema_problems(table: JobColumns, indices: list[int], origins: Origins) -> list[Problem]:
    first = indices[0]
    model_id = table["model"][first]
    entry = catalogue.model(model_id)
    declared = entry["schema"]["properties"]
    body: dict[str, Any] = {"model": model_id}
    names: dict[str, str] = {}  # the model's name -> vidpipe's
    problems: list[Problem] = []
    rows = _Rows(table, indices)
    refused = set()
    for name in REQUEST_FIELDS[1:]:
        value = table[name][first]
        if is_invalid(value):  # reported already; it counts as there
            refused.add(entry["fields"].get(name, name))
            continue
        if value is None:
            continue
        own_name = entry["fields"].get(name)
        if own_name is None:
            problems += _undeclared(rows, origins, model_id, name)
            continue
        names[own_name] = name
        body[own_name] = _stand_in(name, value)
    for name, value in (table["extra"][first] or {}).items():
        own_name = entry["fields"].get(name, name) if name in catalogue.COMMON_FIELDS else name
        if is_invalid(value):  # reported already; it counts as there
            refused.add(own_name)
            continue
        if own_name not in declared:
            message = f"{model_id} does not take '{name}'; it takes {_declared(entry)}"
            problems += _extra_problems(table, indices, origins, name, message)
            continue
        names[own_name] = name
        body[own_name] = value
    for error in _validator(model_id).iter_errors(body):
        if error.validator == "required" and set(error.validator_value) - set(body) <= refused:
            continue
        problems += _schema_problem(error, rows, origins, model_id, names, table, indices)
    return problems


class _Rows:
    """The rows of one combination, made only when a problem is reported on them."""

    def __init__(self, table: JobColumns, indices: list[int]):
        self._table, self._indices = table, indices

    def __iter__(self):
        return rows_at(self._table, self._indices)

    def __getitem__(self, position: int) -> dict[str, Any]:
        return next(rows_at(self._table, [self._indices[position]]))


def _given(value: Any) -> bool:
    return value is not None and not is_invalid(value)


def _stand_in(name: str, value: Any) -> Any:
    """The value as its model will get it, or a stand-in of the same shape: an image is a URL or
    a data URI when sent, a seed is checked by vidpipe's own range."""
    if name in ("image_url", "last_image_url"):
        return IMAGE_PLACEHOLDER
    if name == "seed":
        return 0
    if name == "prompt" and isinstance(value, str):
        return "x" * len(value)
    return value


def _undeclared(rows: _Rows, origins: Origins, model_id: str, name: str) -> list[Problem]:
    if name == "seed":
        message = f"{model_id} takes no seed: {SEED_HINT}"
        return origins.problems(({**row, "seed": None} for row in rows), "seed", message)
    return origins.problems(
        rows, name, f"{shorten(rows[0][name])} is not allowed; {model_id} takes no {name}"
    )


def _extra_problems(
    table: JobColumns, indices: list[int], origins: Origins, name: str, message: str
) -> list[Problem]:
    found = {origins.locate_extra(row, name) for row in rows_at(table, indices)}
    return [Problem(where, path, message) for where, path in sorted(found)]


def _declared(entry: Mapping[str, Any]) -> str:
    reverse = {own: common for common, own in entry["fields"].items()}
    shown = [reverse.get(name, name) for name in entry["schema"]["properties"] if name != "model"]
    return ", ".join(shown) if shown else "no other field"


@functools.cache
def _validator(model_id: str) -> Draft202012Validator:
    return Draft202012Validator(catalogue.request_schema(model_id))


def _schema_problem(
    error: Any,
    rows: _Rows,
    origins: Origins,
    model_id: str,
    names: dict[str, str],
    table: JobColumns,
    indices: list[int],
) -> list[Problem]:
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        shown = {own: common for common, own in catalogue.model(model_id)["fields"].items()}.get(
            missing, missing
        )
        found = {(row["source"], row["path"]) for row in rows}
        message = f"{model_id} requires {shown}; the job sets none"
        return [Problem(where, path, message) for where, path in sorted(found)]
    own_name = error.absolute_path[0] if error.absolute_path else None
    name = names.get(own_name, own_name) if own_name else "model"
    message = f"{shorten(error.instance)} is not allowed; {model_id} takes {_expected(error)}"
    if name in REQUEST_FIELDS:
        return origins.problems(rows, name, message)
    return _extra_problems(table, indices, origins, name, message)


def _expected(error: Any) -> str:
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    if kind == "enum":
        return _options(error.validator_value)
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            return f"{low} to {high}"
        words = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than"}
        return f"{words.get(kind, 'less than')} {error.validator_value}"
    if kind in ("maxLength", "minLength"):
        bound = "at most" if kind == "maxLength" else "at least"
        return f"{bound} {error.validator_value} characters"
    if kind == "type":
        wanted = error.validator_value
        return " or ".join(wanted) if isinstance(wanted, list) else f"a {wanted}"
    return error.message


def _options(values: Iterable[Any]) -> str:
    shown = [repr(v) if isinstance(v, str) else str(v) for v in values]
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " or " + shown[-1]
