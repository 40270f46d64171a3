"""Before a plan or a run: the prices in use and what the deprecation feed says of its models.

`check_models` asks the service's two model feeds (net/model_feeds.py: cached, bounded, no key)
and turns them into what plan and run need: `Prices` for the jobs' estimates, the findings of
the deprecation feed (catalogue/deprecations.py), and the lines that tell the user which
sources were used and how old they are. A withdrawn model stops a run before anything is sent
(`refuse_withdrawn`); a superseded name is sent and recorded as its replacement (`resolved`).

The embedded sandbox is not started yet when a plan is made: its plans and runs are priced from
the answer its /v1/models would give (every catalogued model has a price there, as on the
service), its deprecations from its `sandbox.models` settings, and no line is added.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..catalogue.deprecations import Deprecation, Finding, deprecations, findings
from ..catalogue.pricing import PriceBook, Prices, price_book, snapshot_book, snapshot_prices, snapshot_source
from ..errors import InputError, ManifestError, Problem
from ..net.model_feeds import CATALOGUE_PATH, DEPRECATIONS_PATH, Feed, read_feeds
from ..services import service

if TYPE_CHECKING:  # `vidpipe models` uses this module and imports no pandas
    import pandas as pd

    from ..read.settings import SandboxSettings
    from ..sandbox.models_api import ModelsConfig


@dataclass
class ModelCheck:
    prices: Prices
    findings: list[Finding] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # where prices and findings came from
    prices_source: str = ""

    @property
    def warnings(self) -> list[str]:
        """The findings a run must show even when quiet: deprecated and superseded models."""
        return [f"warning: {f.message}" for f in self.findings if not f.stops]

    @property
    def renames(self) -> dict[str, str]:
        """Each superseded name -> its catalogued replacement (`_catalogued` kept only those)."""
        return {f.asked: f.model_id for f in self.findings if f.model_id != f.asked}

    def resolved(self, table: pd.DataFrame) -> pd.DataFrame:
        """`table` with each superseded model name replaced by its catalogued replacement. The
        callers load the manifest again with `renames` first, so that those jobs are checked
        against the replacement's schema (load_batch); this is then a no-op."""
        renames = self.renames
        if not renames:
            return table
        return table.assign(model=table["model"].map(lambda m: renames.get(m, m)))

    def refuse_withdrawn(self, where: str) -> None:
        """ManifestError (exit 2), one line per withdrawn model, when the manifest names any."""
        stopped = [f for f in self.findings if f.stops]
        if stopped:
            problems = [Problem(where, "", f"{f.message}; nothing was sent") for f in stopped]
            raise ManifestError(problems)

    def as_dict(self) -> dict[str, object]:
        return {
            "prices": self.prices_source,
            "deprecations": [
                {"model": f.asked, "status": f.status, "message": f.message} for f in self.findings
            ],
        }


def check_models(
    base_url: str | None,
    models: Iterable[str],
    sandbox: SandboxSettings | None = None,
    now: float | None = None,
) -> ModelCheck:
    """The prices and deprecation findings for `models` on the service at `base_url`. None: the
    embedded sandbox, priced from the snapshot, its deprecation feed read from its `sandbox`
    settings (it is not started yet)."""
    if not base_url:
        config = _embedded_config(sandbox)
        prices, source = _embedded_prices(config)
        return ModelCheck(prices, _embedded_findings(models, config), prices_source=source)
    catalogue, feed = read_feeds(base_url, (CATALOGUE_PATH, DEPRECATIONS_PATH))
    return model_check(
        catalogue, feed, list(models), urlsplit(base_url).hostname or base_url, now or time.time()
    )


def model_check(catalogue: Feed, feed: Feed, models: list[str], host: str, now: float) -> ModelCheck:
    """What the two feeds say, as a ModelCheck. Pure."""
    source = _source(catalogue, host, now)
    if catalogue.answer is None:
        prices = snapshot_prices()
    else:
        prices = Prices(price_book(catalogue.answer, source), snapshot_book())
    lines = [f"prices: {source}" + (f" ({catalogue.problem})" if catalogue.problem else "")]
    found = _catalogued(findings(models, deprecations(feed.answer))) if feed.answer is not None else []
    if feed.answer is None:
        lines.append(f"deprecations: not checked ({feed.problem})")
    elif feed.origin == "cached":
        lines.append(f"deprecations: cached {feed.age(now)} ({feed.problem})")
    return ModelCheck(prices, found, lines, source)


def _embedded_config(sandbox: SandboxSettings | None) -> ModelsConfig | None:
    from ..sandbox.models_api import ModelsConfig

    if sandbox is None:
        return None
    try:
        return ModelsConfig.from_mapping(sandbox.models)  # None: the sandbox's defaults
    except ValueError as error:
        raise InputError(f"sandbox settings: {error}") from None


def _embedded_prices(config: ModelsConfig | None) -> tuple[Prices, str]:
    """The embedded sandbox's price list, from the very answer its /v1/models would give (it is
    not started yet): every catalogued model is priced, as on the service."""
    from ..sandbox.contract import CREDITS_PER_SECOND
    from ..sandbox.models_api import ModelsConfig, models_answer

    source = "the sandbox's price list"
    query = {"output_modalities": ["video"], "include": ["pricing"]}
    answer = models_answer(config or ModelsConfig.from_mapping(None), CREDITS_PER_SECOND, query)
    return Prices(price_book(answer, source), snapshot_book()), source


def _embedded_findings(models: Iterable[str], config: ModelsConfig | None) -> list[Finding]:
    from ..sandbox.models_api import deprecations_answer

    if config is None:
        return []
    return _catalogued(findings(models, deprecations(deprecations_answer(config))))


def _catalogued(found: list[Finding]) -> list[Finding]:
    """A superseded name is renamed only to a catalogued model (its id); a replacement vidpipe
    does not know is not sent (its fields could not be checked): the name goes as written, which
    the service still resolves (the contract), with a warning."""
    from .. import models

    out = []
    for finding in found:
        if finding.model_id != finding.asked:
            try:
                finding = replace(finding, model_id=models.canonical(finding.model_id))
            except InputError:
                message = (
                    f"model {finding.asked} is superseded by {finding.model_id}, which is not in "
                    f"vidpipe's catalogue: sent as {finding.asked} (the service still resolves it)"
                )
                finding = replace(finding, model_id=finding.asked, message=message)
        out.append(finding)
    return out


def _source(catalogue: Feed, host: str, now: float) -> str:
    if catalogue.origin == "live":
        return f"live from {host}"
    if catalogue.origin == "cached":
        return f"cached {catalogue.age(now)}"
    return snapshot_source()


def plan_base_url(provider: str) -> str | None:
    """Where `plan` asks for prices: the service's base URL (its variable honoured), None for the
    embedded sandbox."""
    chosen = service(provider)
    if chosen.embedded:
        return None
    from_env = os.environ.get(chosen.base_url_env) if chosen.base_url_env else None
    return (from_env or chosen.base_url or "").rstrip("/") or None


def availability(refresh: bool) -> tuple[PriceBook | None, dict[str, Deprecation] | None, list[str]]:
    """For `vidpipe models`: the real service's price book and deprecation feed as last kept
    (or asked now, with `refresh`), None for either never read; and lines about any problem."""
    base_url = plan_base_url("aimlapi") or ""
    catalogue, feed = read_feeds(base_url, (CATALOGUE_PATH, DEPRECATIONS_PATH), refresh=refresh)
    now = time.time()
    notes = []
    if refresh:
        notes += [
            f"note: {name}: {f.problem}"
            for name, f in (("prices", catalogue), ("deprecations", feed))
            if f.problem
        ]
    book = price_book(catalogue.answer, _source(catalogue, urlsplit(base_url).hostname or base_url, now))
    return (
        book if catalogue.answer is not None else None,
        deprecations(feed.answer) if feed.answer is not None else None,
        notes,
    )
