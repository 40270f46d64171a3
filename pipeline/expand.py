"""Job frame -> job table: one row per generation, with its seed and a stable job id. Pure.

Precedence for each request field, most specific first: the job's own value (or its matrix),
the top-level matrix, `defaults`, the top-level `model`, the schema's default. A list at any
level is a sweep; sweeps multiply (pandas `explode` column after column gives the cartesian
product per job). Seeds are innermost so a seed sweep of one prompt stays together.

The job id is a hash of the canonical request (images by content digest, not by path), so the
same request is the same job in every run and every manifest; identical rows are reported and
run once. A job without a seed gets one derived from the same hash and keeps it forever.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

from .schema import REQUEST_FIELDS, definition

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
    "image_sha256",
    "last_image_sha256",
    "tags",
    "source",
)


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
    jobs: pd.DataFrame, defaults: dict[str, Any], matrix: dict[str, Any], model: str | None
) -> pd.DataFrame:
    """Fill each job's missing fields by precedence; seed ranges become lists; add `sample`,
    and `own`: a bitmask of the request fields the job sets itself (bit i: REQUEST_FIELDS[i])."""
    frame = jobs.copy()
    own = np.zeros(len(frame), dtype=np.int64)
    for bit, field in enumerate(REQUEST_FIELDS):
        _, fallback = fallback_for(field, defaults, matrix, model)
        column = frame[field]
        own |= column.notna().to_numpy(dtype=np.int64) << bit
        if field == "seed":
            column = column.map(_seed_list, na_action="ignore")
        if fallback is not None:
            filler = pd.Series([fallback] * len(frame), index=frame.index, dtype=object)
            column = column.where(column.notna(), filler)
        frame[field] = column.astype(object)
    frame["own"] = own
    repeats = frame["repeat"].where(frame["repeat"].notna(), 1)
    frame["sample"] = [list(range(r)) if isinstance(r, int) and r > 1 else 0 for r in repeats]
    return frame


def _seed_list(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"from", "count"}:
        start, count = value["from"], value["count"]
        if isinstance(start, int) and isinstance(count, int):
            return list(range(start, start + count))
    return value


def expansion_size(frame: pd.DataFrame) -> int:
    """How many rows `explode` would make, without making them."""
    sizes = np.ones(len(frame), dtype=np.int64)
    for field in EXPLODE_ORDER:
        column = frame[field]
        is_list = column.map(lambda v: isinstance(v, list))
        if is_list.any():
            lengths = column[is_list].map(len).to_numpy(dtype=np.int64)
            sizes[is_list.to_numpy()] *= lengths
    return int(sizes.sum())


def explode(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per generation: the cartesian product of each job's list cells."""
    out = frame
    for field in EXPLODE_ORDER:
        if out[field].map(lambda v: isinstance(v, list)).any():
            out = out.explode(field)
    out = out.reset_index(drop=True)
    out["index"] = np.arange(len(out))
    return out


def canonical_requests(table: pd.DataFrame, image_keys: dict[str, str], *, with_seed: bool) -> list[str]:
    """The canonical text of each row's request; images stand as their content key."""
    images = table["image_url"].map(image_keys, na_action="ignore")
    last_images = table["last_image_url"].map(image_keys, na_action="ignore")
    seeds = table["seed"] if with_seed else pd.Series(None, index=table.index, dtype=object)
    columns = [
        table["model"],
        table["prompt"],
        table["ratio"],
        table["duration"],
        seeds,
        table["watermark"],
        images,
        last_images,
    ]
    plain = [_python_values(column) for column in columns]
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    return [
        f"{encode(list(values))}#{sample}" if sample else encode(list(values))
        for *values, sample in zip(*plain, table["sample"], strict=True)
    ]


def _python_values(column: pd.Series) -> list[Any]:
    """Column values as plain Python objects, None for every kind of missing."""
    values = column.astype(object).where(column.notna(), None)
    return [_plain(v) for v in values]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def assign_seeds_and_ids(table: pd.DataFrame, image_keys: dict[str, str]) -> pd.DataFrame:
    """Choose a seed for rows without one (from the request), then hash each request into job_id."""
    out = table.copy()
    missing = out["seed"].isna()
    out["seed_chosen"] = missing.astype(bool)
    if missing.any():
        unseeded = canonical_requests(out[missing], image_keys, with_seed=False)
        out.loc[missing, "seed"] = [int(_digest("seed:" + text)[:8], 16) for text in unseeded]
    out["seed"] = out["seed"].astype(np.int64)
    out["duration"] = out["duration"].astype(np.int64)
    out["sample"] = out["sample"].astype(np.int64)
    out["job_id"] = [_digest(text)[:16] for text in canonical_requests(out, image_keys, with_seed=True)]
    out["image_sha256"] = out["image_url"].map(_content_digest(image_keys), na_action="ignore")
    out["last_image_sha256"] = out["last_image_url"].map(_content_digest(image_keys), na_action="ignore")
    return out


def _content_digest(image_keys: dict[str, str]) -> dict[str, str]:
    return {ref: key[len("sha256:") :] for ref, key in image_keys.items() if key.startswith("sha256:")}


def drop_duplicates(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep the first row of each job_id; say where each dropped row repeats an earlier one."""
    repeated = table["job_id"].duplicated(keep="first")
    if not repeated.any():
        return table, []
    first_source = table.groupby("job_id", sort=False)["source"].transform("first")
    notes = [
        f"{source}: same request as {first} (job {job_id}); it runs once"
        for source, first, job_id in zip(
            table.loc[repeated, "source"], first_source[repeated], table.loc[repeated, "job_id"], strict=True
        )
    ]
    kept = table[~repeated].reset_index(drop=True)
    kept["index"] = np.arange(len(kept))
    return kept, notes


def finish(table: pd.DataFrame) -> pd.DataFrame:
    """The public job table: documented columns in a fixed order, readable dtypes."""
    out = table.copy()
    out["tags"] = out["tags"].map(lambda t: "|".join(t) if isinstance(t, list) else (t or ""))
    out["id"] = out["id"].where(out["id"].notna(), "")
    return out[list(TABLE_COLUMNS)]
