"""What a run would do and cost, before anything is sent. Pure.

Credits: each job's price for its model, duration and resolution, from the `Prices` given (the
service's catalogue or the shipped snapshot: catalogue/pricing.py), quoted once per combination.
A job whose price is unknown adds nothing to the sum: the plan names those jobs "price
unknown", and a run with a budget refuses them (see `unpriced`).
Time: generations run in waves of `concurrency`, each about the model's typical generation
time, unless the request rate is the tighter limit (its polls counted on the schedule of
cadence.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..catalogue.pricing import Prices, snapshot_prices
from ..models import CREDITS_PER_USD, credits_for, facts  # noqa: F401 (tests import credits_for from here)
from ..read.settings import Settings
from ..services import service
from ..states import JobState, states_where
from .cadence import polls_until


@dataclass
class Plan:
    name: str
    provider: str
    jobs: int
    credits: int  # what this run would pay for: jobs not done, not running, not uncertain
    wall_seconds: float
    generation_seconds: float
    concurrency: int
    budget: int | None
    estimated_price: bool
    swept: dict[str, dict[str, int]] = field(default_factory=dict)
    models: dict[str, int] = field(default_factory=dict)
    to_submit: int = 0
    already_done: int = 0
    running: int = 0  # submitted earlier; a run polls them, it does not pay again
    uncertain: int = 0
    credits_total: int = 0  # every job of the manifest, done or not
    output_dir: str | None = None  # where earlier work was found
    unpriced: dict[str, int] = field(default_factory=dict)  # model -> jobs to pay for with no known price
    cost_by_model: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def usd(self) -> float:
        return self.credits / CREDITS_PER_USD

    @property
    def over_budget(self) -> bool:
        return self.budget is not None and self.credits > self.budget

    @property
    def budget_refusal(self) -> str | None:
        """Why a run would refuse to start with this budget though the sum fits: jobs with no
        known price (the runner's own check, `unpriced_refusal`)."""
        if self.budget is None or not self.unpriced:
            return None
        return unpriced_refusal(sum(self.unpriced.values()), self.unpriced)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider,
            "jobs": self.jobs,
            "to_submit": self.to_submit,
            "already_done": self.already_done,
            "running": self.running,
            "uncertain": self.uncertain,
            "credits": self.credits,
            "usd": round(self.usd, 2),
            "credits_total": self.credits_total,
            "budget": self.budget,
            "over_budget": self.over_budget,
            "wall_seconds": round(self.wall_seconds, 1),
            "concurrency": self.concurrency,
            "swept": self.swept,
            "models": self.models,
            "cost_by_model": self.cost_by_model,
            "output_dir": self.output_dir,
            "price_unknown": self.unpriced,
        }


def make_plan(
    table: pd.DataFrame,
    settings: Settings,
    swept_fields: list[str],
    statuses: Mapping[str, str] | None = None,
    output_dir: str | None = None,
    prices: Prices | None = None,
) -> Plan:
    """What running `table` would do. `statuses` (job_id -> ledger status) is earlier work in the
    output folder: completed jobs cost nothing, running ones are polled, uncertain ones wait."""
    run = settings.run
    earlier = statuses or {}
    known = pd.Series([earlier.get(job_id, "new") for job_id in table["job_id"]], index=table.index)
    done = known == JobState.COMPLETED
    running = known.isin(states_where("has_generation"))
    uncertain = known.isin(states_where("maybe_sent"))
    # A plan is made without --retry-uncertain: uncertain jobs wait for that decision.
    to_submit = (known == "new") | known.isin({s for s in JobState if s.to_submit(retry_uncertain=False)})
    prices = prices or snapshot_prices()
    quoted = job_quotes(table, prices)
    known_price = quoted.notna()
    per_job_credits = quoted.fillna(0).astype("int64")
    unpriced = table["model"][to_submit & ~known_price].value_counts()
    work = int(to_submit.sum() + running.sum())
    if service(settings.provider).embedded:  # its generation time is a manifest setting
        gen_seconds = settings.sandbox.gen_time
    else:
        per_model = table["model"].map(lambda m: facts(m).typical_seconds)
        gen_seconds = float(per_model.mean()) if len(table) else 0.0
    waves = math.ceil(work / run.concurrency) if work else 0
    cap = run.requests_per_minute  # None: no cap; the learned rate is not known in advance
    rate_bound = _requests(work, gen_seconds, run) / cap * 60 if cap else 0.0
    return Plan(
        name=settings.name,
        provider=settings.provider,
        jobs=len(table),
        credits=int(per_job_credits[to_submit].sum()),
        wall_seconds=max(waves * gen_seconds, rate_bound),
        generation_seconds=gen_seconds,
        concurrency=run.concurrency,
        budget=run.budget,
        estimated_price=any(prices.estimated(m) for m in table["model"].unique()),
        swept={f: _value_counts(table[f]) for f in swept_fields},
        models={str(k): int(v) for k, v in table["model"].value_counts().items()},
        to_submit=int(to_submit.sum()),
        already_done=int(done.sum()),
        running=int(running.sum()),
        uncertain=int(uncertain.sum()),
        credits_total=int(per_job_credits.sum()),
        output_dir=output_dir if statuses is not None else None,
        unpriced={str(k): int(v) for k, v in unpriced.items()},
        cost_by_model=_cost_by_model(table, per_job_credits[to_submit], prices),
    )


def job_quotes(table: pd.DataFrame, prices: Prices) -> pd.Series:
    """Each job's credits (None: no known price), quoted once per (model, duration, resolution):
    a sweep repeats them. The resolution is a model-specific field, in the job's `extra`."""
    extras = table["extra"] if "extra" in table else [None] * len(table)
    resolutions = {text: _resolution(text) for text in dict.fromkeys(extras)}
    keys = [
        (model, None if pd.isna(duration) else int(duration), resolutions.get(extra))
        for model, duration, extra in zip(table["model"], table["duration"], extras, strict=True)
    ]
    quoted = {key: prices.credits_for(*key) for key in dict.fromkeys(keys)}
    return pd.Series([quoted[key] for key in keys], index=table.index, dtype=object)


def _resolution(extra: object) -> str | None:
    if not isinstance(extra, str):
        return None
    value = json.loads(extra).get("resolution")
    return value if isinstance(value, str) else None


def _cost_by_model(table: pd.DataFrame, credits: pd.Series, prices: Prices) -> dict[str, dict[str, Any]]:
    """Per model: jobs to pay for, their credits and USD, and where the price came from."""
    cost: dict[str, dict[str, Any]] = {}
    models = table.loc[credits.index, "model"]
    for model in table["model"].unique():
        mine = credits[models == model]
        quote = prices.quote(model, table.loc[table["model"] == model, "duration"].iloc[0])
        cost[str(model)] = {
            "jobs": len(mine),
            "credits": int(mine.sum()),
            "usd": round(int(mine.sum()) / CREDITS_PER_USD, 2),
            "known": quote.known,
            "source": quote.source if quote.known else f"unknown: {quote.reason}",
        }
    return cost


def _requests(work: int, gen_seconds: float, run) -> int:
    """Requests of `work` jobs: two each besides their polls, counted on cadence.py's curve (the
    first wave's before any duration is known, the next waves' once it is)."""
    first_wave = min(work, run.concurrency)
    unknown = polls_until(gen_seconds, run.poll_interval, run.poll_max_interval)
    known = polls_until(gen_seconds, run.poll_interval, run.poll_max_interval, typical=gen_seconds)
    return 2 * work + first_wave * unknown + (work - first_wave) * known


def _value_counts(column: pd.Series) -> dict[str, int]:
    counts = column.astype(str).value_counts(sort=False)
    return {str(value): int(count) for value, count in counts.items()}


def unpriced_refusal(count: int, models: Any) -> str:
    """The one line plan and run give when run.budget is set and `count` jobs have no price."""
    names = ", ".join(sorted({str(m) for m in models}))
    return (
        f"run.budget is set, but {count:,} jobs have no known price ({names}); remove the budget to run them"
    )


def describe(plan: Plan) -> list[str]:
    """The plan as lines for a terminal."""
    models = ", ".join(plan.models)
    lines = [f"{plan.name}: {plan.jobs:,} jobs on {plan.provider} ({models})"]
    for name, counts in plan.swept.items():
        quote = name not in ("seed", "duration", "watermark")
        shown = ", ".join(f"{_short(v, quote)} x{n:,}" for v, n in list(counts.items())[:6])
        more = f", ... ({len(counts) - 6:,} more)" if len(counts) > 6 else ""
        lines.append(f"  {name}: {len(counts):,} values: {shown}{more}")
    if plan.output_dir is not None:
        lines.append(
            f"Already in {plan.output_dir}: {plan.already_done:,} done, {plan.running:,} running, "
            f"{plan.uncertain:,} uncertain; {plan.to_submit:,} to submit"
        )
    lines.append(_cost_line(plan))
    if plan.cost_by_model:
        lines.extend(_cost_table(plan.cost_by_model))
    if plan.budget is not None:
        verdict = "OVER BUDGET" if plan.over_budget else "within budget"
        if plan.budget_refusal:
            verdict = "a run refuses to start: some jobs have no known price"
        lines.append(f"Budget: {plan.budget:,} credits ({verdict})")
    lines.append(
        f"Estimated time: {format_seconds(plan.wall_seconds)} at concurrency {plan.concurrency} "
        f"({format_seconds(plan.generation_seconds)} per generation)"
    )
    return lines


def _cost_line(plan: Plan) -> str:
    unpriced = sum(plan.unpriced.values())
    unknown = ", ".join(f"{model} x{count:,}" for model, count in plan.unpriced.items())
    if unpriced and unpriced >= plan.to_submit:  # nothing to pay for has a known price
        cost = f"Estimated cost: price unknown for {unpriced:,} jobs ({unknown})"
    else:
        cost = f"Estimated cost: {plan.credits:,} credits (about ${plan.usd:,.2f})"
        if plan.output_dir is not None:
            cost += f" for {plan.to_submit:,} jobs"
        if plan.estimated_price:
            cost += ", from an estimated price"
        if unpriced:
            cost += f"; price unknown for {unpriced:,} more jobs ({unknown}): not counted"
    if service(plan.provider).free:
        cost += f"; the {plan.provider} charges nothing"
    return cost


def _cost_table(cost_by_model: dict[str, dict[str, Any]]) -> list[str]:
    width = max(len("model"), *(len(m) for m in cost_by_model))
    rows = [f"  {'model':<{width}}  {'jobs':>7}  {'credits':>13}  {'USD':>9}  source"]
    for model, c in cost_by_model.items():
        credits, usd = (f"{c['credits']:,}", "$" + format(c["usd"], ",.2f")) if c["known"] else ("-", "-")
        rows.append(f"  {model:<{width}}  {c['jobs']:>7,}  {credits:>13}  {usd:>9}  {c['source']}")
    return rows


def _short(value: str, quote: bool, limit: int = 32) -> str:
    text = value if len(value) <= limit else value[: limit - 3] + "..."
    return repr(text) if quote else text


def format_seconds(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
