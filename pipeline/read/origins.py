"""Where each value of a job row was written, so a rule on expanded rows points at the field.

A row's value for a field comes from the job itself (`jobs[0].ratio`, or its matrix), from
the top-level `matrix` or `defaults`, from the top-level `model`, or from a CSV cell. A problem
found on the expanded rows is reported there: `m.yaml:7: jobs[0].ratio` for a ratio written on
line 7, `m.yaml:3: matrix.ratio[1]` for one that came from the matrix, `prompts.csv:4: ratio`
for a CSV cell (its row's line and its column), once per place however many rows share it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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

    @classmethod
    def of(cls, document: Document, defaults: dict, matrix: dict, model: Any) -> Origins:
        return cls(document, {f: fallback_for(f, defaults, matrix, model)[0] for f in REQUEST_FIELDS})

    def locate(self, row: Mapping[str, Any], column: str, value: Any = None) -> tuple[str, str]:
        """(where, field) of `value` of `column` in `row` (a job frame or table row)."""
        if column not in REQUEST_FIELDS:
            return row["source"], _joined(row["path"], column)
        if int(row["own"]) >> REQUEST_FIELDS.index(column) & 1:
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
            distinct.setdefault((row["key"], row["source"], row["own"], _hashable(row[column])), row)
        found = [Problem(*self.locate(row, column, row[column]), message) for row in distinct.values()]
        return list(dict.fromkeys(found))


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _joined(path: str, column: str) -> str:
    return f"{path}.{column}" if path else column
