"""What a job costs, read from the service's catalogue (`GET /v1/models?include=pricing`). Pure.

The one file it reads is the shipped snapshot, `prices.json` (the same shape), the prices used
when the service cannot be asked: the single place a price is written in the package.

A catalogue answer is untrusted: `price_book` keeps what it can read and drops the rest, so
an odd shape gives an unknown price for that model, never a crash. A model's `pricing.kind`
decides its shape:

- `fixed`: `units[]` of `{name, price, per}`; a video is billed per `second` (or, rarely, per
  `generation`);
- `variants`: `dimensions` (`["duration"]`, `["resolution"]`, ...) and `variants[]` of
  `{when, price, unit, per}`: the variant whose `when` matches the job sets the rate;
- `variable`: priced only after the request: unknown in advance.

`price` is the charge for `per` units, always read together: $0.39 per 1 second is a rate of
0.39, $390 per 1000 seconds the same rate. USD become credits at models.CREDITS_PER_USD.

    >>> book = price_book({"data": [{"id": "m", "aliases": [], "pricing": {"kind": "fixed",
    ...     "units": [{"name": "second", "price": 0.1, "per": 1}]}}]}, source="live")
    >>> book.quote("m", 5).credits
    1000000
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

CREDITS_PER_USD = 2_000_000  # models.CREDITS_PER_USD: kept here so this module imports nothing
MAX_MODELS = 5_000  # the service lists about 400 models; more is an answer to distrust
MAX_VARIANTS = 500  # per model
MAX_NAME = 200
PER_SECOND = ("second", "seconds", "s", "sec")
PER_VIDEO = ("generation", "video", "request", "item")


@dataclass(frozen=True)
class Quote:
    """A job's price: `credits`, or None with the `reason` it is unknown."""

    credits: int | None
    reason: str = ""
    source: str = ""  # the price book's: "live", "cached 3 h ago", "shipped snapshot of ..."

    @property
    def known(self) -> bool:
        return self.credits is not None


@dataclass(frozen=True)
class PriceBook:
    """Each model's pricing block by id and alias (case-folded), and where the answer came from."""

    pricing: Mapping[str, Any]  # folded name -> the model's pricing block (unchecked)
    canonical: Mapping[str, str]  # folded name -> canonical id
    source: str  # "live", "cached 3 h ago", "shipped snapshot of 2026-08-21", ...

    def quote(self, model: str, duration: object, resolution: object = None) -> Quote:
        """What one job of `model` for `duration` seconds at `resolution` costs."""
        name = str(model).casefold()
        if name not in self.pricing:
            return Quote(None, f"{model} is not in the price list", self.source)
        try:
            quote = _quote(self.pricing[name], duration, resolution)
        except (TypeError, ValueError, KeyError, AttributeError, OverflowError, RecursionError):
            quote = Quote(None, f"the price list's entry for {model} cannot be read")
        return dataclasses.replace(quote, source=self.source)

    def credits_for(self, model: str, duration: object, resolution: object = None) -> int | None:
        return self.quote(model, duration, resolution).credits

    def block(self, model: str) -> Any:
        """The model's pricing block as published (unchecked), or None when it is not listed."""
        return self.pricing.get(str(model).casefold())

    def has(self, model: str) -> bool:
        return str(model).casefold() in self.pricing

    def estimated(self, model: str) -> bool:
        """True when the figure is vidpipe's estimate (the shipped snapshot marks those)."""
        block = self.pricing.get(str(model).casefold())
        return isinstance(block, Mapping) and block.get("estimated") is True


@dataclass(frozen=True)
class Prices:
    """The price book in use, with the shipped snapshot behind it for what that book cannot price."""

    book: PriceBook
    snapshot: PriceBook

    def quote(self, model: str, duration: object, resolution: object = None) -> Quote:
        quote = self.book.quote(model, duration, resolution)
        if quote.known or self.book is self.snapshot or not self.snapshot.has(model):
            return quote
        fallback = self.snapshot.quote(model, duration, resolution)
        if not fallback.known:
            return quote
        return dataclasses.replace(fallback, reason=f"{self.book.source}: {quote.reason}")

    def credits_for(self, model: str, duration: object, resolution: object = None) -> int | None:
        return self.quote(model, duration, resolution).credits

    def estimated(self, model: str) -> bool:
        quote = self.book.quote(model, 5)
        return (self.snapshot if not quote.known else self.book).estimated(model)


def snapshot_answer() -> dict[str, Any]:
    """The shipped snapshot (`prices.json`, in the /v1/models shape): a fresh copy each call."""
    return json.loads(_snapshot_text())


@functools.lru_cache(maxsize=1)
def _snapshot_text() -> str:
    return resources.files(__package__).joinpath("prices.json").read_text(encoding="utf-8")


def snapshot_source() -> str:
    taken = snapshot_answer().get("snapshot", {}).get("taken", "unknown date")
    return f"shipped snapshot of {taken}"


@functools.lru_cache(maxsize=1)
def snapshot_book() -> PriceBook:
    return price_book(snapshot_answer(), snapshot_source())


def snapshot_prices() -> Prices:
    """Prices from the shipped snapshot alone: what an offline command uses."""
    return Prices(snapshot_book(), snapshot_book())


def price_book(answer: object, source: str) -> PriceBook:
    """The price book of a `/v1/models` answer (`{"data": [...]}`); what cannot be read is left out."""
    data = answer.get("data") if isinstance(answer, Mapping) else None
    pricing: dict[str, Any] = {}
    canonical: dict[str, str] = {}
    for entry in data[:MAX_MODELS] if isinstance(data, list) else ():
        if not isinstance(entry, Mapping) or not _name(entry.get("id")):
            continue
        model_id = entry["id"]
        aliases = entry.get("aliases")
        names = (
            [model_id, *(a for a in aliases[:50] if _name(a))] if isinstance(aliases, list) else [model_id]
        )
        for name in names:
            folded = name.casefold()
            if folded not in pricing:  # an id listed twice: the first entry wins, as with aliases
                pricing[folded] = entry.get("pricing")
                canonical[folded] = model_id
    return PriceBook(pricing, canonical, source)


def describe_pricing(block: object) -> str:
    """A model's pricing in a few characters for a table: `$0.05/s`, `$0.39-0.65/s`, `variable`."""
    if not isinstance(block, Mapping):
        return "-"
    kind = block.get("kind")
    if kind == "variable":
        return "variable"
    if kind == "fixed":
        rates = [_rate(u, u.get("name")) for u in _items(block.get("units"))]
    elif kind == "variants":
        rates = [_rate(v, v.get("unit")) for v in _items(block.get("variants"))]
    else:
        return "-"
    rates = [r for r in rates if r is not None]
    units = {u for _, u in rates}
    if not rates or len(units) != 1:
        return "-"
    low, high = min(r for r, _ in rates), max(r for r, _ in rates)
    shown = f"${low:.4g}" if low == high else f"${low:.4g}-{high:.4g}"
    return shown + ("/s" if units == {"second"} else "/video")


def _quote(block: object, duration: object, resolution: object) -> Quote:
    if not isinstance(block, Mapping):
        return Quote(None, "no pricing published")
    kind = block.get("kind")
    if kind == "variable":
        return Quote(None, "variable pricing: known only after the request")
    seconds = _number(duration)
    if seconds is None or seconds <= 0:
        return Quote(None, f"duration {duration!r} is not a number of seconds")
    if kind == "fixed":
        for unit in _items(block.get("units")):
            rate = _rate(unit, unit.get("name"))
            if rate is not None:
                return _credits(rate, seconds)
        return Quote(None, "no per-second or per-video rate in its fixed price")
    if kind == "variants":
        return _variant(block, {"duration": duration, "resolution": resolution}, seconds)
    return Quote(None, f"pricing kind {str(kind)[:40]!r} is not one vidpipe reads")


def _variant(block: Mapping[str, Any], job: Mapping[str, object], seconds: float) -> Quote:
    dimensions = block.get("dimensions")
    if not isinstance(dimensions, list) or not all(isinstance(d, str) for d in dimensions):
        return Quote(None, "its variants name no dimensions")
    unknown = [d for d in dimensions if d not in job]
    if unknown:
        return Quote(None, f"its price depends on {', '.join(unknown[:3])}, which vidpipe does not set")
    if any(job[d] is None for d in dimensions):
        missing = ", ".join(d for d in dimensions if job[d] is None)
        return Quote(None, f"its price depends on {missing}, and the job names none")
    for variant in _items(block.get("variants"))[:MAX_VARIANTS]:
        when = variant.get("when")
        if isinstance(when, Mapping) and all(_same(when.get(d), job[d]) for d in dimensions):
            rate = _rate(variant, variant.get("unit"))
            if rate is None:
                return Quote(None, "its matching variant has no per-second or per-video rate")
            return _credits(rate, seconds)
    shown = ", ".join(f"{d} {job[d]}" for d in dimensions)
    return Quote(None, f"no price for {shown}")


def _rate(item: Mapping[str, Any], unit: object) -> tuple[float, str] | None:
    """(USD per unit, "second" or "video") of a rate, `price` read with its `per`."""
    price, per = _number(item.get("price")), _number(item.get("per", 1))
    if price is None or per is None or price < 0 or per <= 0:
        return None
    unit = str(unit).casefold()
    if unit in PER_SECOND:
        return price / per, "second"
    if unit in PER_VIDEO:
        return price / per, "video"
    return None


def _credits(rate: tuple[float, str], seconds: float) -> Quote:
    usd_per_unit, unit = rate
    usd = usd_per_unit * seconds if unit == "second" else usd_per_unit
    credits = usd * CREDITS_PER_USD
    if not math.isfinite(credits) or credits > 10**15:
        return Quote(None, "its price is out of any sensible range")
    return Quote(round(credits))


def _same(published: object, wanted: object) -> bool:
    """A variant's value against the job's: numbers as numbers, text case-insensitively."""
    a, b = _number(published), _number(wanted)
    if a is not None and b is not None:
        return a == b
    return (
        isinstance(published, str) and isinstance(wanted, str) and published.casefold() == wanted.casefold()
    )


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):  # numpy's too: a job table holds them
        number = float(value)
    elif isinstance(value, str) and len(value) < 40:
        try:
            number = float(value.strip().removesuffix("s"))
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _items(value: object) -> list[Mapping[str, Any]]:
    return (
        [item for item in value[:MAX_VARIANTS] if isinstance(item, Mapping)]
        if isinstance(value, list)
        else []
    )


def _name(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME
