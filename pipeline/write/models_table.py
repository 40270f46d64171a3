"""`vidpipe models`: the catalogue's video models as records and as a table that fits 80 columns. Pure.

A record is what `--json` prints, one per model, with stable keys (README: vidpipe models):
`id`, `aliases`, `path`, `durations`, `ratios`, `resolutions` (lists, or null when the model
publishes no values), `seed`, `last_frame` and `legacy_path` (booleans; the last: sent on the
legacy Runway path, the default for the two Runway models). Once the service's catalogue has
been read (`--refresh`, or a plan or run that cached it), `with_availability`
adds `price` (a short text such as `$0.05/s`, or null when the model is not listed),
`pricing` (the block as published), `price_source`, and `deprecation` (`{status, shutdown_at,
replaced_by}` or null); the table then has a price column and notes for deprecated models.

The ids run to 46 characters and are never cut (they are what a manifest names), so in a wide
listing the ratios and resolutions give way: a cell keeps the values that fit and says how many
it left out (`16:9,9:16+4`). A filter shows fewer, shorter ids and so more of each cell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..catalogue.deprecations import Deprecation
from ..catalogue.pricing import PriceBook, describe_pricing

__all__ = ["heading", "matching", "no_match", "record", "table_lines", "with_availability"]

WIDTH = 80
GAP = "  "
MARK = "*"
# The narrowest a shrinking column may get: its header, and at least one ratio and a count ("16:9+5").
MIN_FLEX = 6
HEADERS = {
    "id": "model",
    "seconds": "seconds",
    "price": "price",
    "seed": "seed",
    "last": "last",
    "ratios": "ratios",
    "resolutions": "resolutions",
    "path": "path",
}
FIXED = ("id", "seconds", "seed", "last")
# Given room in this order; the first to be dropped when there is none is the last.
FLEX = ("ratios", "resolutions")


def record(entry: Mapping[str, Any], legacy: Iterable[str] | Mapping[str, Any]) -> dict[str, Any]:
    """The facts `vidpipe models` shows of one catalogue entry. A model of `legacy` (models.MODELS:
    id -> its legacy facts) shows what its default path, the legacy Runway one, takes: its
    durations, ratios, seed and last frame, and no resolutions (the legacy path sends none); on
    run.endpoint: universal it follows its published schema instead."""
    allowed = entry["allowed"]
    out = {
        "id": entry["id"],
        "aliases": list(entry["aliases"]),
        "path": entry["path"],
        "durations": _durations(allowed.get("duration")),
        "ratios": _values(allowed.get("ratio")),
        "resolutions": _values(allowed.get("resolution")),
        "seed": bool(entry["seed"]),
        "last_frame": "last_image_url" in entry["fields"],
        "legacy_path": entry["id"] in set(legacy),
    }
    facts = legacy.get(entry["id"]) if isinstance(legacy, Mapping) else None
    if facts is not None:
        out["durations"] = list(facts.durations) or None
        out["ratios"] = list(facts.ratios) or None
        out["resolutions"] = None
        out["seed"] = bool(facts.seed)
        out["last_frame"] = bool(facts.last_frame)
    return out


def with_availability(
    item: Mapping[str, Any], book: PriceBook | None, feed: Mapping[str, Deprecation]
) -> dict[str, Any]:
    """`item` with its price from `book` and its entry in the deprecation feed, if any."""
    names = (item["id"], *item["aliases"])
    out = dict(item)
    if book is not None:
        block = next((book.block(n) for n in names if book.has(n)), None)
        listed = any(book.has(n) for n in names)
        out["price"] = describe_pricing(block) if listed else None
        out["pricing"] = block if listed else None
        out["price_source"] = book.source
    entry = next((feed[n.casefold()] for n in names if n.casefold() in feed), None)
    out["deprecation"] = (
        {"status": entry.status, "shutdown_at": entry.shutdown_at, "replaced_by": entry.replaced_by}
        if entry
        else None
    )
    return out


def matching(records: Sequence[Mapping[str, Any]], words: Sequence[str]) -> list[Mapping[str, Any]]:
    """The records every word names: a case-insensitive substring of the id or of an alias."""
    folded = [word.casefold() for word in words]
    return [
        item
        for item in records
        if all(any(word in name.casefold() for name in (item["id"], *item["aliases"])) for word in folded)
    ]


def no_match(words: Sequence[str], total: int, closest: Callable[[str], list[str]]) -> str:
    """The error for a filter no model matches: the ids closest to it, or to one of its words."""
    wanted = " ".join(words)
    close = next((found for word in (wanted, *words) if (found := closest(word))), [])
    hint = f"closest: {', '.join(close)}" if close else f"`vidpipe models` lists all {total}"
    return f"no video model matches {wanted!r}; {hint}"


def heading(shown: int, total: int, source: Mapping[str, str]) -> str:
    """The first line: how many models, and the docs commit the catalogue was built from."""
    count = f"{total} video models" if shown == total else f"{shown} of {total} video models"
    return f"{count} (catalogue of {source['repository']} at {source['commit'][:12]})"


def table_lines(records: Sequence[Mapping[str, Any]], width: int = WIDTH) -> list[str]:
    """A header row and one line per record, each at most `width` long, then the notes."""
    cells = [_cells(item) for item in records]
    natural = {key: max(len(HEADERS[key]), *(_text_len(row[key]) for row in cells)) for key in HEADERS}
    fixed = (*FIXED, "price") if any("price" in item for item in records) else FIXED
    widths = {key: natural[key] for key in fixed}
    room = width - len(MARK) - 1 - sum(widths.values()) - len(GAP) * (len(fixed) - 1)
    # A column of dashes would only take room from the other: a note says it is empty instead.
    listed = [key for key in FLEX if any(row[key] for row in cells)]
    widths |= _flex_widths(listed, natural, room)
    room -= sum(len(GAP) + widths[key] for key in FLEX if key in widths)
    if all(widths.get(key) == natural[key] for key in listed) and len(GAP) + natural["path"] <= room:
        widths["path"] = natural["path"]
    lines = [_row(HEADERS, widths)] + [_row(_fitted(row, widths), widths) for row in cells]
    return lines + _notes(records, cells, widths)


def _durations(allowed: Mapping[str, Any] | None) -> list[int] | None:
    if not allowed:
        return None
    if "enum" in allowed:
        return list(allowed["enum"])
    if allowed.get("type") == "integer" and "minimum" in allowed and "maximum" in allowed:
        return list(range(allowed["minimum"], allowed["maximum"] + 1))
    return None


def _values(allowed: Mapping[str, Any] | None) -> list[Any] | None:
    return list(allowed["enum"]) if allowed and "enum" in allowed else None


def _cells(item: Mapping[str, Any]) -> dict[str, Any]:
    """Each column's text, but ratios and resolutions as lists: they are cut to fit later."""
    return {
        "mark": MARK if item["legacy_path"] else " ",
        "id": item["id"],
        "seconds": _seconds(item["durations"]),
        "price": item.get("price") or "-",
        "seed": "yes" if item["seed"] else "no",
        "last": "yes" if item["last_frame"] else "no",
        "ratios": [str(v) for v in item["ratios"] or ()],
        "resolutions": [str(v) for v in item["resolutions"] or ()],
        "path": item["path"],
    }


def _seconds(durations: Sequence[int] | None) -> str:
    """`5,10`; a run of three or more whole seconds as `3-15`; `-` when the model lists none."""
    if not durations:
        return "-"
    parts: list[str] = []
    ordered = sorted(set(durations))
    start = previous = ordered[0]
    for value in [*ordered[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        parts.append(
            f"{start}-{previous}" if previous - start >= 2 else ",".join(map(str, range(start, previous + 1)))
        )
        if value is not None:
            start = previous = value
    return ",".join(parts)


def _flex_widths(listed: Sequence[str], natural: Mapping[str, int], room: int) -> dict[str, int]:
    """Widths for the shrinking columns within `room`, shared evenly; one with no room is left out."""
    least = {key: max(MIN_FLEX, len(HEADERS[key])) for key in listed}
    shown = list(listed)
    while shown and room < sum(len(GAP) + least[key] for key in shown):
        shown.pop()
    widths = {key: least[key] for key in shown}
    spare = room - sum(len(GAP) + least[key] for key in shown)
    while spare > 0 and (wanting := [key for key in shown if widths[key] < natural[key]]):
        share = max(1, spare // len(wanting))
        for key in wanting:
            grown = min(share, natural[key] - widths[key], spare)
            widths[key] += grown
            spare -= grown
    return widths


def _text_len(cell: str | Sequence[str]) -> int:
    return len(cell) if isinstance(cell, str) else len(",".join(cell)) or 1


def _fitted(row: Mapping[str, Any], widths: Mapping[str, int]) -> dict[str, str]:
    fitted = dict(row)
    for key in FLEX:
        if key in widths:
            fitted[key] = _cut(row[key], widths[key])
    return fitted


def _cut(values: Sequence[str], width: int) -> str:
    """The values that fit in `width`, then `+N` for the N left out; `-` when there are none."""
    if not values:
        return "-"
    for kept in range(len(values), -1, -1):
        text = ",".join(values[:kept]) + (f"+{len(values) - kept}" if kept < len(values) else "")
        if len(text) <= width:
            return text
    return f"+{len(values)}"


def _row(cells: Mapping[str, str], widths: Mapping[str, int]) -> str:
    """The mark (or a space), then the columns that have a width, in HEADERS' order."""
    shown = GAP.join(f"{cells[key]:<{widths[key]}}" for key in HEADERS if key in widths)
    return f"{cells.get('mark', ' ')} {shown}".rstrip()


def _deprecation_note(model_id: str, entry: Mapping[str, Any]) -> str:
    status = entry["status"]
    if status == "superseded":
        return f"{model_id}: superseded by {entry['replaced_by']} (sent as it)"
    said = f"{model_id}: {status}"
    said += (
        f", shuts down on {entry['shutdown_at']}" if status == "deprecated" and entry["shutdown_at"] else ""
    )
    return said + (f"; use {entry['replaced_by']}" if entry["replaced_by"] else "")


def _notes(
    records: Sequence[Mapping[str, Any]], cells: Sequence[Mapping[str, Any]], widths: Mapping[str, int]
) -> list[str]:
    notes = []
    for item in records:
        if item.get("deprecation"):
            notes.append(_deprecation_note(item["id"], item["deprecation"]))
    if any(item["legacy_path"] for item in records):
        notes.append(f"{MARK} legacy Runway path, its rules shown (run.endpoint: universal: its schema).")
    cut = any(_text_len(row[key]) > widths[key] for row in cells for key in FLEX if key in widths)
    empty = [HEADERS[key] for key in FLEX if not any(row[key] for row in cells)]
    hidden = [HEADERS[key] for key in FLEX if key not in widths and HEADERS[key] not in empty]
    if empty:
        notes.append(f"None of these lists {' or '.join(empty)}.")
    if cut or hidden:
        said = ["+N: N more values"] if cut else []
        said += [f"no room for {' or '.join(hidden)}"] if hidden else []
        text = "; ".join(said)
        notes.append(f"{text[0].upper()}{text[1:]}. A filter shows more, --json all.")
    if "path" not in widths:
        usual = max({item["path"] for item in records}, key=[item["path"] for item in records].count)
        others = [item for item in records if item["path"] != usual]
        notes.append(f"Served on {usual}" + (", except:" if others else "."))
        notes += [f"  {item['id']}: {item['path']}" for item in others]
    return notes
