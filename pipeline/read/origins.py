"""Where each value of a job row was written, so a rule on expanded rows points at the field.

A row's value for a field comes from the job itself (`jobs[0].ratio`, or its matrix), from
the top-level `matrix` or `defaults`, from the top-level `model`, from `per_model`, or from a
CSV cell. A problem
found on the expanded rows is reported there: `m.yaml:7: jobs[0].ratio` for a ratio written on
line 7, `m.yaml:3: matrix.ratio[1]` for one that came from the matrix, `prompts.csv:4: ratio`
for a CSV cell (its row's line and its column), once per place however many rows share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import Problem
from .expand import fallback_for
from .jobframe import Row
from .manifest import Document
from .salvage import value_at
from .schema import REQUEST_FIELDS, field_path

JsonPath = tuple[Any, ...]


@dataclass(frozen=True)
class Origins:
    document: Document
    fallbacks: dict[str, JsonPath | None]  # field -> where a job that does not set it takes it from
    # A model's canonical id -> its key under per_model, as written (contracts.py fills it).
    per_model_keys: dict[str, Any] = field(default_factory=dict)
    # Model-specific fields of `defaults` (every job's, unless its model or itself says otherwise).
    default_extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, document: Document, defaults: dict, matrix: dict, model: Any) -> Origins:
        extras = {k: v for k, v in defaults.items() if k not in REQUEST_FIELDS}
        fallbacks = {f: fallback_for(f, defaults, matrix, model)[0] for f in REQUEST_FIELDS}
        return cls(document, fallbacks, default_extras=extras)

    def locate_extra(self, row: Mapping[str, Any], name: str) -> tuple[str, str]:
        """(where, field) of a model-specific field of `row`: its job's, per_model's or defaults'."""
        key = row.get("key")
        if key is not None and name in (value_at(self.document.data, key) or {}):
            base: JsonPath = (*key, name)
        elif name in (
            value_at(self.document.data, ("per_model", self.per_model_keys.get(row["model"]))) or {}
        ):
            base = ("per_model", self.per_model_keys[row["model"]], name)
        elif name in self.default_extras:
            base = ("defaults", name)
        else:
            return row["source"], _joined(row["path"], name)
        return self.document.where(base), field_path(base)

    def locate(self, row: Mapping[str, Any], column: str, value: Any = None) -> tuple[str, str]:
        """(where, field) of `value` of `column` in `row` (a job frame or table row)."""
        if column not in REQUEST_FIELDS:
            return row["source"], _joined(row["path"], column)
        bit = REQUEST_FIELDS.index(column)
        if int(row.get("pm") or 0) >> bit & 1 and row.get("model") in self.per_model_keys:
            base = ("per_model", self.per_model_keys[row["model"]], column)
        elif int(row["own"]) >> bit & 1:
            key = row["key"]
            if key is None:  # a CSV cell
                return row["source"], column
            matrix = value_at(self.document.data, (*key, "matrix"))
            in_matrix = isinstance(matrix, dict) and column in matrix
            base = (*key, "matrix", column) if in_matrix else (*key, column)
        else:
            base = self.fallbacks[column]
            if base is None:
                return row["source"], _joined(row["path"], column)
        node = value_at(self.document.data, base)
        if isinstance(node, list):
            same = (i for i, item in enumerate(node) if type(item) is type(value) and item == value)
            index = next(same, None)
            base = base if index is None else (*base, index)
        return self.document.where(base), field_path(base)

    def problems(self, rows: Iterable[Row], column: str, message: str) -> list[Problem]:
        """`message` at the origin of `column` in each of `rows`, once per distinct origin."""
        distinct: dict[tuple[Any, ...], Row] = {}
        for row in rows:
            origin = (row["key"], row["source"], row["own"], row.get("pm"), row.get("model"))
            distinct.setdefault((*origin, _hashable(row[column])), row)
        found = [Problem(*self.locate(row, column, row[column]), message) for row in distinct.values()]
        return list(dict.fromkeys(found))


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _joined(path: str, column: str) -> str:
    return f"{path}.{column}" if path else column
