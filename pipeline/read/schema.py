"""The manifest JSON Schema (schemas/manifest.schema.json) and how its complaints read.

The schema holds the manifest's rules, the per-model ones said again so that editors flag
them (pipeline/models.py holds the model facts; a test checks the two agree). This module
loads it once, hands out validators for the whole document, for one request field and for the
per-model rules, and turns jsonschema's errors into one-line messages that say what is allowed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

REQUEST_FIELDS = (
    "model",
    "prompt",
    "ratio",
    "duration",
    "seed",
    "watermark",
    "image_url",
    "last_image_url",
)
SCHEMA_FILE = "manifest.schema.json"
MAX_SHOWN_VALUE = 60


def schema_path() -> Path:
    """Where the schema file is, in a checkout or an installed package."""
    return Path(str(resources.files("pipeline") / "schemas" / SCHEMA_FILE))


@functools.cache
def manifest_schema() -> dict[str, Any]:
    return json.loads(schema_path().read_text(encoding="utf-8"))


@functools.cache
def validator_for(pointer: str) -> Draft202012Validator:
    """A validator for the sub-schema at `pointer` (like "#/$defs/seed").

    Local references are inlined first: resolving a $ref on every call made checking 100,000
    distinct values take seconds, and our schema has no recursive references.
    """
    return Draft202012Validator(_inline(_at(pointer)))


def _at(pointer: str) -> Any:
    node: Any = manifest_schema()
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _inline(node: Any) -> Any:
    if isinstance(node, list):
        return [_inline(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        siblings = {key: _inline(value) for key, value in node.items() if key != "$ref"}
        return {**_inline(_at(node["$ref"])), **siblings}
    return {key: _inline(value) for key, value in node.items()}


@functools.cache
def document_validator() -> Draft202012Validator:
    # The schema is checked against its metaschema by tests/test_validation.py, not here: that
    # took longer than reading and checking a manifest.
    return Draft202012Validator(_inline(manifest_schema()))


@functools.cache
def field_validator(field: str) -> Draft202012Validator:
    """Validator of one value of a request field, as the manifest accepts it."""
    return validator_for(f"#/$defs/fieldValues/properties/{field}")


@functools.cache
def model_rules_validator() -> Draft202012Validator:
    """Validator of the cross-field rules each model adds (ratios, last frame)."""
    return validator_for("#/$defs/modelRules")


def definition(name: str) -> dict[str, Any]:
    return manifest_schema()["$defs"][name]


def default_of(section: str, key: str) -> Any:
    """The schema's `default` for a setting, e.g. default_of("run", "concurrency")."""
    return definition(section)["properties"][key].get("default")


# --- turning errors into lines -------------------------------------------------------------


def shorten(value: Any, limit: int = MAX_SHOWN_VALUE) -> str:
    """A value as a user wrote it, cut to fit one line."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    if isinstance(value, str) and value.startswith("data:"):
        head = value.split(",", 1)[0]
        text = repr(f"{head},... ({len(value):,} characters)")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def field_path(path: Iterable[Any]) -> str:
    """["jobs", 1, "ratio"] -> "jobs[1].ratio"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _options(values: Iterable[Any]) -> str:
    shown = [json.dumps(v) if not isinstance(v, str) else repr(v) for v in values]
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " or " + shown[-1]


def explain(error: ValidationError) -> str:
    """One sentence: the bad value and what would be accepted."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    expected = schema.get("x-expected")
    value = shorten(error.instance)
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required field '{missing}'"
    if kind == "not" and expected:
        return f"{value} is not allowed; expected {expected}"
    if expected:
        return f"{value} is not allowed; expected {expected}"
    if kind == "enum":
        return f"{value} is not allowed; expected {_options(error.validator_value)}"
    if kind == "const":
        return f"{value} is not allowed; expected {_options([error.validator_value])}"
    if kind == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        return f"{value} is not allowed; expected {_TYPE_WORDS.get(wanted, wanted)}"
    if kind == "minItems":
        return "an empty list is not allowed; expected at least one value"
    if kind == "uniqueItems":
        return f"{value} repeats a value; expected each value once"
    if kind in ("maxLength", "minLength"):
        length = len(error.instance) if isinstance(error.instance, str) else "?"
        bound = "at most" if kind == "maxLength" else "at least"
        return f"{value} has {length} characters; expected {bound} {error.validator_value}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        words = {
            "minimum": "at least",
            "maximum": "at most",
            "exclusiveMinimum": "more than",
            "exclusiveMaximum": "less than",
        }
        return f"{value} is not allowed; expected {words[kind]} {error.validator_value}"
    return f"{value}: {error.message}"


_TYPE_WORDS = {
    "object": "a mapping of field: value",
    "array": "a list",
    "string": "a text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
}


def leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    """The errors worth showing for `error`, descending into anyOf/oneOf branches.

    For an anyOf, the branch whose type matches the value is the one the user meant (a list
    for a sweep, a number for one seed), so its errors are shown; when no branch or several
    match, the anyOf itself is reported with its x-expected text.
    """
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        yield error
        return
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    meant = [subs for subs in branches.values() if not any(_wrong_kind(s) for s in subs)]
    if len(meant) == 1:
        for sub in meant[0]:
            yield from leaf_errors(sub)
    else:
        yield error


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), "null")


def _wrong_kind(error: ValidationError) -> bool:
    """True when the value is of another kind than this branch takes (a list for a scalar)."""
    if error.relative_path:
        return False
    if error.validator == "type":
        return True
    if error.validator in ("enum", "const"):
        allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
        return _json_type(error.instance) not in {_json_type(v) for v in allowed}
    return False


def is_conditional(error: ValidationError) -> bool:
    """True for an error of an `if`/`then`/`else` rule of the schema."""
    return any(part in ("then", "else") for part in error.absolute_schema_path)


def iter_problems(
    validator: Draft202012Validator, instance: Any
) -> Iterator[tuple[tuple[Any, ...], ValidationError]]:
    """(absolute path, error) for every leaf problem of `instance`."""
    for error in validator.iter_errors(instance):
        for leaf in leaf_errors(error):
            yield tuple(leaf.absolute_path), leaf


def first_problem(validator: Draft202012Validator, instance: Any) -> str | None:
    """The first problem as a sentence, or None when `instance` is valid."""
    for _, error in iter_problems(validator, instance):
        return explain(error)
    return None


def unknown_keys(error: ValidationError) -> list[str]:
    """The offending keys of an additionalProperties error."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return []
    allowed = set(error.schema.get("properties", {}))
    return [key for key in error.instance if key not in allowed]


def allowed_keys(error: ValidationError) -> list[str]:
    return list(error.schema.get("properties", {}))
