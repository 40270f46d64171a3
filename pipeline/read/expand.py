"""Job frame -> job rows: one row per generation, with its seed and a stable job id. Pure.

Precedence for each request field, most specific first: the job's own value (or its matrix),
the top-level matrix, `defaults`, the top-level `model`, the schema's default. A list at any
level is a sweep; sweeps multiply (the cartesian product per job, in EXPLODE_ORDER). Seeds are
innermost so a seed sweep of one prompt stays together.

The expansion is plain Python, so `validate` pays for no pandas import: the job frame is a
list of rows (dicts), the expanded table a dict of columns (lists, one value per generation).
`plan` and `run` get their pandas job table from those same columns (job_table).

The job id is a hash of the canonical request (images by content digest, not by path), so the
same request is the same job in every run and every manifest; identical rows are reported and
run once. A job without a seed gets one derived from the same hash and keeps it forever.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .jobframe import FRAME_COLUMNS, Row
from .schema import REQUEST_FIELDS, definition

if TYPE_CHECKING:
    import pandas as pd

MAX_JOBS = 2_000_000
# Outer loop first; seed and sample innermost.
EXPLODE_ORDER = (
    "model",
    "prompt",
    "image_url",
    "last_image_url",
    "ratio",
    "duration",
    "watermark",
    "seed",
    "sample",
)
TABLE_COLUMNS = (
    "index",
    "job_id",
    "id",
    *REQUEST_FIELDS,
    "seed_chosen",
    "sample",
    "asked_duration",
    "asked_ratio",
    "extra",
    "image_sha256",
    "last_image_sha256",
    "tags",
    "source",
)
# A model without a duration field has none: the column is then nullable (see job_table).
INTEGER_COLUMNS = ("index", "seed", "duration", "sample")
# The job table as plain Python: column name -> one value per job, in TABLE_COLUMNS order.
JobColumns = dict[str, list[Any]]
# A column only while ids are made: the model a superseded model's job was written for.
ID_MODEL = "id_model"
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def schema_default(field: str) -> Any:
    return definition(field).get("default") if field in ("model", "ratio", "duration") else None


def fallback_for(
    field: str, defaults: dict[str, Any], matrix: dict[str, Any], model: str | None
) -> tuple[tuple[str, ...] | None, Any]:
    """(where in the document, value) of `field` for a job that does not set it; where is None
    for the schema's default."""
    if field in matrix:
        return ("matrix", field), _seed_list(matrix[field]) if field == "seed" else matrix[field]
    if field in defaults:
        return ("defaults", field), defaults[field]
    if field == "model" and model is not None:
        return ("model",), model
    return None, schema_default(field)


def resolve_fields(
    jobs: list[Row], defaults: dict[str, Any], matrix: dict[str, Any], model: str | None
) -> list[Row]:
    """Fill each job's missing fields by precedence; seed ranges become lists; add `sample`,
    and `own`: a bitmask of the request fields the job sets itself (bit i: REQUEST_FIELDS[i]).
    The rows are updated in place (a frame of 100,000 CSV rows is not copied) and returned."""
    fallbacks = {field: fallback_for(field, defaults, matrix, model)[1] for field in REQUEST_FIELDS}
    for row in jobs:
        own = 0
        for bit, field in enumerate(REQUEST_FIELDS):
            value = row[field]
            if value is None:
                row[field] = fallbacks[field]
            else:
                own |= 1 << bit
                if field == "seed":
                    row[field] = _seed_list(value)
        row["own"] = own
        repeat = 1 if row["repeat"] is None else row["repeat"]
        row["sample"] = list(range(repeat)) if isinstance(repeat, int) and repeat > 1 else 0
    return jobs


def _seed_list(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"from", "count"}:
        start, count = value["from"], value["count"]
        if isinstance(start, int) and isinstance(count, int):
            return list(range(start, start + count))
    return value


def expansion_size(frame: list[Row]) -> int:
    """How many rows `explode` would make, without making them."""
    return sum(math.prod(len(row[f]) for f in EXPLODE_ORDER if isinstance(row[f], list)) for row in frame)


def explode(frame: list[Row]) -> JobColumns:
    """One row per generation, as columns: the cartesian product of each job's list cells,
    numbered. Columns, not a dict per row: 2,000,000 rows of dicts would take gigabytes."""
    names = list(frame[0]) if frame else [*FRAME_COLUMNS, "own", "sample"]
    table: JobColumns = {name: [] for name in names}
    for row in frame:
        swept = [field for field in EXPLODE_ORDER if isinstance(row[field], list)]
        # An empty sweep still leaves its job one row, without a value (as pandas' explode did).
        products = list(itertools.product(*(row[field] or [None] for field in swept)))
        values = dict(zip(swept, zip(*products, strict=True), strict=True)) if swept else {}
        for name, column in table.items():
            column.extend(values[name] if name in values else itertools.repeat(row[name], len(products)))
    table["index"] = list(range(len(table["source"])))
    return table


def row_at(table: JobColumns, index: int) -> Row:
    """One row of a column table, as a dict (for the few rows a problem is reported on)."""
    return {name: column[index] for name, column in table.items()}


def rows_at(table: JobColumns, indices: Iterable[int]) -> Iterator[Row]:
    return (row_at(table, index) for index in indices)


def canonical_requests(
    table: JobColumns, image_keys: dict[str, str], *, with_seed: bool, indices: list[int] | None = None
) -> list[str]:
    """The canonical text of each row's request (of the rows at `indices`, or all); images
    stand as their content key."""
    fields = ("model", "prompt", "ratio", "duration", "seed", "watermark", "image_url", "last_image_url")
    columns = [table[field] for field in fields] + [table["sample"], table["extra"]]
    if ID_MODEL in table:  # superseded models' jobs: identified by the model they were written for
        written = zip(table[ID_MODEL], table["model"], strict=True)
        columns[0] = [asked or model for asked, model in written]
    if indices is not None:
        columns = [[column[i] for i in indices] for column in columns]
    encode, image = _ENCODE, image_keys.get
    texts = []
    for model, prompt, ratio, duration, seed, watermark, first, last, sample, extra in zip(
        *columns, strict=True
    ):
        text = encode(
            [
                model,
                prompt,
                ratio,
                duration,
                seed if with_seed else None,
                watermark,
                None if first is None else image(first),
                None if last is None else image(last),
            ]
        )
        # Model-specific fields only when there are some: every older job keeps its id.
        if extra:
            text += "+" + json.dumps(extra, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        texts.append(f"{text}#{sample}" if sample else text)
    return texts


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def assign_seeds_and_ids(table: JobColumns, image_keys: dict[str, str]) -> JobColumns:
    """Choose a seed for rows without one (from the request), then hash each request into
    job_id. The columns are updated in place (explode made them) and returned."""
    seeds = table["seed"]
    unseeded = [index for index, seed in enumerate(seeds) if seed is None]
    chosen = [False] * len(seeds)
    texts = canonical_requests(table, image_keys, with_seed=False, indices=unseeded)
    for index, text in zip(unseeded, texts, strict=True):
        chosen[index] = True
        seeds[index] = int(_digest("seed:" + text)[:8], 16)
    table["seed_chosen"] = chosen
    # Whole numbers, as the job table holds them: a YAML 7.0 is the seed 7 in the job id.
    for name in ("seed", "duration", "sample"):
        table[name] = [None if value is None else int(value) for value in table[name]]
    digest = _content_digest(image_keys).get
    for name in ("image_url", "last_image_url"):
        sha = name.removesuffix("url") + "sha256"
        table[sha] = [None if ref is None else digest(ref) for ref in table[name]]
    table["job_id"] = [_digest(text)[:16] for text in canonical_requests(table, image_keys, with_seed=True)]
    table.pop(ID_MODEL, None)
    return table


def _content_digest(image_keys: dict[str, str]) -> dict[str, str]:
    return {ref: key[len("sha256:") :] for ref, key in image_keys.items() if key.startswith("sha256:")}


def drop_duplicates(table: JobColumns) -> tuple[JobColumns, list[str]]:
    """Keep the first row of each job_id; say where each dropped row repeats an earlier one."""
    first_source: dict[str, str] = {}
    kept, notes = [], []
    for index, (job_id, source) in enumerate(zip(table["job_id"], table["source"], strict=True)):
        if job_id in first_source:
            notes.append(f"{source}: same request as {first_source[job_id]} (job {job_id}); it runs once")
        else:
            first_source[job_id] = source
            kept.append(index)
    if not notes:
        return table, []
    out = {name: [column[index] for index in kept] for name, column in table.items()}
    out["index"] = list(range(len(kept)))
    return out, notes


def finish(table: JobColumns) -> JobColumns:
    """The public job table as plain columns: TABLE_COLUMNS in order, tags joined, id never missing."""
    columns = {name: table[name] for name in TABLE_COLUMNS}
    columns["tags"] = ["|".join(tags) if isinstance(tags, list) else (tags or "") for tags in columns["tags"]]
    columns["id"] = ["" if label is None else label for label in columns["id"]]
    return columns


def job_table(columns: JobColumns) -> pd.DataFrame:
    """The job table `plan` and `run` work on, as a pandas frame of the finished columns, typed
    as it has always been (ids and tags inferred, a missing image digest NaN)."""
    import pandas as pd  # only here: `validate` never builds the table

    frame = pd.DataFrame(
        {
            name: values if name in ("job_id", "tags") else pd.Series(values, dtype=object)
            for name, values in columns.items()
        }
    )
    for name in ("image_sha256", "last_image_sha256"):
        frame[name] = [math.nan if digest is None else digest for digest in columns[name]]
    # Model-specific fields as JSON text, so the table writes as CSV, JSONL or Parquet alike.
    texts: dict[int, str] = {}
    frame["extra"] = [
        None if extra is None else texts.setdefault(id(extra), json.dumps(extra, sort_keys=True))
        for extra in columns["extra"]
    ]
    for name in INTEGER_COLUMNS:
        whole = frame[name].notna().all()
        frame[name] = frame[name].astype("int64" if whole else "Int64")
    frame["seed_chosen"] = frame["seed_chosen"].astype(bool)
    return frame
