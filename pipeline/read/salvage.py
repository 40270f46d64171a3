"""What a manifest still says once the values the schema refused are set aside.

So that one pass reports every problem, the rules that need whole rows (ratio per model,
prompt limit, a prompt or an image, images on disk) run even when the schema found problems,
on a copy of the document in which each refused value is INVALID: a value that is there but
unknown. A rule that needs the value skips the rows holding it (the value was reported
already, and a guess would report the same mistake again in other words); a rule that needs
only its presence counts it as there. A refused setting is dropped instead, so its default
applies. INVALID never reaches a run: a document holding one has problems, and load_batch
raises them before anything is expanded into requests.

An unknown key whose likely meaning is a request field (`promt: a` in a job) makes that field
INVALID where it is missing, so the job is not also told that it has no prompt.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .schema import REQUEST_FIELDS

JsonPath = tuple[Any, ...]
SETTINGS_KEYS = ("$schema", "version", "name", "provider", "run", "output", "sandbox")
# Keys whose value is one job field (a value, or a list of values when it sweeps).
FIELD_KEYS = (*REQUEST_FIELDS, "id", "tags", "repeat")


class _Invalid:
    """The one INVALID value: there, but refused."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()
_DROP = object()


def is_invalid(value: Any) -> bool:
    return value is INVALID


def salvage(
    data: dict[str, Any], refused: Iterable[JsonPath], unknown: Iterable[tuple[JsonPath, str]]
) -> dict[str, Any]:
    """A copy of `data` with each refused value INVALID (a setting: dropped) and each unknown
    key dropped. `unknown` holds (path of the key, the key it likely means, or "")."""
    out = data
    for path in refused:
        granule = _granule(tuple(path))
        if granule:
            out = _put(out, granule, _DROP if granule[0] in SETTINGS_KEYS else INVALID)
    for path, meant in unknown:
        out = _put(out, tuple(path), _DROP)
        out = _mark_meant(out, tuple(path[:-1]), meant)
    return out


def _granule(path: JsonPath) -> JsonPath:
    """The value a refusal sets aside: a setting (run.concurrency), one value of a field (the
    field, or its list item when it sweeps), or the container that is wrong as a whole."""
    if not path:
        return ()
    if path[0] in SETTINGS_KEYS:
        return path[:2]
    field = _field_position(path)
    if field is None:
        return path
    end = field + 2 if len(path) > field + 1 and isinstance(path[field + 1], int) else field + 1
    return path[:end]


def _field_position(path: JsonPath) -> int | None:
    """Where the job field is in `path`: model, defaults.F, matrix.F, jobs[i].F, jobs[i].matrix.F."""
    if path[0] == "model":
        return 0
    if path[0] in ("defaults", "matrix"):
        return 1 if len(path) > 1 else None
    if path[0] == "jobs" and len(path) > 2:
        if path[2] != "matrix":
            return 2
        return 3 if len(path) > 3 else None
    return None


def _mark_meant(data: dict[str, Any], parent: JsonPath, meant: str) -> dict[str, Any]:
    """Make the field an unknown key likely means INVALID where it is missing."""
    if not meant or (parent and parent[0] in SETTINGS_KEYS) or (not parent and meant in SETTINGS_KEYS):
        return data
    if not parent and meant in REQUEST_FIELDS and meant != "model":  # belongs under defaults
        defaults = data.get("defaults")
        if defaults is None:
            return {**data, "defaults": {meant: INVALID}}
        parent = ("defaults",)
    node = value_at(data, parent)
    if isinstance(node, dict) and meant not in node:
        return _put(data, (*parent, meant), INVALID)
    return data


def value_at(node: Any, path: JsonPath) -> Any:
    """The value at `path` in `node`, or None when it is not there."""
    for part in path:
        found = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if not found:
            return None
        node = node[part]
    return node


def _put(node: Any, path: JsonPath, value: Any) -> Any:
    """`node` with the value at `path` replaced (or dropped, or added as the last key of a
    mapping), copying only along the path. A path that is not there leaves `node` as it is."""
    head, rest = path[0], path[1:]
    if isinstance(node, dict) and (head in node or not rest):
        copy = dict(node)
        inner = _put(node[head], rest, value) if rest else value
        if inner is _DROP:
            copy.pop(head, None)
        else:
            copy[head] = inner
        return copy
    if isinstance(node, list) and isinstance(head, int) and 0 <= head < len(node):
        copy = list(node)
        inner = _put(node[head], rest, value) if rest else value
        copy[head] = INVALID if inner is _DROP else inner
        return copy
    return node
