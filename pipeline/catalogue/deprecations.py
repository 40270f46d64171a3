"""Which models are going away, read from `GET /v1/models/deprecations`. Pure.

Each entry is `{id, aliases, status, deprecated_at, shutdown_at, replaced_by, reason}`, and a
manifest's model matches it by id or alias together (case-insensitive), as the service does:

- `deprecated`: still serving, shutdown announced: a warning with the date;
- `superseded`: still answers, as an alias of `replaced_by`: the job is sent, and recorded,
  under the canonical id;
- `withdrawn`: requests answer 404: nothing may be sent; the replacement is named.

The feed is untrusted: entries that cannot be read are skipped, and every string shown is cut
short, so an odd answer means fewer findings, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STATUSES = ("deprecated", "superseded", "withdrawn")
MAX_ENTRIES = 5_000
MAX_TEXT = 200


@dataclass(frozen=True)
class Deprecation:
    model_id: str
    status: str
    replaced_by: str | None = None
    shutdown_at: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Finding:
    """What the feed says about one model a manifest names."""

    asked: str
    model_id: str  # what to send and record: the replacement of a superseded name
    status: str | None  # None: the feed says nothing about it
    message: str = ""

    @property
    def stops(self) -> bool:
        return self.status == "withdrawn"


def deprecations(answer: object) -> dict[str, Deprecation]:
    """Each listed id and alias (case-folded) -> its entry; accepts `{"data": [...]}` or a list."""
    data = answer.get("data") if isinstance(answer, Mapping) else answer
    found: dict[str, Deprecation] = {}
    for entry in data[:MAX_ENTRIES] if isinstance(data, list) else ():
        parsed = _entry(entry)
        if parsed is None:
            continue
        aliases = entry.get("aliases")
        names = [parsed.model_id, *(a for a in aliases[:50] if _text(a))] if isinstance(aliases, list) else []
        for name in names or [parsed.model_id]:
            found.setdefault(name.casefold(), parsed)
    return found


def resolve(model: str, feed: Mapping[str, Deprecation]) -> Finding:
    """What to send for `model`, and what to tell the user about it."""
    entry = feed.get(str(model).casefold())
    if entry is None:
        return Finding(model, model, None)
    replacement = f"; use {entry.replaced_by}" if entry.replaced_by else ""
    why = f" ({entry.reason})" if entry.reason else ""
    if entry.status == "withdrawn":
        return Finding(
            model,
            model,
            "withdrawn",
            f"model {model} is withdrawn: the service answers 404{replacement}{why}",
        )
    if entry.status == "superseded" and entry.replaced_by:
        return Finding(
            model,
            entry.replaced_by,
            "superseded",
            f"model {model} is superseded by {entry.replaced_by}: sent and recorded as {entry.replaced_by}",
        )
    shutdown = (
        f"shuts down on {entry.shutdown_at}" if entry.shutdown_at else "is to shut down (no date given)"
    )
    return Finding(
        model, model, "deprecated", f"model {model} is deprecated and {shutdown}{replacement}{why}"
    )


def findings(models: Iterable[str], feed: Mapping[str, Deprecation]) -> list[Finding]:
    """The feed's findings for each distinct model, in the order given; silent models left out."""
    return [f for f in (resolve(m, feed) for m in dict.fromkeys(models)) if f.status is not None]


def _entry(entry: object) -> Deprecation | None:
    if not isinstance(entry, Mapping) or not _text(entry.get("id")) or entry.get("status") not in STATUSES:
        return None
    return Deprecation(
        model_id=entry["id"],
        status=entry["status"],
        replaced_by=_short(entry.get("replaced_by")),
        shutdown_at=_short(entry.get("shutdown_at")),
        reason=_short(entry.get("reason")),
    )


def _short(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = " ".join(value.split())
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _text(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_TEXT and value.isprintable()
